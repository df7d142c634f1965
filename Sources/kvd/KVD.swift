internal import ArgumentParser
internal import Dispatch
internal import Foundation
internal import Logging
internal import Server

/// `kvd`: starts one member with etcd's flags, so that one command line starts either etcd or kvd.
@main
struct KVD: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kvd",
        abstract: "An etcd-compatible key-value store on Raft and RocksDB."
    )

    @Option(help: "Human-readable name for this member.")
    var name = "default"

    @Option(name: .customLong("data-dir"), help: "Path to the data directory (default: ${name}.etcd).")
    var dataDirectory: String?

    @Option(name: .customLong("listen-client-urls"), help: "Comma-separated URLs to listen on for client traffic.")
    var listenClientURLs = "http://127.0.0.1:2379"

    @Option(name: .customLong("advertise-client-urls"), help: "Comma-separated client URLs to advertise.")
    var advertiseClientURLs = "http://127.0.0.1:2379"

    @Option(name: .customLong("listen-peer-urls"), help: "Comma-separated URLs to listen on for peer traffic.")
    var listenPeerURLs = "http://127.0.0.1:2380"

    @Option(name: .customLong("initial-advertise-peer-urls"), help: "This member's peer URLs to advertise.")
    var initialAdvertisePeerURLs = "http://127.0.0.1:2380"

    @Option(name: .customLong("initial-cluster"), help: "Initial cluster configuration: name=peerURL,...")
    var initialCluster: String?

    @Option(name: .customLong("initial-cluster-state"), help: "new or existing.")
    var initialClusterState = "new"

    @Option(name: .customLong("initial-cluster-token"), help: "Initial cluster token.")
    var initialClusterToken = "etcd-cluster"

    @Option(name: .customLong("cert-file"), help: "Path to the client server TLS cert file.")
    var certFile: String?

    @Option(name: .customLong("key-file"), help: "Path to the client server TLS key file.")
    var keyFile: String?

    @Option(name: .customLong("trusted-ca-file"), help: "Path to the client server TLS trusted CA cert file.")
    var trustedCAFile: String?

    @Flag(name: .customLong("client-cert-auth"), help: "Require client certificates signed by --trusted-ca-file.")
    var clientCertAuth = false

    @Option(name: .customLong("max-request-bytes"), help: "Maximum client request size in bytes.")
    var maxRequestBytes = 1_572_864

    @Option(name: .customLong("max-txn-ops"), help: "Maximum number of operations permitted in a transaction.")
    var maxTxnOps = 128

    /// etcd flags kvd does not implement yet: refused by name rather than ignored.
    static let unsupportedEtcdFlags: Set<String> = [
        "snapshot-count", "heartbeat-interval", "election-timeout", "quota-backend-bytes", "config-file",
        "peer-cert-file", "peer-key-file", "peer-trusted-ca-file", "peer-client-cert-auth", "auto-tls",
        "peer-auto-tls", "auto-compaction-mode", "auto-compaction-retention", "listen-metrics-urls",
        "discovery", "discovery-srv", "proxy", "enable-v2", "wal-dir", "max-snapshots", "max-wals",
        "grpc-keepalive-min-time", "grpc-keepalive-interval", "grpc-keepalive-timeout", "client-crl-file",
        "peer-crl-file", "cipher-suites", "experimental-initial-corrupt-check", "enable-pprof", "metrics",
        "strict-reconfig-check", "force-new-cluster", "auth-token", "logger", "log-outputs", "log-level", "debug",
    ]

    /// etcd accepts `--flag=true/false` for booleans and one dash as well as two; ArgumentParser
    /// wants `--flag`. Normalise, and refuse known-but-unsupported etcd flags with a clear message.
    static func normalise(_ arguments: [String]) throws -> [String] {
        var out: [String] = []
        for argument in arguments {
            var argument = argument
            if argument.hasPrefix("-") && !argument.hasPrefix("--") && argument.count > 2 { argument = "-" + argument }
            let name = argument.dropFirst(2).split(separator: "=", maxSplits: 1).first.map(String.init) ?? ""
            if argument.hasPrefix("--") && unsupportedEtcdFlags.contains(name) {
                throw ValidationError("etcd flag --\(name) is not supported by kvd yet")
            }
            if name == "client-cert-auth", let value = argument.split(separator: "=", maxSplits: 1).dropFirst().first {
                if value == "true" { out.append("--client-cert-auth") }
                continue
            }
            out.append(argument)
        }
        return out
    }

    static func main() async {
        do {
            let arguments = try normalise(Array(CommandLine.arguments.dropFirst()))
            var command = try parseAsRoot(arguments)
            if var async = command as? any AsyncParsableCommand {
                try await async.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }

    func memberConfiguration() throws -> MemberConfiguration {
        var configuration = MemberConfiguration()
        configuration.name = name
        configuration.dataDirectory = dataDirectory ?? "\(name).etcd"
        configuration.listenClientURLs = try urls(listenClientURLs).map { try MemberURL(parsing: $0) }
        configuration.advertiseClientURLs = urls(advertiseClientURLs)
        _ = try urls(listenPeerURLs).map { try MemberURL(parsing: $0) }
        configuration.initialAdvertisePeerURLs = urls(initialAdvertisePeerURLs)
        configuration.initialClusterToken = initialClusterToken
        configuration.initialCluster = try parseInitialCluster(initialCluster ?? "\(name)=\(initialAdvertisePeerURLs)")
        guard ["new", "existing"].contains(initialClusterState) else {
            throw ValidationError("invalid value \"\(initialClusterState)\" for flag -initial-cluster-state: must be new or existing")
        }
        if configuration.initialCluster.count > 1 {
            throw ValidationError("kvd does not support multi-member clusters yet (--initial-cluster has \(configuration.initialCluster.count) members)")
        }
        if let certFile, let keyFile {
            configuration.clientTLS = TLSFiles(certFile: certFile, keyFile: keyFile, trustedCAFile: trustedCAFile, clientCertAuth: clientCertAuth)
        } else if configuration.listenClientURLs.contains(where: \.isTLS) {
            throw ValidationError("--listen-client-urls has an https URL but --cert-file and --key-file are not both set")
        }
        if clientCertAuth && trustedCAFile == nil {
            throw ValidationError("--client-cert-auth requires --trusted-ca-file")
        }
        configuration.limits.requestBytesMax = maxRequestBytes
        configuration.limits.txnOpsMax = maxTxnOps
        return configuration
    }

    private func urls(_ list: String) -> [String] {
        list.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
    }

    private func parseInitialCluster(_ text: String) throws -> [(name: String, peerURLs: [String])] {
        var members: [(name: String, peerURLs: [String])] = []
        for entry in urls(text) {
            let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { throw ValidationError("invalid --initial-cluster entry \"\(entry)\": want name=url") }
            _ = try MemberURL(parsing: parts[1])
            if let index = members.firstIndex(where: { $0.name == parts[0] }) {
                members[index].peerURLs.append(parts[1])
            } else {
                members.append((parts[0], [parts[1]]))
            }
        }
        return members
    }

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .info
            return handler
        }
        let logger = Logger(label: "kvd")
        let member: Member
        do {
            member = try Member(configuration: try memberConfiguration(), logger: logger)
        } catch let error as ValidationError {
            throw error
        } catch {
            // A locked or corrupt data directory, or a bad certificate: say what, and exit 1.
            FileHandle.standardError.write(Data("kvd: cannot start member \(name): \(error)\n".utf8))
            throw ExitCode(1)
        }
        logger.info("starting member", metadata: ["name": "\(name)", "member-id": "\(member.memberID)", "cluster-id": "\(member.clusterID)"])
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await member.run() }
            group.addTask {
                let signal = await Self.terminationSignal()
                logger.info("received signal, shutting down", metadata: ["signal": "\(signal)"])
            }
            try await group.next()
            group.cancelAll()
        }
    }

    /// Waits for SIGTERM or SIGINT (or for cancellation).
    static func terminationSignal() async -> Int32 {
        let (stream, continuation) = AsyncStream<Int32>.makeStream()
        var sources: [any DispatchSourceSignal] = []
        for number in [SIGTERM, SIGINT] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { continuation.yield(number) }
            source.resume()
            sources.append(source)
        }
        defer { sources.forEach { $0.cancel() } }
        for await number in stream { return number }
        return 0
    }
}
