public import Foundation
public import PortcullisCore

/// A problem in the configuration, at a JSON path such as `providers[0].jwks_url`.
public struct ConfigurationError: Error, Sendable, Hashable, CustomStringConvertible {
    public let path: String
    public let message: String

    public init(_ path: String, _ message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { path.isEmpty ? message : "\(path): \(message)" }
}

/// Every problem found, reported together so an operator fixes them in one pass.
public struct ConfigurationErrors: Error, Sendable, Hashable, CustomStringConvertible {
    public let errors: [ConfigurationError]
    public var description: String { errors.map(\.description).joined(separator: "\n") }
}

/// Durations are written "250ms", "30s", "5m", "1h", or as a number of seconds.
public enum ConfigurationDuration {
    /// Seconds, or nil when `value` is not a duration (or is negative).
    public static func seconds(_ value: JSONValue) -> Double? {
        switch value {
        case .number(let number):
            let seconds = number.doubleValue
            return seconds.isFinite && seconds >= 0 ? seconds : nil
        case .string(let text):
            let units: [(suffix: String, scale: Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
            for (suffix, scale) in units where text.hasSuffix(suffix) {
                let digits = text.dropLast(suffix.count)
                guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }),
                    let amount = Double(digits)
                else { return nil }
                return amount * scale
            }
            return nil
        default:
            return nil
        }
    }
}

extension ProviderConfiguration {
    /// The options a provider may set, each overriding the top-level value of the same name.
    static let inheritedOptions = ["issuer", "audiences", "algorithms", "require_exp", "clock_skew", "role_claim_key"]
    static let keySourceOptions = ["jwks_url", "jwks", "secret_env", "secret_file", "discovery"]
    static let providerOptions: Set<String> = Set(
        inheritedOptions + keySourceOptions + [
            "name", "secret_base64", "refresh_interval", "min_refresh_interval", "max_refresh_interval", "max_stale",
            "unknown_kid_wait", "connect_timeout", "timeout", "ca_file",
        ])

    /// Reads the `providers` list of a configuration object, with the top-level defaults of the inherited
    /// options. Returns every provider that is valid and every error found (paths relative to the root).
    ///
    /// - Parameters:
    ///   - environment: where `secret_env` is looked up.
    public static func decodeAll(
        from root: [String: JSONValue],
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> Result<[ProviderConfiguration], ConfigurationErrors> {
        var errors: [ConfigurationError] = []
        // Top-level defaults, checked once so each error is reported once.
        var defaults = OptionReader(members: root, path: "", errors: [])
        let defaultOptions = defaults.inheritedOptions()
        errors += defaults.errors

        guard case .array(let entries)? = root["providers"] else {
            errors.append(ConfigurationError("providers", "must be a list with at least one provider"))
            return .failure(ConfigurationErrors(errors: errors))
        }
        if entries.isEmpty { errors.append(ConfigurationError("providers", "must hold at least one provider")) }
        var providers: [ProviderConfiguration] = []
        var names: Set<String> = []
        for (index, entry) in entries.enumerated() {
            let path = "providers[\(index)]"
            guard case .object(let members) = entry else {
                errors.append(ConfigurationError(path, "must be an object"))
                continue
            }
            var reader = OptionReader(members: members, path: path, errors: [])
            for key in members.keys.sorted() where !providerOptions.contains(key) {
                reader.fail(key, "unknown key")
            }
            let provider = reader.provider(defaults: defaultOptions, environment: environment)
            // Checked on the raw name, so a duplicate is reported even when either provider has other errors.
            if let name = members["name"]?.stringValue, !names.insert(name).inserted {
                reader.fail("name", "another provider is named \"\(name)\"")
            }
            errors += reader.errors
            if let provider, reader.errors.isEmpty { providers.append(provider) }
        }
        return errors.isEmpty ? .success(providers) : .failure(ConfigurationErrors(errors: errors))
    }
}

/// Values of the options providers inherit from the top level.
struct InheritedOptions {
    var issuer: String??
    var audiences: [String]?
    var algorithms: Set<JWSAlgorithm>??
    var requireExpiry: Bool?
    var clockSkew: Double?
    var roleClaim: ClaimPath??
}

/// Reads typed options out of one JSON object, collecting errors with their paths.
struct OptionReader {
    let members: [String: JSONValue]
    let path: String
    var errors: [ConfigurationError]

    mutating func fail(_ key: String, _ message: String) {
        errors.append(ConfigurationError(path.isEmpty ? key : "\(path).\(key)", message))
    }

    mutating func string(_ key: String) -> String? {
        guard let value = members[key] else { return nil }
        guard case .string(let text) = value, !text.isEmpty else {
            fail(key, "must be a non-empty string")
            return nil
        }
        return text
    }

    mutating func bool(_ key: String) -> Bool? {
        guard let value = members[key] else { return nil }
        guard case .bool(let flag) = value else {
            fail(key, "must be true or false")
            return nil
        }
        return flag
    }

    mutating func duration(_ key: String, minimum: Double = 0) -> Double? {
        guard let value = members[key] else { return nil }
        guard let seconds = ConfigurationDuration.seconds(value) else {
            fail(key, "must be a duration such as \"250ms\", \"30s\", \"5m\", \"1h\", or a number of seconds")
            return nil
        }
        guard seconds >= minimum else {
            fail(key, "must be at least \(minimum) s")
            return nil
        }
        return seconds
    }

