import PortcullisCore
import Testing

@Suite("Policy: token extraction")
struct PolicyTokenExtractionTests {
    static let bearer = TokenSource.authorizationBearer
    static let cookie = TokenSource.cookie(name: "session")
    static let query = TokenSource.query(name: "access_token")
    static let apiKey = TokenSource.header(name: "X-Api-Token", scheme: nil)

    private func extract(
        _ headers: [(name: String, value: String)], query: Substring? = nil, sources: [TokenSource] = [bearer]
    ) -> TokenExtraction {
        TokenExtractor(sources: sources).extract(headers: headers, query: query)
    }

    private func isInvalid(_ extraction: TokenExtraction) -> Bool {
        if case .invalidRequest = extraction { return true }
        return false
    }

    // MARK: - Authorization: Bearer

    @Test("the default source is Authorization: Bearer")
    func defaultSource() {
        #expect(TokenExtractor().sources == [.authorizationBearer])
        #expect(TokenSource.authorizationBearer == .header(name: "Authorization", scheme: "Bearer"))
        #expect(extract([("Authorization", "Bearer abc.def.ghi")]) == .token("abc.def.ghi", source: Self.bearer))
    }

    @Test(
        "header names are compared ignoring case",
        arguments: ["Authorization", "authorization", "AUTHORIZATION", "aUtHoRiZaTiOn"])
    func headerNameCase(name: String) {
        #expect(extract([(name, "Bearer abc")]) == .token("abc", source: Self.bearer))
    }

    @Test("the scheme is compared ignoring case", arguments: ["Bearer", "bearer", "BEARER", "bEaReR"])
    func schemeCase(scheme: String) {
        #expect(extract([("Authorization", "\(scheme) abc")]) == .token("abc", source: Self.bearer))
    }

    @Test("spaces around and after the scheme are trimmed")
    func spaces() {
        for value in ["Bearer    abc", "Bearer abc   ", "  Bearer abc", "Bearer\tabc", "Bearer \t abc \t"] {
            #expect(extract([("Authorization", value)]) == .token("abc", source: Self.bearer), "\(value)")
        }
    }

    @Test("another scheme, or no scheme, is not a bearer token")
    func otherSchemes() {
        for value in ["Basic dXNlcjpwYXNz", "Bearerabc", "Bear abc", "", "   ", "abc", "DPoP abc", "Token abc"] {
            #expect(extract([("Authorization", value)]) == .none, "\(value)")
        }
        #expect(extract([]) == .none)
        #expect(extract([("X-Other", "Bearer abc"), ("Content-Type", "application/json")]) == .none)
    }

