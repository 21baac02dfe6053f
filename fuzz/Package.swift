// swift-tools-version:6.0
import PackageDescription

/// A libFuzzer target: `Sources/<name>/<name>.swift` defines `LLVMFuzzerTestOneInput`; libFuzzer brings `main`.
/// `nio` names products of swift-nio the target uses directly (a package names only its own dependencies').
func fuzzTarget(_ name: String, using products: [String], nio: [String] = []) -> Target {
    .executableTarget(
        name: name,
        dependencies: products.map { .product(name: $0, package: "Portcullis") }
            + nio.map { .product(name: $0, package: "swift-nio") }
    )
}

/// Coverage-guided fuzzing (libFuzzer) of the parsers that read what clients, identity providers and
/// operators send, and what the upstream answers: tokens, JSON, claim paths, request paths, config.json,
/// upstream responses, and client requests (against NIOHTTP1's own decoder). Not part of the build or the
/// tests; run it with `bash fuzz/run.sh`.
let package = Package(
    name: "PortcullisFuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Portcullis", path: ".."),
        // As the root package has it, so both resolve to the one checkout.
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        fuzzTarget("FuzzJSON", using: ["PortcullisCore"]),
        fuzzTarget("FuzzToken", using: ["PortcullisCore", "PortcullisCrypto"]),
        fuzzTarget("FuzzClaimPath", using: ["PortcullisCore"]),
        fuzzTarget("FuzzRequestPath", using: ["PortcullisCore"]),
        fuzzTarget("FuzzConfiguration", using: ["PortcullisCore", "PortcullisConfig"]),
        fuzzTarget("FuzzUpstreamResponse", using: ["PortcullisWire"]),
        fuzzTarget("FuzzClientRequest", using: ["PortcullisWire"], nio: ["NIOCore", "NIOHTTP1", "NIOEmbedded"]),
    ]
)