    mutating func strings(_ key: String) -> [String]? {
        switch members[key] {
        case nil: return nil
        case .string(let single): return [single]
        case .array(let elements):
            let strings = elements.compactMap(\.stringValue)
            guard strings.count == elements.count else {
                fail(key, "must be a string or a list of strings")
                return nil
            }
            return strings
        default:
            fail(key, "must be a string or a list of strings")
            return nil
        }
    }

    mutating func inheritedOptions() -> InheritedOptions {
        var options = InheritedOptions()
        if members["issuer"] != nil { options.issuer = .some(string("issuer")) }
        options.audiences = strings("audiences")
        if let names = strings("algorithms") {
            var algorithms: Set<JWSAlgorithm> = []
            for name in names {
                if let algorithm = JWSAlgorithm(rawValue: name) {
                    algorithms.insert(algorithm)
                } else {
                    fail(
                        "algorithms",
                        "\"\(name)\" is not one of \(JWSAlgorithm.allCases.map(\.rawValue).joined(separator: ", "))")
                }
            }
            if algorithms.isEmpty && names.isEmpty { fail("algorithms", "must name at least one algorithm") }
            options.algorithms = .some(algorithms)
        }
        options.requireExpiry = bool("require_exp")
        options.clockSkew = duration("clock_skew")
        if let source = string("role_claim_key") {
            do {
                options.roleClaim = .some(try ClaimPath(source))
            } catch {
                fail("role_claim_key", "\(error)")
            }
        }
        return options
    }

    mutating func provider(defaults: InheritedOptions, environment: [String: String]) -> ProviderConfiguration? {
        let name = string("name")
        if members["name"] == nil { fail("name", "is required") }
        let own = inheritedOptions()

        let present = ProviderConfiguration.keySourceOptions.filter { members[$0] != nil }
        if present.count != 1 {
            fail(
                present.count > 1 ? present[1] : "jwks_url",
                present.count > 1
                    ? "a provider has exactly one key source; found \(present.joined(separator: ", "))"
                    : "a provider needs one key source: jwks_url, jwks, secret_env, secret_file or discovery")
        }
        let base64 = bool("secret_base64") ?? false
        if members["secret_base64"] != nil && members["secret_env"] == nil && members["secret_file"] == nil {
            fail("secret_base64", "applies only to secret_env or secret_file")
        }
        var source: ProviderConfiguration.KeySource?
        if present.count == 1 {
            switch present[0] {
            case "jwks_url":
                if let url = string("jwks_url") {
                    let lowered = url.lowercased()
                    if ["https://", "http://", "file://"].contains(where: lowered.hasPrefix) {
                        source = .jwksURL(url)
                    } else {
                        fail("jwks_url", "must be an https://, http:// or file:// URL")
                    }
                }
            case "jwks":
                if case .object = members["jwks"], case .array? = members["jwks"]?["keys"] {
                    source = .inlineJWKS(members["jwks"]!)
                } else {
                    fail("jwks", "must be a JWKS object: {\"keys\": [...]}")
                }
            case "discovery":
                if let issuer = string("discovery") {
                    if ["https://", "http://"].contains(where: issuer.lowercased().hasPrefix) {
                        source = .discovery(issuer: issuer)
                    } else {
                        fail("discovery", "must be the issuer's https:// URL")
                    }
                }
            case "secret_env":
                if let variable = string("secret_env") {
                    do {
                        source = .secret(
                            try SecretLoading.fromEnvironment(variable, base64: base64, environment: environment))
                    } catch { fail("secret_env", error.message) }
                }
            default:
                if let file = string("secret_file") {
                    do { source = .secret(try SecretLoading.fromFile(file, base64: base64)) } catch {
                        fail("secret_file", error.message)
                    }
                }
            }
        }

        var refresh = RefreshPolicy()
        if let value = duration("refresh_interval", minimum: 1) { refresh.refreshInterval = value }
        if let value = duration("min_refresh_interval", minimum: 1) { refresh.minRefreshInterval = value }
        if let value = duration("max_refresh_interval", minimum: 1) { refresh.maxRefreshInterval = value }
        if let value = duration("max_stale", minimum: 1) { refresh.maxStale = value }
        if refresh.minRefreshInterval > refresh.maxRefreshInterval {
            fail("min_refresh_interval", "must not exceed max_refresh_interval")
        }
        var fetch = ProviderConfiguration.Fetch()
        if let value = duration("connect_timeout", minimum: 0.001) {
            fetch.connectTimeout = .milliseconds(value * 1000)
        }
        if let value = duration("timeout", minimum: 0.001) { fetch.timeout = .milliseconds(value * 1000) }
        fetch.caFile = string("ca_file")
        let unknownKidWait = duration("unknown_kid_wait")

        guard let name, let source else { return nil }
        var provider = ProviderConfiguration(name: name, keySource: source)
        // A provider's own value wins; otherwise the top level's; otherwise the default.
        provider.issuer = (own.issuer ?? defaults.issuer) ?? nil
        provider.audiences = own.audiences ?? defaults.audiences ?? []
        provider.algorithms = (own.algorithms ?? defaults.algorithms) ?? nil
        provider.requireExpiry = own.requireExpiry ?? defaults.requireExpiry ?? true
        provider.clockSkew = own.clockSkew ?? defaults.clockSkew ?? 30
        provider.roleClaim = (own.roleClaim ?? defaults.roleClaim) ?? nil
        provider.refresh = refresh
        provider.fetch = fetch
        if let unknownKidWait { provider.unknownKidWait = .milliseconds(unknownKidWait * 1000) }
        return provider
    }
}
