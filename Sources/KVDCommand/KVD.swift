internal import ArgumentParser
internal import Dispatch
internal import Foundation
internal import Logging
internal import Server

/// Parses the command line (etcd's flags, or `--config-file`) and runs the member until
/// SIGTERM or SIGINT; exits the process on a bad command line.
package func runKVD() async {
    await KVD.main()
}

/// `kvd`: starts one member with etcd's flags (or etcd's YAML config file), so that one command
/// line starts either etcd or kvd.
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
    var listenClientURLs = "http://localhost:2379"

    @Option(name: .customLong("quota-backend-bytes"), help: "Raise the NOSPACE alarm when the database exceeds this size (0: 2 GiB).")
    var quotaBackendBytes: Int64 = 0

    @Option(name: .customLong("auto-compaction-mode"), help: "periodic or revision.")
    var autoCompactionMode = "periodic"

    @Option(name: .customLong("auto-compaction-retention"), help: "Hours (periodic), revisions (revision) or a duration such as 30m; 0 disables.")
    var autoCompactionRetention = "0"

    @Option(name: .customLong("listen-client-http-urls"), help: "Comma-separated URLs for HTTP-only client traffic (the JSON gateway, /health, /metrics); --listen-client-urls then serve gRPC only.")
    var listenClientHTTPURLs = ""

    @Option(name: .customLong("listen-metrics-urls"), help: "Comma-separated http:// URLs for /health, /livez, /readyz, /version and /metrics.")
    var listenMetricsURLs = ""

    @Option(name: .customLong("advertise-client-urls"), help: "Comma-separated client URLs to advertise.")
    var advertiseClientURLs = "http://localhost:2379"

    @Option(name: .customLong("listen-peer-urls"), help: "Comma-separated URLs to listen on for peer traffic.")
    var listenPeerURLs = "http://localhost:2380"

    @Option(name: .customLong("initial-advertise-peer-urls"), help: "This member's peer URLs to advertise.")
    var initialAdvertisePeerURLs = "http://localhost:2380"

    @Option(name: .customLong("initial-cluster"), help: "Initial cluster configuration: name=peerURL,...")
    var initialCluster: String?

    @Option(name: .customLong("initial-cluster-state"), help: "new or existing.")
    var initialClusterState = "new"

    @Option(name: .customLong("discovery-srv"), help: "DNS domain used to bootstrap initial cluster.")
    var discoverySRV = ""

    @Option(name: .customLong("discovery-srv-name"), help: "Service name to query when using DNS discovery.")
    var discoverySRVName = ""

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

    @Option(name: .customLong("peer-cert-file"), help: "Path to the peer server TLS cert file.")
    var peerCertFile: String?

    @Option(name: .customLong("peer-key-file"), help: "Path to the peer server TLS key file.")
    var peerKeyFile: String?

    @Option(name: .customLong("peer-trusted-ca-file"), help: "Path to the peer server TLS trusted CA file.")
    var peerTrustedCAFile: String?

    @Flag(name: .customLong("peer-client-cert-auth"), help: "Require peer certificates signed by --peer-trusted-ca-file.")
    var peerClientCertAuth = false

    @Flag(name: .customLong("auto-tls"), help: "Client TLS using a generated self-signed certificate (when --cert-file and --key-file are not given).")
    var autoTLS = false

    @Flag(name: .customLong("peer-auto-tls"), help: "Peer TLS using a generated self-signed certificate (when --peer-cert-file and --peer-key-file are not given).")
    var peerAutoTLS = false

    @Option(name: .customLong("self-signed-cert-validity"), help: "Validity of the generated self-signed certificates, in years.")
    var selfSignedCertValidity = 1

    @Option(name: .customLong("heartbeat-interval"), help: "Time (in milliseconds) of a heartbeat interval.")
    var heartbeatInterval = 100

    @Option(name: .customLong("election-timeout"), help: "Time (in milliseconds) for an election to timeout.")
    var electionTimeout = 1000

    @Option(name: .customLong("snapshot-count"), help: "Number of committed transactions to trigger a snapshot to disk.")
    var snapshotCount: UInt64 = 100_000

    @Option(name: .customLong("experimental-watch-progress-notify-interval"), help: "Duration of periodic watch progress notifications (e.g. 10m, 5s, 500ms).")
    var watchProgressNotifyInterval = "10m"

    @Option(name: .customLong("max-request-bytes"), help: "Maximum client request size in bytes.")
    var maxRequestBytes = 1_572_864

    @Option(name: .customLong("max-txn-ops"), help: "Maximum number of operations permitted in a transaction.")
    var maxTxnOps = 128

    @Option(name: .customLong("block-cache-bytes"), help: "kvd: bytes of RocksDB's cache of uncompressed blocks, shared by the Raft log and the MVCC state.")
    var blockCacheBytes = MemberConfiguration().blockCacheBytes

    @Option(name: .customLong("config-file"), help: "Path to the server configuration file (etcd's YAML format). Other flags are then ignored, as etcd does.")
    var configFile: String?

    @Option(name: .customLong("experimental-snapshot-catchup-entries"), help: "Entries kept behind a snapshot for slow followers (default: 5000 or half of --snapshot-count, whichever is smaller).")
    var snapshotCatchUpEntries: Int?

    @Option(name: .customLong("auth-token"), help: "How clients authenticated by password are given tokens: 'simple' (kvd has no JWT tokens yet).")
    var authToken = "simple"

    @Option(name: .customLong("auth-token-ttl"), help: "Seconds a simple token lives after its last use.")
    var authTokenTTL = 300

    @Option(name: .customLong("max-concurrent-streams"), help: "Maximum concurrent streams each client connection may have open.")
    var maxConcurrentStreams: UInt32 = .max

    @Flag(name: .customLong("strict-reconfig-check"), inversion: .prefixedNo, help: "Reject membership changes that could cause quorum loss.")
    var strictReconfigCheck = true

    @Flag(name: .customLong("enable-grpc-gateway"), inversion: .prefixedNo, help: "Serve etcd's JSON gateway (/v3/...) on the client port.")
    var grpcGateway = true

    @Flag(name: .customLong("experimental-initial-corrupt-check"), help: "Before serving clients, compare this member's HashKV with the other members' and refuse to start if they differ.")
    var initialCorruptCheck = false

    @Option(name: .customLong("experimental-corrupt-check-time"), help: "How often the leader compares the members' hashes and raises the CORRUPT alarm for one that differs (e.g. 5m; 0s: never).")
    var corruptCheckTime = "0s"

    @Option(name: .customLong("tls-min-version"), help: "Minimum TLS version on both ports: TLS1.2 or TLS1.3.")
    var tlsMinVersion = "TLS1.2"

    @Option(name: .customLong("tls-max-version"), help: "Maximum TLS version on both ports: TLS1.2 or TLS1.3 (default: the newest).")
    var tlsMaxVersion = ""

    @Option(name: .customLong("grpc-keepalive-interval"), help: "Frequency duration of server-to-client ping to check if a connection is alive.")
    var grpcKeepaliveInterval = "2h"

    @Option(name: .customLong("grpc-keepalive-timeout"), help: "Additional duration of wait before closing a non-responsive connection.")
    var grpcKeepaliveTimeout = "20s"

    @Flag(name: .customLong("force-new-cluster"), help: "Force to create a new one-member cluster from this member's data.")
    var forceNewCluster = false

    @Option(name: .customLong("wal-dir"), help: "Path to the dedicated WAL directory (RocksDB's write-ahead log).")
    var walDirectory = ""

    @Option(name: .customLong("peer-cert-allowed-cn"), help: "Allowed CN for inter peer authentication (both ways).")
    var peerCertAllowedCN = ""

    @Option(name: .customLong("peer-cert-allowed-hostname"), help: "Allowed TLS hostname for inter peer authentication (both ways).")
    var peerCertAllowedHostname = ""

    @Option(name: .customLong("client-cert-allowed-hostname"), help: "Allowed TLS hostname for client cert authentication.")
    var clientCertAllowedHostname = ""

    @Option(name: .customLong("client-crl-file"), help: "Path to the client certificate revocation list file.")
    var clientCRLFile = ""

    @Option(name: .customLong("peer-crl-file"), help: "Path to the peer certificate revocation list file.")
    var peerCRLFile = ""

    @Option(name: .customLong("cipher-suites"), help: "Comma-separated TLS 1.2 cipher suites, in Go's names (default: the library's).")
    var cipherSuites = ""

    @Option(name: .customLong("logger"), help: "zap: JSON lines in etcd 3.5's shape; capnslog (the default): kvd's text lines.")
    var logger = "capnslog"

    @Option(name: .customLong("log-outputs"), help: "stderr (default) or stdout.")
    var logOutputs = "default"

    @Option(name: .customLong("log-level"), help: "debug, info, warn, error, panic or fatal.")
    var logLevel = "info"

    @Flag(name: .customLong("debug"), help: "The same as --log-level=debug (deprecated in etcd 3.5).")
    var debug = false

    static func main() async {
        let commandLine = Array(CommandLine.arguments.dropFirst())
        if commandLine.first == "gateway" {
            await GatewayStart.main(gatewayArguments: Array(commandLine.dropFirst()))
            return
        }
        do {
            let (arguments, _) = try EtcdFlags.normalise(commandLine)
            if arguments.contains("--version") {
                print(versionText)
                return
            }
            try await parseAndRun(arguments)
        } catch {
            exit(withError: error)
        }
    }

    /// `--version` in etcd's four lines (scripts read the first), with the etcd version kvd's API
    /// reports; the Go lines say what kvd is instead.
    static var versionText: String {
        #if arch(x86_64)
        let arch = "amd64"
        #elseif arch(arm64)
        let arch = "arm64"
        #else
        let arch = "unknown"
        #endif
        return """
            etcd Version: \(Member.etcdVersion)
            Git SHA: Not provided (kvd)
            Go Version: none (kvd is written in Swift)
            Go OS/Arch: linux/\(arch)
            """
    }

    func run() async throws {
        var settings = try configFile.map(MemberSettings.init(configFile:)) ?? MemberSettings(flags: self)
        if debug && configFile == nil { settings.logLevel = "debug" }
        let level = try MemberSettings.logLevel(settings.logLevel)
        let toStandardOutput = try MemberSettings.logsToStandardOutput(settings.logOutputs)
        switch settings.logger {
        case "zap":
            LoggingSystem.bootstrap { _ in
                ZapLogHandler(logLevel: level, output: toStandardOutput ? .standardOutput : .standardError)
            }
        case "capnslog":
            LoggingSystem.bootstrap { label in
                var handler = toStandardOutput ? StreamLogHandler.standardOutput(label: label) : StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
        default:
            throw ValidationError("unknown logger type \"\(settings.logger)\" (--logger: zap or capnslog)")
        }
        let logger = Logger(label: "kvd")
        if let configFile {
            logger.info("loaded server configuration; other command line flags are ignored", metadata: ["path": "\(configFile)"])
        }
        // The same arguments `main` parsed: what it took off is said here, once logging is set up
        // (the call cannot fail here, since it succeeded there).
        let notes = (try? EtcdFlags.normalise(Array(CommandLine.arguments.dropFirst())).notes) ?? []
        for note in (configFile == nil ? notes : settings.notes) {
            logger.notice("etcd flag accepted without effect", metadata: [
                "flag": "--\(note.flag)\(note.value.map { "=" + $0 } ?? "")", "reason": "\(note.note)",
            ])
        }
        var configuration = try settings.memberConfiguration()
        if !settings.discoverySRV.isEmpty && FileManager.default.fileExists(atPath: configuration.dataDirectory + "/member/db") {
            // As etcd, DNS is asked only before the member exists: a restart needs no DNS, and the
            // data directory knows the cluster (one left without it by a crash during the first
            // start is refused for want of this member in the initial cluster, never re-created).
            configuration.initialCluster = []
            logger.info("member data exists; DNS discovery skipped", metadata: ["data-dir": "\(configuration.dataDirectory)"])
        } else if !settings.discoverySRV.isEmpty {
            do {
                let entries = try DNSDiscovery.initialCluster(
                    domain: settings.discoverySRV, serviceName: settings.discoverySRVName, memberName: configuration.name,
                    advertisePeerURLs: configuration.initialAdvertisePeerURLs)
                for entry in entries { logger.info("got bootstrap from DNS for etcd-server", metadata: ["node": "\(entry)"]) }
                configuration.initialCluster = try MemberConfiguration.parseInitialCluster(entries.joined(separator: ","))
            } catch {
                logger.warning("failed to resolve during SRV discovery", metadata: ["error": "\(error)"])
                FileHandle.standardError.write(Data("kvd: \(error)\n".utf8))
                throw ExitCode(1)
            }
        }
        logger.debug("member configuration", metadata: ["configuration": "\(configuration)"])
        let member: Member
        do {
            member = try await Member(configuration: configuration, logger: logger)
        } catch {
            // A locked or corrupt data directory, a bad certificate, a cluster that does not know
            // us: say what, and exit 1.
            FileHandle.standardError.write(Data("kvd: cannot start member \(configuration.name): \(error)\n".utf8))
            throw ExitCode(1)
        }
        logger.info("starting member", metadata: ["name": "\(configuration.name)", "member-id": "\(member.memberID)", "cluster-id": "\(member.clusterID)"])
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

extension ParsableCommand {
    /// Parses `arguments` as this command's (or one of its subcommands') and runs what they name.
    static func parseAndRun(_ arguments: [String]) async throws {
        var command = try parseAsRoot(arguments)
        if var async = command as? any AsyncParsableCommand {
            try await async.run()
        } else {
            try command.run()
        }
    }
}
