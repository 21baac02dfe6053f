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

    public init(errors: [ConfigurationError]) {
        self.errors = errors
    }

    public var description: String { errors.map(\.description).joined(separator: "\n") }
}

/// Durations are written "250ms", "30s", "5m", "1h", or as a number of seconds.
public enum ConfigurationDuration {
    /// The longest duration any option takes: a year. Longer means "never" for every timeout and interval
    /// here, and a bound keeps every later conversion (to nanoseconds in an `Int64`, for timers) in range.
    public static let maximum: Double = 365 * 24 * 3600

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

/// Reads typed options out of one JSON object, collecting errors with their paths.
public struct ConfigurationReader {
    public let members: [String: JSONValue]
    public let path: String
    public var errors: [ConfigurationError]

    public init(members: [String: JSONValue], path: String, errors: [ConfigurationError] = []) {
        self.members = members
        self.path = path
        self.errors = errors
    }

    /// Reports every member not in `known` as an unknown key.
    public mutating func refuseUnknownKeys(_ known: Set<String>) {
        for key in members.keys.sorted() where !known.contains(key) { fail(key, "unknown key") }
    }

    /// The path of a member, for errors about nested values.
    public func path(of key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    public mutating func fail(_ key: String, _ message: String) {
        errors.append(ConfigurationError(path.isEmpty ? key : "\(path).\(key)", message))
    }

    public mutating func string(_ key: String) -> String? {
        guard let value = members[key] else { return nil }
        guard case .string(let text) = value, !text.isEmpty else {
            fail(key, "must be a non-empty string")
            return nil
        }
        return text
    }

    public mutating func bool(_ key: String) -> Bool? {
        guard let value = members[key] else { return nil }
        guard case .bool(let flag) = value else {
            fail(key, "must be true or false")
            return nil
        }
        return flag
    }

    public mutating func duration(_ key: String, minimum: Double = 0) -> Double? {
        guard let value = members[key] else { return nil }
        guard let seconds = ConfigurationDuration.seconds(value) else {
            fail(key, "must be a duration such as \"250ms\", \"30s\", \"5m\", \"1h\", or a number of seconds")
            return nil
        }
        guard seconds >= minimum else {
            fail(key, "must be at least \(minimum) s")
            return nil
        }
        guard seconds <= ConfigurationDuration.maximum else {
            fail(key, "must be at most 8760h (a year)")
            return nil
        }
        return seconds
    }

    public mutating func strings(_ key: String) -> [String]? {
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
}
