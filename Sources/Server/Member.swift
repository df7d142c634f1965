internal import EtcdAPI
internal import GRPCCore
internal import GRPCNIOTransportHTTP2Posix
package import Logging
internal import MVCC
internal import Storage

/// One kvd member: its storage, its write path and its client listeners. The composition root:
/// it builds the parts and wires them together, and owns nothing else.
package final class Member: Sendable {
    package let configuration: MemberConfiguration
    package let memberID: MemberID
    package let clusterID: MemberID
    private let store: MVCCStore
    private let writer: GroupCommitWriter
    private let logger: Logger

    package static var columnFamilies: [String] { MVCCStore.columnFamilies }

    /// Opens the data directory. A locked or corrupt one throws RocksDB's message.
    package init(configuration: MemberConfiguration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        let peerURLsByMember = configuration.initialCluster.map { member in
            ClusterIdentity.memberID(peerURLs: member.peerURLs, token: configuration.initialClusterToken)
        }
        guard let index = configuration.initialCluster.firstIndex(where: { $0.name == configuration.name }) else {
            throw ConfigurationError.invalid(
                "couldn't find local name \"\(configuration.name)\" in the initial cluster configuration"
            )
        }
        memberID = peerURLsByMember[index]
        clusterID = ClusterIdentity.clusterID(memberIDs: peerURLsByMember)
        let database = try Database(
            path: configuration.dataDirectory + "/member/db", columnFamilies: Self.columnFamilies,
            options: Self.databaseOptions(creatingDirectory: configuration.dataDirectory)
        )
        store = try MVCCStore(database: database)
        writer = GroupCommitWriter(store: store)
    }

    private static func databaseOptions(creatingDirectory directory: String) throws -> DatabaseOptions {
        try FileSystem.createDirectory(directory + "/member")
        return DatabaseOptions()
    }

    /// Serves clients until the surrounding task is cancelled.
    package func run() async throws {
        writer.start()
        defer { writer.stop() }
        let kv = KVService(
            store: store, writes: writer,
            header: HeaderFields(clusterID: clusterID, memberID: memberID, raftTerm: 1),
            limits: configuration.limits
        )
        try await withThrowingDiscardingTaskGroup { group in
            for url in configuration.listenClientURLs {
                let server = GRPCServer(transport: try makeTransport(url), services: [kv])
                group.addTask { try await server.serve() }
                group.addTask { [logger] in
                    if let address = try await server.listeningAddress {
                        logger.info("ready to serve client requests", metadata: ["address": "\(address)", "url": "\(url)"])
                    }
                }
            }
        }
    }

    private func makeTransport(_ url: MemberURL) throws -> HTTP2ServerTransport.Posix {
        var config = HTTP2ServerTransport.Posix.Config.defaults
        // etcd sizes the gRPC receive limit as --max-request-bytes plus 512 KiB of overhead, and
        // lets clients ping every 5 s even without streams (--grpc-keepalive-min-time).
        config.rpc.maxRequestPayloadSize = configuration.limits.requestBytesMax + 512 * 1024
        config.connection.keepalive.clientBehavior = .init(minPingIntervalWithoutCalls: .seconds(5), allowWithoutCalls: true)
        let host = url.host == "localhost" ? "127.0.0.1" : url.host
        let address: GRPCNIOTransportHTTP2Posix.SocketAddress = host.contains(":")
            ? .ipv6(host: host, port: url.port) : .ipv4(host: host, port: url.port)
        guard url.isTLS else {
            return HTTP2ServerTransport.Posix(address: address, transportSecurity: .plaintext, config: config)
        }
        guard let tls = configuration.clientTLS else {
            throw ConfigurationError.invalid("\(url) is https but --cert-file and --key-file are not set")
        }
        let security = HTTP2ServerTransport.Posix.TransportSecurity.tls(
            certificateChain: [.file(path: tls.certFile, format: .pem)],
            privateKey: .file(path: tls.keyFile, format: .pem)
        ) { settings in
            if tls.clientCertAuth, let ca = tls.trustedCAFile {
                settings.trustRoots = .certificates([.file(path: ca, format: .pem)])
                // Clients are identified by their certificate, not by a host name.
                settings.clientCertificateVerification = .noHostnameVerification
            }
        }
        return HTTP2ServerTransport.Posix(address: address, transportSecurity: security, config: config)
    }
}
