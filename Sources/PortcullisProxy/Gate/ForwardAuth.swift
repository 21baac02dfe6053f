public import NIOHTTP1

/// The forward-auth protocol of the common front proxies: which request they are asking about.
public enum ForwardAuth {
    /// The request the front proxy received, from the headers it describes it with: `X-Forwarded-Method` /
    /// `X-Forwarded-Uri` (Traefik, Caddy) or `X-Original-Method` / `X-Original-URI` (the nginx
    /// `auth_request` convention). Whatever is not described is taken from the question itself. The
    /// question's headers (the token among them) are the original request's: front proxies pass them on.
    public static func originalRequest(_ question: HTTPRequestHead) -> HTTPRequestHead {
        let headers = question.headers
        let method =
            (headers.first(name: "x-forwarded-method") ?? headers.first(name: "x-original-method"))
            .map { HTTPMethod(rawValue: $0.uppercased()) } ?? question.method
        let uri = headers.first(name: "x-forwarded-uri") ?? headers.first(name: "x-original-uri") ?? question.uri
        return HTTPRequestHead(version: question.version, method: method, uri: uri, headers: headers)
    }
}
