// swift-tools-version:6.1
import PackageDescription

// Every target of ours: Swift 6 mode plus the upcoming features our code relies on.
let strictSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .unsafeFlags(["-warnings-as-errors"]),
]

// Generated code is not ours to keep warning-free.
let generatedSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
]

let package = Package(
    name: "kvd",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "kvd", targets: ["kvd"]),
        .executable(name: "kvctl", targets: ["kvctl"]),
        .library(name: "KVClient", targets: ["KVClient"]),
    ],
    dependencies: [
        .package(url: "https://github.com/grpc/grpc-swift-2.git", exact: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", exact: "2.9.2"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", exact: "2.4.1"),
        .package(url: "https://github.com/apple/swift-protobuf.git", exact: "1.39.0"),
        .package(url: "https://github.com/apple/swift-nio.git", exact: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", exact: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", exact: "1.46.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", exact: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", exact: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", exact: "4.5.2"),
        .package(url: "https://github.com/jpsim/Yams.git", exact: "6.2.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", exact: "2.4.1"),
        .package(url: "https://github.com/apple/swift-certificates.git", exact: "1.21.1"),
        .package(url: "https://github.com/ordo-one/benchmark.git", exact: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .systemLibrary(name: "CRocksDB", pkgConfig: "rocksdb", providers: [.apt(["librocksdb-dev"])]),
        // glibc's libresolv: SRV lookups for etcd's DNS discovery (--discovery-srv).
        .systemLibrary(name: "CResolv"),
        .target(name: "Storage", dependencies: ["CRocksDB"], swiftSettings: strictSettings),
        .target(name: "Raft", swiftSettings: strictSettings),
        .target(name: "MVCC", dependencies: ["Storage"], swiftSettings: strictSettings),
        .target(name: "Lease", swiftSettings: strictSettings),
        .target(
            name: "EtcdAPI",
            dependencies: [
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
            ],
            swiftSettings: generatedSettings
        ),
        .target(
            name: "Transport",
            dependencies: [
                "Raft", "EtcdAPI",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "Server",
            dependencies: [
                "Storage", "MVCC", "Lease", "EtcdAPI", "Raft", "Transport", "CResolv",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCInProcessTransport", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                // PBKDF2 for stored passwords.
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "X509", package: "swift-certificates"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "KVClient",
            dependencies: [
                "EtcdAPI",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strictSettings
        ),
        // kvd's command line and etcd's config file, turned into a `MemberConfiguration`, and the
        // command that runs a member (a library so that tests and fuzzing reach the parsers).
        .target(
            name: "KVDCommand",
            dependencies: [
                "Server", "Transport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "kvd",
            dependencies: ["KVDCommand", "Server"],
            swiftSettings: strictSettings,
            // jemalloc instead of glibc's malloc: a put allocates many small, short-lived objects
            // across threads (measured: 15-20% less CPU per put at 10 connections / 100 clients).
            linkerSettings: [.linkedLibrary("jemalloc", .when(platforms: [.linux]))]
        ),
        .executableTarget(
            name: "kvctl",
            dependencies: [
                "KVClient", "EtcdAPI",
                // snapshot restore writes a data directory as a member would; --discovery-srv.
                "Server",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(name: "StorageTests", dependencies: ["Storage"], swiftSettings: strictSettings),
        .testTarget(
            name: "RaftTests", dependencies: ["Raft"], exclude: ["testdata"], swiftSettings: strictSettings),
        .testTarget(name: "MVCCTests", dependencies: ["MVCC", "Storage"], swiftSettings: strictSettings),
        .testTarget(
            name: "TransportTests",
            dependencies: [
                "Transport", "Raft", .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"), .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strictSettings),
        .testTarget(name: "LeaseTests", dependencies: ["Lease"], swiftSettings: strictSettings),
        .testTarget(
            name: "ServerTests",
            dependencies: [
                "Server", "KVClient", "EtcdAPI", .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Crypto", package: "swift-crypto"), .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
            ],
            swiftSettings: strictSettings),
        .testTarget(
            name: "KVDCommandTests",
            dependencies: ["KVDCommand", "Transport", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strictSettings),
        .testTarget(name: "KVClientTests", dependencies: ["KVClient", "kvctl", "EtcdAPI"], swiftSettings: strictSettings),
        // kube-apiserver's etcd3 storage patterns against a three-member cluster (Tests/Cluster/kube-patterns.sh).
        .executableTarget(
            name: "KubePatterns",
            dependencies: [
                "EtcdAPI",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Tests/KubePatterns",
            swiftSettings: strictSettings
        ),
        // etcd's tools/benchmark request shapes against any etcd-compatible cluster (scripts/bench-cluster.sh).
        .executableTarget(
            name: "LoadGenerator",
            dependencies: [
                "EtcdAPI",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Benchmarks/LoadGenerator",
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "WritePathBenchmarks",
            dependencies: [
                "Storage", "MVCC", "Server", "EtcdAPI",
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/WritePathBenchmarks",
            swiftSettings: strictSettings,
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "RaftBenchmarks",
            dependencies: [
                "Raft",
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/RaftBenchmarks",
            swiftSettings: strictSettings,
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)

// Fuzz targets (`make fuzz`): libFuzzer entry points, built only when KVD_FUZZ is set and then
// with `--sanitize=fuzzer` (libFuzzer supplies `main`), so an ordinary build never sees them.
if Context.environment["KVD_FUZZ"] != nil {
    let fuzzSettings = strictSettings + [.unsafeFlags(["-parse-as-library"])]
    let fuzzTargets: [(name: String, path: String, dependencies: [Target.Dependency])] = [
        ("fuzz-raft-codec", "Fuzz/RaftCodec", ["Raft"]),
        ("fuzz-peer-stream", "Fuzz/PeerStream", [
            "Transport", "Raft", .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOEmbedded", package: "swift-nio"),
        ]),
        ("fuzz-client-requests", "Fuzz/ClientRequests", [
            "Server", "EtcdAPI", "MVCC", "Storage", .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ]),
        ("fuzz-snapshot-files", "Fuzz/SnapshotFiles", ["Server", "Storage"]),
        ("fuzz-member-settings", "Fuzz/MemberSettings", [
            "KVDCommand", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
    ]
    for target in fuzzTargets {
        package.targets.append(
            .executableTarget(name: target.name, dependencies: target.dependencies, path: target.path, swiftSettings: fuzzSettings))
        package.products.append(.executable(name: target.name, targets: [target.name]))
    }
}
