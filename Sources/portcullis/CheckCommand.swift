import ArgumentParser
import Foundation
import PortcullisConfig

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a configuration file: exit 0 with a summary, or 1 with every error.")

    @Option(help: "The configuration file.")
    var config = "config.json"

    func run() throws {
        guard let data = FileManager.default.contents(atPath: config) else {
            print("\(config): cannot be read")
            throw ExitCode(1)
        }
        switch PortcullisConfiguration.decode(Array(data)) {
        case .success(let configuration):
            print("\(config): OK")
            print(configuration.summary)
        case .failure(let failure):
            print("\(config): \(failure.errors.count) error(s)")
            for error in failure.errors { print("  \(error)") }
            throw ExitCode(1)
        }
    }
}
