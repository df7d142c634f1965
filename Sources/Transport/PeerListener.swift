internal import GRPCNIOTransportCore
package import Logging
package import NIOCore
internal import NIOPosix
package import NIOSSL
internal import Raft

/// The peer port: members' Raft streams (`RaftStream`, recognised by their first bytes) and
/// gRPC (snapshots, cluster info, forwarded lease queries and promotions) on one listener.
struct PeerListener: HTTP2ServerTransport.ListenerFactory {
    /// Accepts and serves every connection (the node loop's event loop: see `PeerTransport`).
    let eventLoopGroup: any EventLoopGroup
    let address: PeerAddress
    /// Nil for an http:// URL. Carries the check for `--peer-cert-allowed-cn` or
    /// `--peer-cert-allowed-hostname`.
    let tls: ReloadingServerTLS?
    /// `--peer-crl-file`.
    let revocationList: String?
    let clusterID: UInt64
    let localID: NodeID
    let inbox: any PeerInbox
    let logger: Logger

    /// etcd's `--peer-cert-file`, `--peer-key-file`, and with `--peer-client-cert-auth` a peer
    /// certificate signed by `--peer-trusted-ca-file`.
    static func makeTLSContext(_ tls: PeerTLS) throws -> NIOSSLContext {
        try ServerTLS.makeContext(
            certFile: tls.certFile, keyFile: tls.keyFile, trustedCAFile: tls.trustedCAFile,
            verifyClients: tls.clientCertAuth, policy: tls.policy, applicationProtocols: ["h2", "grpc-exp"])
    }

    func makeListeningChannel(
        listenerConfigurator: HTTP2ServerTransport.ListenerConfigurator,
        connectionConfigurator: HTTP2ServerTransport.ConnectionConfigurator
    ) async throws -> NIOAsyncChannel<HTTP2ServerTransport.ConnectionConfigurator.ConnectionChannel, Never> {
        let tls = self.tls, revocationList = self.revocationList
        let clusterID = self.clusterID, localID = self.localID, inbox = self.inbox, logger = self.logger
        return try await ServerBootstrap(group: eventLoopGroup)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { listenerConfigurator.configure(channel: $0) }
            .bind(to: try Self.socketAddress(address)) { connection in
                connection.eventLoop.makeCompletedFuture {
                    if let tls {
                        try ServerTLS.addHandlers(tls.current(), revocationList: revocationList, to: connection, logger: logger)
                    }
                    try connection.pipeline.syncOperations.addHandler(ProtocolSniffer { _, seen in
                        switch (RaftStream.matches(seen), ProtocolSniffer.isHTTP2(seen)) {
                        case (true?, _):
                            return .handlers([
                                ByteToMessageHandler(RaftStreamDecoder()),
                                RaftStreamReceiver(clusterID: clusterID, localID: localID, inbox: inbox, logger: logger),
                            ])
                        case (_, true?): return .grpc
                        case (false?, false?): return .close
                        default: return nil
                        }
                    })
                }.flatMap {
                    connectionConfigurator.configure(channel: connection, tls: tls == nil ? .none : .configured(requireALPN: false))
                }
            }
    }

    /// Where to listen: the host (localhost as the IPv4 loopback) and port, or a Unix domain
    /// socket, whose file a previous run left is removed first, as etcd removes it.
    static func socketAddress(_ address: PeerAddress) throws -> NIOCore.SocketAddress {
        guard address.isUnixSocket else { return try NIOCore.SocketAddress.makeAddressResolvingHost(address.dialHost, port: address.port) }
        if unlink(address.socketPath) != 0 && errno != ENOENT {
            throw IOError(errnoCode: errno, reason: "removing the old socket file \(address.socketPath)")
        }
        return try NIOCore.SocketAddress(unixDomainSocketPath: address.socketPath)
    }
}

/// The server side of TLS on both ports, from etcd's certificate flags.
package enum ServerTLS {
    /// The key pair, the policy's TLS versions (1.2 or later) and cipher suites, and with
    /// `verifyClients` a client certificate signed by `trustedCAFile`, checked without a host
    /// name (clients and peers are identified by their certificates, not by where they connect from).
    package static func makeContext(
        certFile: String, keyFile: String, trustedCAFile: String?, verifyClients: Bool, policy: TLSPolicy,
        applicationProtocols: [String]
    ) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(certFile).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: keyFile, format: .pem)))
        policy.apply(to: &configuration)
        configuration.applicationProtocols = applicationProtocols
        if verifyClients, let ca = trustedCAFile {
            configuration.trustRoots = .file(ca)
            configuration.certificateVerification = .noHostnameVerification
        } else {
            configuration.certificateVerification = .none
        }
        return try NIOSSLContext(configuration: configuration)
    }

    /// The verification in place of BoringSSL's when clients must name `allowed` (etcd's
    /// `--peer-cert-allowed-cn`, `--peer-cert-allowed-hostname`, `--client-cert-allowed-hostname`);
    /// nil when BoringSSL's is enough. Like etcd's, the check applies only to verified client
    /// certificates (with client certificate authentication).
    package static func clientVerification(
        trustedCAFile: String?, verifyClients: Bool, allowed: AllowedIdentity?
    ) throws -> AllowedIdentity.Verification? {
        guard let allowed, verifyClients, let ca = trustedCAFile else { return nil }
        return try allowed.verification(trustedCAFile: ca, side: .client)
    }

    /// The TLS handler of one accepted connection, and after it, with etcd's `--client-crl-file`
    /// or `--peer-crl-file` (`revocationList`), the check that closes a connection whose
    /// certificate the list revokes.
    package static func addHandlers(
        _ setup: ServerTLSSetup, revocationList: String?, to connection: any Channel, logger: Logger
    ) throws {
        let pipeline = connection.pipeline.syncOperations
        try pipeline.addHandler(handler(setup.context, verification: setup.verification, connection: connection, logger: logger))
        if let revocationList { try pipeline.addHandler(RevocationCheck(path: revocationList, logger: logger)) }
    }

    /// The TLS handler of one accepted connection. A certificate `verification` refuses is
    /// logged as etcd logs it ("rejected connection", "client certificate authentication failed").
    private static func handler(
        _ context: NIOSSLContext, verification: AllowedIdentity.Verification?, connection: any Channel, logger: Logger
    ) -> NIOSSLServerHandler {
        guard let verification else { return NIOSSLServerHandler(context: context) }
        let remote = connection.remoteAddress.map { "\($0)" } ?? "?"
        return NIOSSLServerHandler(context: context) { certificates, promise in
            promise.futureResult.whenSuccess { result in
                guard result == .failed else { return }
                logger.warning("rejected connection", metadata: [
                    "remote-addr": "\(remote)", "error": "client certificate authentication failed",
                ])
            }
            verification(certificates, promise)
        }
    }
}
