import ArgumentParser

@main
struct Portcullis: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "portcullis",
        abstract: "A reverse-proxy sidecar that enforces JSON Web Tokens in front of an HTTP backend.",
        subcommands: [Demo.self, Verify.self, Check.self]
    )
}
