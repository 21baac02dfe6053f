import Foundation
import PortcullisConfig
import PortcullisCore
import PortcullisCrypto
import PortcullisTestSupport
import Testing

/// The files in `deploy/` cannot be run here (no Docker engine, no Kubernetes, no systemd as PID 1), so they
/// are checked by reading them: every configuration decodes, every command line is one the built binary
/// accepts, and the paths and ports agree from one file to the next.
@Suite("Deploy files")
struct DeployFilesTests {
    static let folder = repositoryRoot.appendingPathComponent("deploy")
    static let installedConfigPath = "/etc/portcullis/config.json"
    /// `drain_timeout`'s default (the systemd unit cannot see the configuration), which stop timeouts exceed.
    static let defaultDrainTimeout: Double = {
        let minimal = #"{"upstream": "http://127.0.0.1:1", "providers": [{"name": "p", "jwks": {"keys": []}}]}"#
        return (try? PortcullisConfiguration.decode(Array(minimal.utf8), environment: [:]).get().drainTimeout) ?? 0
    }()

    // MARK: - JSON

    @Test("every JSON file in deploy/ decodes: configurations with PortcullisConfiguration, key sets as public JWKS")
    func everyJSONFileDecodes() throws {
        let files = try Self.files(withSuffix: ".json")
        #expect(files.contains("config.compose.json") && files.contains("keys/jwks.json"))
        for name in files {
            let bytes = Array(try Data(contentsOf: Self.folder.appendingPathComponent(name)))
            if name.hasPrefix("keys/") {
                try Self.expectPublicJWKS(bytes, name: name)
            } else {
                _ = try Self.configuration(bytes, name: name)
            }
        }
    }

    @Test("the ConfigMap's config.json and jwks.json, read without a YAML library, decode")
    func configMapEmbeddedFilesDecode() throws {
        let manifest = try Self.text("kubernetes/portcullis-sidecar.yaml")
        let config = try #require(Self.blockScalar("config.json", in: manifest))
        let configuration = try Self.configuration(Array(config.utf8), name: "ConfigMap config.json")
        #expect(configuration.upstream.url.hasPrefix("http://127.0.0.1:"), "the app is in the same pod")
        let jwks = try #require(Self.blockScalar("jwks.json", in: manifest))
        try Self.expectPublicJWKS(Array(jwks.utf8), name: "ConfigMap jwks.json")
    }

    // MARK: - Dockerfile

