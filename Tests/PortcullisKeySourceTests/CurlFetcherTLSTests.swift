import Foundation
import PortcullisKeySource
import PortcullisTestSupport
import Testing

/// `CurlFetcher` over real TLS: certificate trust through `caFile`, the https redirect policy and the
/// User-Agent header, against Tests/Support/jwks_server.py started with a certificate for `localhost`. Each
/// test makes its own throwaway PKI with the `openssl` CLI (EC P-256 keys, so it takes milliseconds) and its own
/// server, so tests can run in parallel.
@Suite("CurlFetcher over TLS (libcurl, real sockets)")
struct CurlFetcherTLSTests {
    let fetcher = CurlFetcher()

    @Test("a caFile holding the CA that signed the server's certificate is trusted")
    func trustedCA() async throws {
        let pki = try TestPKI()
        defer { pki.remove() }
        let server = try JWKSTestServer.start(tlsCertificate: pki.serverCertificate, key: pki.serverKey)
        defer { server.stop() }
        let url = try #require(server.tlsBaseURL) + "/jwks.json"
        #expect(url.hasPrefix("https://localhost:"))

        let response = try await fetcher.fetch(FetchRequest(url: url, caFile: pki.caFile))
        #expect(response.status == 200)
        let document = try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]
        #expect((document?["keys"] as? [Any])?.count == 1)
        #expect(response.effectiveURL == url)
        #expect(try server.jwksRequestCount() == 1)
    }

    @Test("without a caFile only the system store is trusted, and it does not know the test CA")
    func systemStoreOnly() async throws {
        let pki = try TestPKI()
        defer { pki.remove() }
        let server = try JWKSTestServer.start(tlsCertificate: pki.serverCertificate, key: pki.serverKey)
        defer { server.stop() }
        let url = try #require(server.tlsBaseURL) + "/jwks.json"

        let error = await #expect(throws: FetchError.self) {
            try await fetcher.fetch(FetchRequest(url: url))
        }
        #expect(error?.kind == .tls)
        #expect(error?.message.hasPrefix("TLS certificate verification failed") == true, "\(String(describing: error))")
        #expect(try server.requestCounts().isEmpty)  // no HTTP request went over the rejected connection
    }

    @Test("a caFile holding an unrelated CA is not enough")
    func unrelatedCA() async throws {
        let pki = try TestPKI()
        defer { pki.remove() }
        let server = try JWKSTestServer.start(tlsCertificate: pki.serverCertificate, key: pki.serverKey)
        defer { server.stop() }
        let url = try #require(server.tlsBaseURL) + "/jwks.json"

        let error = await #expect(throws: FetchError.self) {
            try await fetcher.fetch(FetchRequest(url: url, caFile: pki.unrelatedCAFile))
        }
        #expect(error?.kind == .tls)
        #expect(error?.message.hasPrefix("TLS certificate verification failed") == true, "\(String(describing: error))")
        #expect(try server.requestCounts().isEmpty)
    }

    @Test("https → http redirects are refused; https → https and http → https are followed")
    func redirectPolicy() async throws {
        let pki = try TestPKI()
        defer { pki.remove() }
        let server = try JWKSTestServer.start(tlsCertificate: pki.serverCertificate, key: pki.serverKey)
        defer { server.stop() }
        let tlsBaseURL = try #require(server.tlsBaseURL)

        let downgrade = await #expect(throws: FetchError.self) {
            try await fetcher.fetch(
                FetchRequest(url: redirect(from: tlsBaseURL, to: server.baseURL + "/jwks.json"), caFile: pki.caFile))
        }
        #expect(downgrade?.kind == .refusedRedirect)
        #expect(downgrade?.message == "redirect from https to http refused")
        var counts = try server.requestCounts()
        #expect(counts["/redirect-to"] == 1)
        #expect(counts["/jwks.json"] == nil)  // the plain-text target was never asked

        let secure = try await fetcher.fetch(
            FetchRequest(url: redirect(from: tlsBaseURL, to: tlsBaseURL + "/jwks.json"), caFile: pki.caFile))
        #expect(secure.status == 200)
        #expect(secure.effectiveURL == tlsBaseURL + "/jwks.json")

        let upgrade = try await fetcher.fetch(
            FetchRequest(url: redirect(from: server.baseURL, to: tlsBaseURL + "/jwks.json"), caFile: pki.caFile))
        #expect(upgrade.status == 200)
        #expect(upgrade.effectiveURL == tlsBaseURL + "/jwks.json")
        counts = try server.requestCounts()
        #expect(counts["/redirect-to"] == 3)
        #expect(counts["/jwks.json"] == 2)
    }

    @Test("the request's User-Agent reaches the server, over http and https")
    func userAgent() async throws {
        let pki = try TestPKI()
        defer { pki.remove() }
        let server = try JWKSTestServer.start(tlsCertificate: pki.serverCertificate, key: pki.serverKey)
        defer { server.stop() }
        #expect(try server.lastUserAgent() == nil)

        let plain = FetchRequest(url: server.baseURL + "/jwks.json")
        #expect(plain.userAgent.hasPrefix("Portcullis/"))
        _ = try await fetcher.fetch(plain)
        #expect(try server.lastUserAgent() == plain.userAgent)

        var custom = FetchRequest(url: try #require(server.tlsBaseURL) + "/jwks.json", caFile: pki.caFile)
        custom.userAgent = "PortcullisTLSTest/2.0 (user-agent check)"
        _ = try await fetcher.fetch(custom)
        #expect(try server.lastUserAgent() == "PortcullisTLSTest/2.0 (user-agent check)")
    }

    /// `base/redirect-to?url=<target>`: the server answers 302 with `target` as Location.
    private func redirect(from base: String, to target: String) -> String {
        let encoded = target.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? target
        return base + "/redirect-to?url=" + encoded
    }
}