    @Test("the scheme with no token is an invalid request")
    func schemeWithoutToken() {
        for value in ["Bearer", "bearer", "Bearer ", "Bearer    ", "BEARER \t "] {
            #expect(
                extract([("Authorization", value)])
                    == .invalidRequest("The Authorization header has the Bearer scheme but no token"), "\(value)")
        }
    }

    @Test("two Authorization headers are refused, even with the same token or another scheme")
    func twoAuthorizationHeaders() {
        let pairs: [[(name: String, value: String)]] = [
            [("Authorization", "Bearer abc"), ("Authorization", "Bearer abc")],
            [("Authorization", "Bearer abc"), ("Authorization", "Bearer xyz")],
            [("Authorization", "Bearer abc"), ("authorization", "Bearer abc")],
            [("Authorization", "Basic dXNlcjpwYXNz"), ("Authorization", "Bearer abc")],
            [("Authorization", ""), ("Authorization", "Bearer abc")],
        ]
        for headers in pairs {
            #expect(extract(headers) == .invalidRequest("More than one Authorization header"))
        }
    }

    @Test("a header without a scheme gives its whole value")
    func headerWithoutScheme() {
        let sources = [Self.apiKey]
        #expect(extract([("x-api-token", "abc")], sources: sources) == .token("abc", source: Self.apiKey))
        #expect(extract([("X-API-TOKEN", "  abc  ")], sources: sources) == .token("abc", source: Self.apiKey))
        #expect(extract([("Authorization", "Bearer abc")], sources: sources) == .none)
        #expect(extract([("X-Api-Token", "")], sources: sources) == .invalidRequest("The X-Api-Token header is empty"))
        #expect(
            extract([("X-Api-Token", "abc"), ("X-Api-Token", "abc")], sources: sources)
                == .invalidRequest("More than one X-Api-Token header"))
    }

    @Test("a custom scheme")
    func customScheme() {
        let source = TokenSource.header(name: "Authorization", scheme: "Token")
        #expect(extract([("Authorization", "token abc")], sources: [source]) == .token("abc", source: source))
        #expect(extract([("Authorization", "Bearer abc")], sources: [source]) == .none)
        // Two sources on one header: whichever scheme is sent.
        let both = [Self.bearer, source]
        #expect(extract([("Authorization", "Token abc")], sources: both) == .token("abc", source: source))
        #expect(extract([("Authorization", "Bearer abc")], sources: both) == .token("abc", source: Self.bearer))
    }

    // MARK: - Query parameters

    @Test("a query parameter, percent-decoded")
    func queryParameter() {
        let sources = [Self.query]
        let cases: [(query: Substring, token: Substring)] = [
            ("access_token=abc", "abc"),
            ("a=1&access_token=abc&b=2", "abc"),
            ("access_token=a%2Eb%2ec", "a.b.c"),
            ("access_token=a+b", "a b"),
            ("access_token=a%2Bb", "a+b"),
            ("access_token=a=b", "a=b"),
            ("access%5Ftoken=abc", "abc"),
            ("&&access_token=abc&&", "abc"),
            ("%zz=1&access_token=abc", "abc"),
            ("access_token=abc&access_token=abc", "abc"),
            ("access_token=caf%C3%A9", "café"),
        ]
        for (query, token) in cases {
            #expect(extract([], query: query, sources: sources) == .token(token, source: Self.query), "\(query)")
        }
    }

    @Test("other parameters, other spellings and no query are no token")
    func noQueryToken() {
        let sources = [Self.query]
        for query: Substring? in [nil, "", "a=1", "Access_Token=abc", "xaccess_token=abc", "access_token_x=abc"] {
            #expect(extract([], query: query, sources: sources) == .none, "\(String(describing: query))")
        }
        // The query is not read when no source asks for it.
        #expect(extract([], query: "access_token=abc") == .none)
    }

    @Test("an empty, undecodable or repeated-and-different query parameter is an invalid request")
    func badQueryParameter() {
        let sources = [Self.query]
        let empty = TokenExtraction.invalidRequest("The access_token query parameter is empty")
        let undecodable = TokenExtraction.invalidRequest(
            "The access_token query parameter is not valid percent-encoding")
        #expect(extract([], query: "access_token=", sources: sources) == empty)
        #expect(extract([], query: "access_token", sources: sources) == empty)
        #expect(extract([], query: "access_token=%zz", sources: sources) == undecodable)
        #expect(extract([], query: "access_token=abc%4", sources: sources) == undecodable)
        #expect(extract([], query: "access_token=%C3%28", sources: sources) == undecodable)
        #expect(
            extract([], query: "access_token=abc&access_token=xyz", sources: sources)
                == .invalidRequest("The access_token query parameter appears twice with different values"))
    }

    // MARK: - Cookies

    @Test("a cookie from the Cookie header")
    func cookie() {
        let sources = [Self.cookie]
        let cases: [(header: String, token: Substring)] = [
            ("session=abc", "abc"),
            ("a=1; session=abc; b=2", "abc"),
            ("a=1;session=abc;b=2", "abc"),
            ("  session  =  abc  ;", "abc"),
            ("session=\"abc\"", "abc"),
            ("session=\"abc", "\"abc"),
            ("session=a=b", "a=b"),
            ("flag; session=abc", "abc"),
            (";;; session=abc ;;", "abc"),
            ("session=abc; session=abc", "abc"),
            ("session=%41bc", "%41bc"),
            ("=x; session=abc", "abc"),
        ]
        for (header, token) in cases {
            #expect(extract([("Cookie", header)], sources: sources) == .token(token, source: Self.cookie), "\(header)")
        }
        #expect(extract([("COOKIE", "session=abc")], sources: sources) == .token("abc", source: Self.cookie))
    }

    @Test("cookies across several Cookie headers (HTTP/2 sends one per cookie)")
    func severalCookieHeaders() {
        let sources = [Self.cookie]
        #expect(
            extract([("Cookie", "a=1"), ("cookie", "session=abc"), ("Cookie", "b=2")], sources: sources)
                == .token("abc", source: Self.cookie))
        #expect(
            extract([("Cookie", "session=abc"), ("Cookie", "session=abc")], sources: sources)
                == .token("abc", source: Self.cookie))
        let different = TokenExtraction.invalidRequest("The session cookie appears twice with different values")
        #expect(extract([("Cookie", "session=abc"), ("Cookie", "session=xyz")], sources: sources) == different)
        #expect(extract([("Cookie", "session=abc; session=xyz")], sources: sources) == different)
    }

    @Test("an empty, missing or differently named cookie is no token")
    func noCookie() {
        let sources = [Self.cookie]
        for header in ["session=", "session=\"\"", "session", "Session=abc", "xsession=abc", "a=1", "", ";"] {
            #expect(extract([("Cookie", header)], sources: sources) == .none, "\(header)")
        }
        #expect(extract([("Set-Cookie", "session=abc")], sources: sources) == .none)
        // An empty duplicate does not conflict with a real value.
        #expect(extract([("Cookie", "session=; session=abc")], sources: sources) == .token("abc", source: Self.cookie))
    }

    // MARK: - Several sources

    static let all = [bearer, cookie, query]

    @Test("the same token in two sources is accepted, from the first source in configured order")
    func sameTokenTwice() {
        #expect(
            extract([("Authorization", "Bearer abc"), ("Cookie", "session=abc")], sources: Self.all)
                == .token("abc", source: Self.bearer))
        #expect(
            extract([("Cookie", "session=abc")], query: "access_token=abc", sources: Self.all)
                == .token("abc", source: Self.cookie))
        #expect(
            extract([("Authorization", "Bearer abc"), ("Cookie", "session=abc")], sources: [Self.cookie, Self.bearer])
                == .token("abc", source: Self.cookie))
    }

    @Test("any one source alone")
    func oneSourceOfSeveral() {
        #expect(extract([("Cookie", "session=abc")], sources: Self.all) == .token("abc", source: Self.cookie))
        #expect(extract([], query: "access_token=abc", sources: Self.all) == .token("abc", source: Self.query))
        #expect(extract([("Authorization", "Bearer abc")], sources: Self.all) == .token("abc", source: Self.bearer))
        #expect(extract([], query: "x=1", sources: Self.all) == .none)
        // A Basic Authorization header is not a token, and does not hide the cookie.
        #expect(
            extract([("Authorization", "Basic dXNlcjpwYXNz"), ("Cookie", "session=abc")], sources: Self.all)
                == .token("abc", source: Self.cookie))
    }

    @Test("different tokens in two sources are refused")
    func differentTokens() {
        #expect(
            extract([("Authorization", "Bearer abc"), ("Cookie", "session=xyz")], sources: Self.all)
                == .invalidRequest("Different tokens in the Authorization header and the session cookie"))
        #expect(
            extract([("Authorization", "Bearer abc")], query: "access_token=xyz", sources: Self.all)
                == .invalidRequest("Different tokens in the Authorization header and the access_token query parameter"))
        #expect(
            extract([("Cookie", "session=abc")], query: "access_token=xyz", sources: Self.all)
                == .invalidRequest("Different tokens in the session cookie and the access_token query parameter"))
    }

    @Test("a malformed source is refused even when another source has a good token")
    func malformedBesideGood() {
        #expect(isInvalid(extract([("Authorization", "Bearer"), ("Cookie", "session=abc")], sources: Self.all)))
        #expect(isInvalid(extract([("Cookie", "session=abc")], query: "access_token=", sources: Self.all)))
    }

    @Test("reasons never hold token text")
    func reasonsHoldNoToken() {
        let secret = "eyJSECRET.eyJSECRET.SECRET"
        let requests: [(headers: [(name: String, value: String)], query: Substring?)] = [
            ([("Authorization", "Bearer \(secret)"), ("Authorization", "Bearer \(secret)")], nil),
            ([("Authorization", "Bearer \(secret)"), ("Cookie", "session=other")], nil),
            ([("Cookie", "session=\(secret); session=other")], nil),
            ([], "access_token=\(secret)&access_token=other"),
            ([], "access_token=\(secret)%zz"),
        ]
        for request in requests {
            let extraction = extract(request.headers, query: request.query, sources: Self.all)
            guard case .invalidRequest(let reason) = extraction else {
                Issue.record("expected an invalid request, got \(extraction)")
                continue
            }
            #expect(!reason.contains("SECRET") && !reason.contains("other"))
        }
    }

    @Test(
        "a lone header source answers exactly as it does beside another source",
        arguments: [bearer, apiKey])
    func loneHeaderSourceMatchesGeneralPath(source: TokenSource) {
        // One header source takes a shortcut past the per-source tables; a query source that no request here
        // uses sends the same requests down the general path.
        let general = [source, .query(name: "unused")]
        let requests: [[(name: String, value: String)]] = [
            [],
            [("Authorization", "Bearer abc")],
            [("authorization", "bearer  abc  ")],
            [("Authorization", "Bearer")],
            [("Authorization", "Bearer ")],
            [("Authorization", "Basic abc")],
            [("Authorization", "Bearerabc")],
            [("Authorization", "Bearer abc"), ("Authorization", "Bearer abc")],
            [("Authorization", "Basic x"), ("Authorization", "Bearer abc")],
            [("X-Api-Token", "abc")],
            [("x-api-token", "  ")],
            [("X-API-TOKEN", "abc"), ("X-Api-Token", "abc")],
            [("Cookie", "session=abc"), ("Accept", "*/*")],
        ]
        for headers in requests {
            #expect(extract(headers, sources: [source]) == extract(headers, sources: general), "\(headers)")
        }
    }

    @Test("sources describe themselves for messages")
    func descriptions() {
        #expect(Self.bearer.description == "the Authorization header")
        #expect(Self.query.description == "the access_token query parameter")
        #expect(Self.cookie.description == "the session cookie")
    }
}