    @Test("Dockerfile: a Swift 6.2+ bookworm builder, a slim runtime, uid 10001, an ENTRYPOINT and CMD the CLI accepts")
    func dockerfile() throws {
        let instructions = try Self.dockerInstructions()
        func all(_ keyword: String) -> [String] { instructions.filter { $0.keyword == keyword }.map(\.arguments) }

        // The builder: swift:6.N-bookworm with N >= 2 (the dependencies declare swift-tools-version 6.2).
        let swiftImage = try #require(all("ARG").first { $0.hasPrefix("SWIFT_IMAGE=") }?.dropFirst(12))
        let version = try #require(swiftImage.firstMatch(of: /^swift:6\.(\d+)(\.\d+)?-bookworm$/))
        #expect(Int(version.1)! >= 2, "\(swiftImage)")
        let stages = all("FROM")
        #expect(stages == ["${SWIFT_IMAGE} AS builder", "debian:bookworm-slim"])
        let runs = all("RUN").joined(separator: "\n")
        let words = Set(runs.split(whereSeparator: \.isWhitespace))
        for package in ["libssl-dev", "libcurl4-openssl-dev", "pkg-config", "libssl3", "libcurl4", "ca-certificates"] {
            #expect(words.contains(Substring(package)), "apt-get install \(package)")
        }
        #expect(runs.contains("swift build -c release --product portcullis --static-swift-stdlib"))
        #expect(runs.contains("--uid 10001") && all("USER") == ["10001:10001"])
        #expect(all("COPY").contains("--from=builder /out/portcullis /usr/local/bin/portcullis"))

        // ENTRYPOINT and CMD together are a command line the built binary accepts.
        let entrypoint = try Self.jsonStrings(try #require(all("ENTRYPOINT").last))
        let command = try Self.jsonStrings(try #require(all("CMD").last))
        #expect(entrypoint == ["/usr/local/bin/portcullis"])
        let configPath = try Self.expectAcceptedServeArguments(command, source: "Dockerfile CMD")
        #expect(configPath == Self.installedConfigPath)
        #expect(Self.value(of: "--log-format", in: command) == "json")

        // EXPOSE and the HEALTHCHECK match the ports of the configuration compose mounts into the image.
        let compose = try Self.configuration(
            Array(try Data(contentsOf: Self.folder.appendingPathComponent("config.compose.json"))),
            name: "config.compose.json")
        let admin = try #require(compose.adminListen)
        #expect(all("EXPOSE") == ["\(compose.listen.port) \(admin.port)"])
        let healthcheck = try #require(all("HEALTHCHECK").first)
        #expect(healthcheck.contains("\"http://127.0.0.1:\(admin.port)/healthz\""))
    }

    // MARK: - systemd

    @Test("systemd unit: ExecStart and ExecReload the CLI accepts, hardening in place, a stop timeout above the drain")
    func systemdUnit() throws {
        let service = try Self.unitSection("Service")
        func values(_ key: String) -> [String] { service.filter { $0.key == key }.map(\.value) }

        let start = try #require(values("ExecStart").first).split(separator: " ").map(String.init)
        #expect(start.first == "/usr/local/bin/portcullis")
        let configPath = try Self.expectAcceptedServeArguments(
            Array(start.dropFirst()), source: "portcullis.service ExecStart")
        #expect(configPath == Self.installedConfigPath)
        #expect(Self.value(of: "--log-format", in: start) == "json")

        let reloads = values("ExecReload")
        #expect(reloads.last == "/bin/kill -HUP $MAINPID")
        #expect(reloads.first == "/usr/local/bin/portcullis check --config \(Self.installedConfigPath)")
        let help = try Self.help("check")
        #expect(help.contains("--config"))

        #expect(Self.defaultDrainTimeout > 0)
        let stopTimeout = try #require(values("TimeoutStopSec").first)
        let seconds = try #require(Double(stopTimeout.replacing("s", with: "")))
        #expect(seconds > Self.defaultDrainTimeout)

        let required: [(String, String)] = [
            ("DynamicUser", "yes"), ("ProtectSystem", "strict"), ("ProtectHome", "yes"), ("PrivateTmp", "yes"),
            ("NoNewPrivileges", "yes"), ("CapabilityBoundingSet", ""), ("SystemCallFilter", "@system-service"),
            ("MemoryDenyWriteExecute", "yes"), ("LockPersonality", "yes"), ("ReadOnlyPaths", "/etc/portcullis"),
            ("Restart", "on-failure"),
        ]
        for (key, value) in required {
            #expect(values(key).contains(value), "\(key)=\(value)")
        }
        let families = Set(try #require(values("RestrictAddressFamilies").first).split(separator: " "))
        #expect(families.isSuperset(of: ["AF_INET", "AF_INET6", "AF_UNIX"]))
    }

    @Test(
        "systemd unit: `systemd-analyze verify` accepts it, with no warning",
        .enabled(if: Self.systemdAnalyze != nil, "systemd-analyze is not installed"))
    func systemdAnalyzeVerify() throws {
        // verify checks that every Exec*= binary exists: point it at the built one.
        let unit = try Self.text("systemd/portcullis.service")
            .replacing("/usr/local/bin/portcullis", with: CommandLineTests.binary.path)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("deploy-unit-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("portcullis.service")
        try Data(unit.utf8).write(to: file)
        let result = try Self.run(try #require(Self.systemdAnalyze), ["verify", file.path])
        #expect(result.status == 0, "\(result.error)")
        #expect(result.error.isEmpty && result.output.isEmpty, "\(result.error)\(result.output)")
    }

    // MARK: - compose.yaml

    @Test("compose.yaml, read as text: the build, the mounts and the published ports")
    func composeText() throws {
        let compose = try Self.text("compose.yaml")
        for line in [
            "image: postgres:15", "image: postgrest/postgrest:", "dockerfile: deploy/Dockerfile",
            "- ./config.compose.json:\(Self.installedConfigPath):ro",
            "- ./keys/jwks.json:/etc/portcullis/keys/jwks.json:ro",
            "PGRST_JWT_SECRET: \"@/etc/postgrest/jwks.json\"", "- ./keys/jwks.json:/etc/postgrest/jwks.json:ro",
            "- \"127.0.0.1:8080:8080\"", "stop_grace_period: 20s",
        ] {
            #expect(compose.contains(line), "compose.yaml: \(line)")
        }
    }

    @Test(
        "compose.yaml, parsed: paths, ports, the upstream and the shared JWKS agree with config.compose.json",
        .enabled(if: Self.pyYAML, "PyYAML is not installed (apt-get install python3-yaml)"))
    func composeParsed() throws {
        let document = try #require(try Self.yamlDocuments("compose.yaml").first)
        let services = try #require(document["services"]?.objectValue)
        #expect(Set(services.keys) == ["postgres", "postgrest", "portcullis"])
        let postgres = try #require(services["postgres"])
        let postgrest = try #require(services["postgrest"])
        let portcullis = try #require(services["portcullis"])
        #expect(postgres["image"]?.stringValue == "postgres:15")
        #expect(postgrest["image"]?.stringValue?.hasPrefix("postgrest/postgrest:v") == true)

        // The image: built from the repository root with deploy/Dockerfile.
        #expect(portcullis["build"]?["context"]?.stringValue == "..")
        let dockerfile = try #require(portcullis["build"]?["dockerfile"]?.stringValue)
        #expect(FileManager.default.fileExists(atPath: Self.folder.appendingPathComponent("../\(dockerfile)").path))

        // Every bind mount's source exists; the configuration is mounted where the command reads it.
        var mounts: [String: [String: String]] = [:]  // service → target → source
        for (name, service) in services {
            for volume in service["volumes"]?.arrayValue ?? [] {
                let parts = try #require(volume.stringValue).split(separator: ":").map(String.init)
                guard parts[0].hasPrefix("./") else { continue }
                #expect(
                    FileManager.default.fileExists(atPath: Self.folder.appendingPathComponent(parts[0]).path),
                    "\(name): \(parts[0])")
                mounts[name, default: [:]][parts[1]] = parts[0]
            }
        }
        let command = try #require(portcullis["command"]?.arrayValue).compactMap(\.stringValue)
        let configPath = try Self.expectAcceptedServeArguments(command, source: "compose.yaml command")
        #expect(mounts["portcullis"]?[configPath] == "./config.compose.json")
        let configuration = try Self.configuration(
            Array(try Data(contentsOf: Self.folder.appendingPathComponent("config.compose.json"))),
            name: "config.compose.json")

        // Portcullis and PostgREST read the same public keys.
        let provider = try #require(configuration.providers.first)
        guard case .jwksURL(let url) = provider.keySource, url.hasPrefix("file://") else {
            Issue.record("expected a file:// JWKS, got \(provider.keySource)")
            return
        }
        #expect(mounts["portcullis"]?[String(url.dropFirst(7))] == "./keys/jwks.json")
        let environment = try #require(postgrest["environment"]?.objectValue)
        let secret = try #require(environment["PGRST_JWT_SECRET"]?.stringValue)
        #expect(secret.hasPrefix("@") && mounts["postgrest"]?[String(secret.dropFirst())] == "./keys/jwks.json")
        #expect(provider.audiences.contains(try #require(environment["PGRST_JWT_AUD"]?.stringValue)))
        #expect(configuration.forward.keepAuthorization, "PostgREST verifies the token again")

        // Portcullis relays to PostgREST's service name and port, and publishes its own ports.
        let postgrestPort = Self.integer(environment["PGRST_SERVER_PORT"]) ?? 3000
        #expect(configuration.upstream.url == "http://postgrest:\(postgrestPort)")
        let admin = try #require(configuration.adminListen)
        let published = (portcullis["ports"]?.arrayValue ?? []).compactMap(\.stringValue)
        #expect(
            published == [
                "127.0.0.1:\(configuration.listen.port):\(configuration.listen.port)",
                "127.0.0.1:\(admin.port):\(admin.port)",
            ])
        #expect(postgrest["ports"] == nil, "PostgREST is reached only through Portcullis")
        let healthcheck = (portcullis["healthcheck"]?["test"]?.arrayValue ?? []).compactMap(\.stringValue)
        #expect(healthcheck.last == "http://127.0.0.1:\(admin.port)/readyz")
        let grace = try #require(portcullis["stop_grace_period"]?.stringValue)
        #expect(try #require(Double(grace.replacing("s", with: ""))) > configuration.drainTimeout)
        #expect(
            FileManager.default.isExecutableFile(atPath: Self.folder.appendingPathComponent("postgres/init.sh").path))
    }

    // MARK: - Kubernetes

    @Test(
        "Kubernetes: the sidecar's args, mounts, probes on the admin port, security context, resources and Service",
        .enabled(if: Self.pyYAML, "PyYAML is not installed (apt-get install python3-yaml)"))
    func kubernetes() throws {
        let documents = try Self.yamlDocuments("kubernetes/portcullis-sidecar.yaml")
        #expect(documents.compactMap { $0["kind"]?.stringValue } == ["ConfigMap", "Deployment", "Service"])
        let configMap = documents[0]
        let deployment = documents[1]
        let service = documents[2]

        // The ConfigMap, as parsed, is what the text extraction read.
        let manifest = try Self.text("kubernetes/portcullis-sidecar.yaml")
        let config = try #require(configMap["data"]?["config.json"]?.stringValue)
        #expect(config == Self.blockScalar("config.json", in: manifest))
        let configuration = try Self.configuration(Array(config.utf8), name: "ConfigMap config.json")
        let admin = try #require(configuration.adminListen)

        let pod = try #require(deployment["spec"]?["template"]?["spec"])
        let containers = try #require(pod["containers"]?.arrayValue)
        let sidecar = try #require(containers.first { $0["name"]?.stringValue == "portcullis" })
        let app = try #require(containers.first { $0["name"]?.stringValue != "portcullis" })

        // The command line, and the ConfigMap mounted where it reads the configuration and the JWKS.
        let arguments = try #require(sidecar["args"]?.arrayValue).compactMap(\.stringValue)
        let configPath = try Self.expectAcceptedServeArguments(arguments, source: "Deployment args")
        let volumeName = try #require(
            pod["volumes"]?.arrayValue?.first {
                $0["configMap"]?["name"]?.stringValue == configMap["metadata"]?["name"]?.stringValue
            }?["name"]?.stringValue)
        let mount = try #require(
            sidecar["volumeMounts"]?.arrayValue?.first { $0["name"]?.stringValue == volumeName })
        let mountPath = try #require(mount["mountPath"]?.stringValue)
        #expect(configPath == mountPath + "/config.json")
        let provider = try #require(configuration.providers.first)
        #expect(provider.keySource == .jwksURL("file://\(mountPath)/jwks.json"))
        #expect(configMap["data"]?["jwks.json"] != nil)

        // Named ports match the configuration; the probes hit the admin port at /healthz and /readyz.
        var ports: [String: Int] = [:]
        for port in sidecar["ports"]?.arrayValue ?? [] {
            ports[try #require(port["name"]?.stringValue)] = Self.integer(port["containerPort"])
        }
        #expect(ports["http"] == configuration.listen.port && ports["admin"] == admin.port)
        #expect(configuration.listen.host == "0.0.0.0" && admin.host == "0.0.0.0", "the kubelet probes the pod IP")
        func probe(_ name: String) -> (path: String?, port: Int?) {
            let get = sidecar[name]?["httpGet"]
            let port = get?["port"]
            return (get?["path"]?.stringValue, port?.stringValue.flatMap { ports[$0] } ?? Self.integer(port))
        }
        #expect(probe("livenessProbe").path == "/healthz" && probe("livenessProbe").port == admin.port)
        #expect(probe("readinessProbe").path == "/readyz" && probe("readinessProbe").port == admin.port)

        // The app listens on loopback only, on the port Portcullis relays to.
        var appEnvironment: [String: String] = [:]
        for variable in app["env"]?.arrayValue ?? [] {
            if let name = variable["name"]?.stringValue, let value = variable["value"]?.stringValue {
                appEnvironment[name] = value
            }
        }
        #expect(appEnvironment["PGRST_SERVER_HOST"] == "127.0.0.1")
        #expect(configuration.upstream.url == "http://127.0.0.1:\(appEnvironment["PGRST_SERVER_PORT"] ?? "3000")")
        #expect(appEnvironment["PGRST_JWT_SECRET"] == "@\(mountPath)/jwks.json")

        // Non-root (the image's uid), read-only, no capabilities, no escalation, resources set: every container.
        #expect(pod["securityContext"]?["runAsNonRoot"] == true)
        #expect(Self.integer(pod["securityContext"]?["runAsUser"]) == 10001)
        for container in containers {
            let name = container["name"]?.stringValue ?? "?"
            let context = container["securityContext"]
            #expect(context?["readOnlyRootFilesystem"] == true, "\(name)")
            #expect(context?["allowPrivilegeEscalation"] == false, "\(name)")
            #expect(context?["capabilities"]?["drop"] == ["ALL"], "\(name)")
            #expect(container["resources"]?["requests"]?["memory"] != nil, "\(name)")
            #expect(container["resources"]?["limits"]?["memory"] != nil, "\(name)")
        }

        // Stopping: the preStop pause and the drain fit in the grace period.
        let grace = try #require(Self.integer(pod["terminationGracePeriodSeconds"]))
        let pause = Self.integer(sidecar["lifecycle"]?["preStop"]?["sleep"]?["seconds"]) ?? 0
        #expect(Double(grace) > Double(pause) + configuration.drainTimeout)

        // The Service selects the pod and exposes the proxy's port only.
        let labels = try #require(deployment["spec"]?["template"]?["metadata"]?["labels"]?.objectValue)
        let selector = try #require(service["spec"]?["selector"]?.objectValue)
        #expect(selector.allSatisfy { labels[$0.key] == $0.value })
        let targets = (service["spec"]?["ports"]?.arrayValue ?? []).map { port in
            port["targetPort"]?.stringValue.flatMap { ports[$0] } ?? Self.integer(port["targetPort"])
        }
        #expect(targets == [configuration.listen.port])
    }

    // MARK: - Command lines in comments and the README

    @Test("every `portcullis <command> --flag` written in deploy/ and the README's Deploying section exists")
    func documentedCommandLines() throws {
        var texts = try Self.files(withSuffix: "").filter { !$0.hasSuffix(".json") }.map { try Self.text($0) }
        let readme = try String(contentsOf: repositoryRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let section = try #require(readme.firstRange(of: "## Deploying"), "README.md has a Deploying section")
        let end = readme[section.upperBound...].firstRange(of: "\n## ")?.lowerBound ?? readme.endIndex
        texts.append(String(readme[section.lowerBound..<end]))

        let topHelp = try Self.help(nil)
        var checked = 0
        for text in texts {
            // Comment markers and line continuations go, so a command split over lines is read whole.
            let joined = text.split(separator: "\n", omittingEmptySubsequences: false)
                .map { $0.trimmingPrefix(/\s*#?\s*/) }
                .joined(separator: "\n").replacing("\\\n", with: " ")
            for match in joined.matches(of: /portcullis (serve|check|verify|demo|keygen|token)\b([^\n#)`|;&]*)/) {
                let command = String(match.1)
                // keygen and token are newer than this test; checked once the binary has them.
                guard topHelp.contains("\n  \(command)") else {
                    #expect(["keygen", "token"].contains(command), "portcullis \(command) is not a command")
                    continue
                }
                let help = try Self.help(command)
                for flag in match.2.matches(of: /(?:^|\s)(--[a-z][a-z-]*)/) {
                    #expect(help.contains(String(flag.1)), "portcullis \(command) \(flag.1): not in its --help")
                    checked += 1
                }
            }
        }
        #expect(checked >= 5)
    }
}

// MARK: - Helpers

extension DeployFilesTests {
    static func text(_ name: String) throws -> String {
        try String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8)
    }

    /// Paths under deploy/ ending with `suffix`, sorted.
    static func files(withSuffix suffix: String) throws -> [String] {
        let enumerator = try #require(FileManager.default.enumerator(atPath: folder.path))
        var names: [String] = []
        while let name = enumerator.nextObject() as? String {
            var isDirectory: ObjCBool = false
            let path = folder.appendingPathComponent(name).path
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue,
                name.hasSuffix(suffix)
            {
                names.append(name)
            }
        }
        return names.sorted()
    }

    static func configuration(_ bytes: [UInt8], name: String) throws -> PortcullisConfiguration {
        switch PortcullisConfiguration.decode(bytes, environment: [:]) {
        case .success(let configuration): return configuration
        case .failure(let failure):
            Issue.record("\(name): \(failure)")
            throw failure
        }
    }

    /// A JWKS with at least one usable key and no private member anywhere.
    static func expectPublicJWKS(_ bytes: [UInt8], name: String) throws {
        let document = try JSONParser().parse(bytes)
        let keys = try #require(document["keys"]?.arrayValue, "\(name): not a JWKS")
        for key in keys {
            for member in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
                #expect(key[member] == nil, "\(name): a key has the private member \"\(member)\"")
            }
        }
        let (loaded, skipped) = try KeySetLoader.openSSL.load(jwks: bytes)
        #expect(!loaded.isEmpty && skipped.isEmpty, "\(name): \(skipped)")
    }

    /// The text of a YAML literal block scalar (`key: |`), the way YAML reads it: the lines indented deeper
    /// than the key, less the first line's indentation, each ending with a newline.
    static func blockScalar(_ key: String, in yaml: String) -> String? {
        let lines = yaml.split(separator: "\n", omittingEmptySubsequences: false)
        guard let start = lines.firstIndex(where: { $0.trimmingCharacters(in: .whitespaces) == "\(key): |" })
        else { return nil }
        let keyIndent = lines[start].prefix { $0 == " " }.count
        var body: [Substring] = []
        var indent: Int?
        for line in lines[(start + 1)...] {
            let lineIndent = line.prefix { $0 == " " }.count
            if line.trimmingCharacters(in: .whitespaces).isEmpty {
                body.append("")
                continue
            }
            guard lineIndent > keyIndent else { break }
            indent = indent ?? lineIndent
            body.append(line.dropFirst(min(indent!, lineIndent)))
        }
        while body.last == "" { body.removeLast() }
        return body.map { $0 + "\n" }.joined()
    }

    /// The arguments of a one-line JSON array (a Dockerfile exec form).
    static func jsonStrings(_ text: String) throws -> [String] {
        try #require(try JSONParser().parse(text).arrayValue).compactMap(\.stringValue)
    }

    static func value(of flag: String, in arguments: [String]) -> String? {
        guard let index = arguments.firstIndex(of: flag), index + 1 < arguments.count else { return nil }
        return arguments[index + 1]
    }

    static func integer(_ value: JSONValue?) -> Int? {
        switch value {
        case .number(let number): Int(number.literal)
        case .string(let text): Int(text)
        default: nil
        }
    }

    /// Checks that `arguments` (after the binary's name) are `serve` and options the built binary accepts,
    /// and returns the `--config` path. Each flag must appear in `serve --help`; then the binary is run with
    /// the same arguments and a configuration path that does not exist, which must fail on reading the file
    /// (exit 1) rather than on the arguments (exit 64).
    @discardableResult
    static func expectAcceptedServeArguments(_ arguments: [String], source: String) throws -> String {
        #expect(arguments.first == "serve", "\(source): \(arguments)")
        let help = try help("serve")
        for flag in arguments where flag.hasPrefix("--") {
            #expect(help.contains(flag), "\(source): \(flag) is not in `portcullis serve --help`")
        }
        let configPath = try #require(value(of: "--config", in: arguments), "\(source): no --config")
        let missing = "/nonexistent-\(UUID())/config.json"
        let probe = arguments.map { $0 == configPath ? missing : $0 }
        let result = try run(CommandLineTests.binary, probe)
        #expect(result.status == 1 && result.error.contains("\(missing): cannot be read"), "\(source): \(result)")
        return configPath
    }

    /// `portcullis [command] --help`.
    static func help(_ command: String?) throws -> String {
        try #require(FileManager.default.isExecutableFile(atPath: CommandLineTests.binary.path), "build first")
        let result = try run(CommandLineTests.binary, (command.map { [$0] } ?? []) + ["--help"])
        #expect(result.status == 0)
        return result.output
    }

    struct Instruction {
        var keyword: String
        var arguments: String
    }

    /// The Dockerfile's instructions: comments dropped, continuation lines joined.
    static func dockerInstructions() throws -> [Instruction] {
        var instructions: [Instruction] = []
        var pending = ""
        for line in try text("Dockerfile").split(separator: "\n") {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("#") { continue }
            pending += (pending.isEmpty ? "" : " ") + trimmed
            if pending.hasSuffix("\\") {
                pending.removeLast()
                continue
            }
            let parts = pending.split(separator: " ", maxSplits: 1)
            if parts.count == 2 {
                instructions.append(
                    Instruction(
                        keyword: parts[0].uppercased(),
                        arguments: parts[1].split(separator: " ", omittingEmptySubsequences: true)
                            .joined(separator: " ")))
            }
            pending = ""
        }
        return instructions
    }

    /// The `key=value` lines of one section of the systemd unit, in order (keys may repeat).
    static func unitSection(_ name: String) throws -> [(key: String, value: String)] {
        var section = ""
        var entries: [(key: String, value: String)] = []
        for line in try text("systemd/portcullis.service").split(separator: "\n") {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            if trimmed.hasPrefix("[") {
                section = String(trimmed.dropFirst().dropLast())
            } else if section == name, let equals = trimmed.firstIndex(of: "=") {
                entries.append((String(trimmed[..<equals]), String(trimmed[trimmed.index(after: equals)...])))
            }
        }
        return entries
    }

    // MARK: Processes

    static let systemdAnalyze: URL? = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"]
        .first { FileManager.default.isExecutableFile(atPath: $0) }.map(URL.init(fileURLWithPath:))

    static let python3 = URL(fileURLWithPath: "/usr/bin/env")

    /// Whether `python3 -c 'import yaml'` works: PyYAML's safe loader reads the YAML files.
    static let pyYAML: Bool = (try? run(python3, ["python3", "-c", "import yaml"]).status) == 0

    /// Every document of a YAML file, through PyYAML's safe loader, as JSON.
    static func yamlDocuments(_ name: String) throws -> [JSONValue] {
        let script = "import json, sys, yaml; json.dump(list(yaml.safe_load_all(open(sys.argv[1]))), sys.stdout)"
        let result = try run(python3, ["python3", "-c", script, folder.appendingPathComponent(name).path])
        try #require(result.status == 0, "\(name): \(result.error)")
        return try #require(try JSONParser(maxDepth: 64).parse(result.output).arrayValue)
    }

    /// Runs a program to completion; its output and error go through files, so neither pipe can fill up.
    static func run(_ executable: URL, _ arguments: [String]) throws -> (status: Int32, output: String, error: String) {
        let directory = FileManager.default.temporaryDirectory
        let outputURL = directory.appendingPathComponent("deploy-test-out-\(UUID())")
        let errorURL = directory.appendingPathComponent("deploy-test-err-\(UUID())")
        try #require(FileManager.default.createFile(atPath: outputURL.path, contents: nil))
        try #require(FileManager.default.createFile(atPath: errorURL.path, contents: nil))
        defer {
            try? FileManager.default.removeItem(at: outputURL)
            try? FileManager.default.removeItem(at: errorURL)
        }
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        let output = try FileHandle(forWritingTo: outputURL)
        let error = try FileHandle(forWritingTo: errorURL)
        process.standardOutput = output
        process.standardError = error
        try process.run()
        process.waitUntilExit()
        try output.close()
        try error.close()
        return (
            process.terminationStatus, try String(contentsOf: outputURL, encoding: .utf8),
            try String(contentsOf: errorURL, encoding: .utf8)
        )
    }
}
