public import PortcullisConfig
public import PortcullisCore

/// The headers that carry a request's identity to the upstream: the role, the audience, the configured
/// claims and, optionally, the whole verified payload. Pure: a function of the decision and the `forward`
/// section of config.json.
public enum ForwardedIdentity {
    /// The identity headers for an allowed request, in a fixed order (role, audience, claims, payload).
    ///
    /// - `identity` nil is an anonymous request (no token on an optional route, or an `auth: none` route):
    ///   only the role header, set to `anonymousRole` when there is one, as PostgREST does.
    /// - A verified token without a role claim also gets `anonymousRole`.
    /// - A claim that is absent produces no header. A value that cannot be a header value as it is (a string
    ///   holding a control character) is sent as its JSON text, escaped, so the upstream never reads a role
    ///   or a user id that the token did not hold, and no claim can split a header.
    public static func headers(
        identity: VerifiedToken?, anonymousRole: String?, forwarding: PortcullisConfiguration.Forwarding
    ) -> [(name: String, value: String)] {
        var headers: [(name: String, value: String)] = []
        if let role = identity?.role.map(render) ?? anonymousRole {
            headers.append((forwarding.roleHeader, role))
        }
        guard let identity else { return headers }
        if let audienceHeader = forwarding.audienceHeader, let audience = identity.audience {
            headers.append((audienceHeader, render(.string(audience))))
        }
        let payload = JSONValue.object(identity.claims)
        for claim in forwarding.claims {
            let values = claim.path.values(in: payload)
            guard !values.isEmpty else { continue }
            // A path with a filter or a wildcard can select several values; they are one list to the upstream.
            let value = values.count == 1 ? values[0] : .array(values)
            if let separator = claim.join, case .array(let elements) = value {
                headers.append((claim.header, elements.map(render).joined(separator: separator)))
            } else {
                headers.append((claim.header, render(value)))
            }
        }
        if let claimsHeader = forwarding.claimsHeader {
            headers.append((claimsHeader, payload.compactJSON))
        }
        return headers
    }

    /// A string as it is when it is a valid field value (RFC 9110 §5.5, without leading or trailing
    /// whitespace); anything else as compact JSON, which escapes every control character.
    static func render(_ value: JSONValue) -> String {
        if case .string(let text) = value, isFieldValue(text) { return text }
        return value.compactJSON
    }

    static func isFieldValue(_ text: String) -> Bool {
        let bytes = text.utf8
        guard let first = bytes.first, let last = bytes.last else { return true }
        if first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") || last == UInt8(ascii: " ")
            || last == UInt8(ascii: "\t")
        {
            return false
        }
        return bytes.allSatisfy { $0 == UInt8(ascii: "\t") || ($0 >= 0x20 && $0 != 0x7F) }
    }
}
