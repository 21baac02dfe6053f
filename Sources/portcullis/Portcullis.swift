import ArgumentParser

@main
struct Portcullis: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "portcullis",
        abstract: "A reverse-proxy sidecar that enforces JSON Web Tokens in front of an HTTP backend.",
        subcommands: [Serve.self, Demo.self, Verify.self, Check.self, Keygen.self, Token.self],
        defaultSubcommand: Serve.self
    )
}
