public import Foundation
public import PortcullisCore

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
        var defaults = ConfigurationReader(members: root, path: "", errors: [])
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
            var reader = ConfigurationReader(members: members, path: path, errors: [])
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

extension ConfigurationReader {
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