/// A throwaway PKI in a fresh temporary directory, made with the `openssl` CLI: a self-signed CA, a server key
/// and certificate for `localhost` (SAN DNS:localhost, IP:127.0.0.1) signed by it, and a second CA that has
/// nothing to do with either. Everything is valid for two days.
private struct TestPKI {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    let directory: URL
    /// PEM certificate of the CA that signed the server's certificate.
    let caFile: String
    /// PEM certificate of an unrelated, equally self-signed CA.
    let unrelatedCAFile: String
    let serverCertificate: String
    let serverKey: String

    init() throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("portcullis-pki-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
        self.directory = directory
        caFile = path("ca.pem")
        unrelatedCAFile = path("unrelated-ca.pem")
        serverCertificate = path("server.pem")
        serverKey = path("server.key")
        do {
            try Self.makeCA(certificate: caFile, key: path("ca.key"), name: "Portcullis Test CA")
            try Self.makeCA(certificate: unrelatedCAFile, key: path("unrelated-ca.key"), name: "Unrelated Test CA")
            try Self.openssl(
                "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", serverKey, "-out", path("server.csr"), "-subj", "/CN=localhost")
            let extensions = """
                basicConstraints = critical, CA:FALSE
                keyUsage = critical, digitalSignature
                extendedKeyUsage = serverAuth
                subjectAltName = DNS:localhost, IP:127.0.0.1
                subjectKeyIdentifier = hash
                authorityKeyIdentifier = keyid, issuer

                """
            try Data(extensions.utf8).write(to: URL(fileURLWithPath: path("server.ext")))
            try Self.openssl(
                "x509", "-req", "-in", path("server.csr"), "-CA", caFile, "-CAkey", path("ca.key"),
                "-CAcreateserial", "-days", "2", "-extfile", path("server.ext"), "-out", serverCertificate)
        } catch {
            remove()
            throw error
        }
    }

    func remove() {
        try? FileManager.default.removeItem(at: directory)
    }

    private static func makeCA(certificate: String, key: String, name: String) throws {
        try openssl(
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", certificate, "-days", "2", "-subj", "/CN=\(name)",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    }

    /// Runs `openssl` with these arguments; throws with its output when it fails.
    private static func openssl(_ arguments: String...) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["openssl"] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        try process.run()
        // Read before waiting, so a chatty openssl cannot fill the pipe and block.
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationReason == .exit && process.terminationStatus == 0 else {
            throw Failure(description: "openssl \(arguments.joined(separator: " ")) failed: \(text)")
        }
    }
}
