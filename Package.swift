// swift-tools-version:6.0
import PackageDescription

/// Upcoming features every target opts into: existential types spelled `any`, checked at compile time.
let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "Portcullis",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "portcullis", targets: ["portcullis"]),
        .library(name: "PortcullisCore", targets: ["PortcullisCore"]),
        .library(name: "PortcullisCrypto", targets: ["PortcullisCrypto"]),
        .library(name: "PortcullisKeySource", targets: ["PortcullisKeySource"]),
        .library(name: "PortcullisProxy", targets: ["PortcullisProxy"]),
        .library(name: "PortcullisConfig", targets: ["PortcullisConfig"]),
        .library(name: "PortcullisWire", targets: ["PortcullisWire"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    ],
    targets: [
        // The system OpenSSL (libcrypto 3). Debian: libssl-dev.
        .systemLibrary(
            name: "CLibcrypto",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
        ),
        // The system libcurl, for JWKS and discovery fetches. Debian: libcurl4-openssl-dev.
        .systemLibrary(
            name: "CLibcurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        // Pure logic: token parsing, JSON, claims, role-claim paths, key selection, decisions. No I/O.
        .target(
            name: "PortcullisCore",
            swiftSettings: strictSettings
        ),
        // OpenSSL-backed keys and signature checks, and JWKS loading on top of the core rules.
        .target(
            name: "PortcullisCrypto",
            dependencies: [
                "PortcullisCore",
                "CLibcrypto",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // Key sources: JWKS over libcurl, inline sets, HMAC secrets, OIDC discovery, and the refresh driver
        // around the pure state machine in PortcullisCore.
        .target(
            name: "PortcullisKeySource",
            dependencies: [
                "PortcullisCore",
                "PortcullisCrypto",
                "CLibcurl",
                .product(name: "Logging", package: "swift-log"),
                // Locks that ThreadSanitizer sees (pthread); the standard library's Mutex is invisible to it.
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        // config.json: read strictly, every error with its JSON path.
        .target(
            name: "PortcullisConfig",
            dependencies: ["PortcullisCore", "PortcullisKeySource"],
            swiftSettings: strictSettings
        ),
        // The HTTP/1.1 relay (SwiftNIO): the request gate, the upstream pool, the streaming glue.
        // HTTP/1.1 as bytes: what the relay reads from clients and from the upstream, parsed strictly (into
        // NIOHTTP1's types). Pure: no I/O, no channel.
        .target(
            name: "PortcullisWire",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "PortcullisProxy",
            dependencies: [
                "PortcullisCore",
                "PortcullisWire",
                "PortcullisCrypto",
                "PortcullisKeySource",
                "PortcullisConfig",
                "CLibcrypto",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "portcullis",
            dependencies: [
                "PortcullisCore",
                "PortcullisCrypto",
                "PortcullisConfig",
                "PortcullisKeySource",
                "PortcullisProxy",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        // Verification throughput, run in release mode by bench/verify.sh beside `openssl speed`.
        .executableTarget(
            name: "portcullis-verify-bench",
            dependencies: ["PortcullisCore", "PortcullisCrypto"],
            path: "Benchmarks/VerifyBenchmark",
            swiftSettings: strictSettings
        ),
        // The floor of the stack: bare SwiftNIO relays (HTTP codec, raw bytes) that bench/proxy.sh measures beside
        // nginx and Portcullis.
        .executableTarget(
            name: "portcullis-relay-floor",
            dependencies: [
                "PortcullisWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Benchmarks/RelayFloor",
            swiftSettings: strictSettings
        ),
        // Shared by the test targets: the independent token minter, log capture.
        .target(
            name: "PortcullisTestSupport",
            dependencies: ["PortcullisCore", "CLibcrypto", .product(name: "Logging", package: "swift-log")],
            path: "Tests/PortcullisTestSupport",
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "PortcullisCoreTests",
            dependencies: ["PortcullisCore", "PortcullisTestSupport"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "PortcullisKeySourceTests",
            dependencies: [
                "PortcullisCore", "PortcullisCrypto", "PortcullisKeySource", "PortcullisConfig",
                "PortcullisTestSupport",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "PortcullisProxyTests",
            dependencies: [
                "PortcullisCore", "PortcullisKeySource", "PortcullisConfig", "PortcullisProxy",
                "PortcullisTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "PortcullisWireTests",
            dependencies: [
                "PortcullisWire", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "PortcullisCryptoTests",
            dependencies: [
                "PortcullisCore", "PortcullisCrypto", "CLibcrypto", "PortcullisTestSupport",
                .product(name: "Logging", package: "swift-log"),
            ],
            resources: [.copy("Fixtures")],
            swiftSettings: strictSettings
        ),
    ]
)
