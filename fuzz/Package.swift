// swift-tools-version:6.0
import PackageDescription

/// A libFuzzer target: `Sources/<name>/<name>.swift` defines `LLVMFuzzerTestOneInput`; libFuzzer brings `main`.
func fuzzTarget(_ name: String, using products: [String]) -> Target {
    .executableTarget(name: name, dependencies: products.map { .product(name: $0, package: "Portcullis") })
}

/// Coverage-guided fuzzing (libFuzzer) of the parsers that read what clients, identity providers and
/// operators send, and what the upstream answers: tokens, JSON, claim paths, request paths, config.json and
/// upstream responses. Not part of the build or the
/// tests; run it with `bash fuzz/run.sh`.
let package = Package(
    name: "PortcullisFuzz",
    platforms: [.macOS(.v15)],
    dependencies: [.package(name: "Portcullis", path: "..")],
    targets: [
        fuzzTarget("FuzzJSON", using: ["PortcullisCore"]),
        fuzzTarget("FuzzToken", using: ["PortcullisCore", "PortcullisCrypto"]),
        fuzzTarget("FuzzClaimPath", using: ["PortcullisCore"]),
        fuzzTarget("FuzzRequestPath", using: ["PortcullisCore"]),
        fuzzTarget("FuzzConfiguration", using: ["PortcullisCore", "PortcullisConfig"]),
        fuzzTarget("FuzzUpstreamResponse", using: ["PortcullisWire"]),
    ]
)
