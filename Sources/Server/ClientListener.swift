internal import GRPCNIOTransportCore
internal import Logging
internal import NIOCore
internal import NIOHTTP1
internal import NIOPosix
internal import NIOSSL
internal import SwiftASN1
internal import Transport
internal import X509

/// The client port as etcd serves it: gRPC and the HTTP endpoints (`/health`, `/metrics`, ...) on
/// one listener. gRPC clients speak HTTP/2 from their first bytes (the connection preface);
/// anything else is HTTP/1.1 and goes to `HTTPEndpoints`. With TLS the server prefers
/// "http/1.1" in ALPN, so that curl and Prometheus (which offer both) speak HTTP/1.1 while gRPC
/// clients, which offer only "h2", get HTTP/2. (etcd also answers HTTP/2 requests for
/// /health; kvd's HTTP/2 connections are gRPC's alone.)
struct ClientListener: HTTP2ServerTransport.ListenerFactory {
    let eventLoopGroup: any EventLoopGroup
    let host: String
    let port: Int
    /// Nil for an http:// URL.
    let tls: NIOSSLContext?
    /// With `--client-cert-allowed-hostname`.
    let clientVerification: AllowedIdentity.Verification?
    let endpoints: HTTPEndpoints
    let identities: ClientIdentities
    let logger: Logger
    /// Which protocols this listener serves (gRPC only with `--listen-client-http-urls`).
    var serves = ClientProtocol.Serves.grpcAndHTTP

    /// The TLS settings of an https client URL: etcd's `--cert-file`, `--key-file`, and with
    /// `--client-cert-auth` a client certificate signed by `--trusted-ca-file` (clients are
    /// identified by their certificate, not by a host name).
    static func makeTLSContext(_ tls: TLSFiles) throws -> NIOSSLContext {
        try ServerTLS.makeContext(
            certFile: tls.certFile, keyFile: tls.keyFile, trustedCAFile: tls.trustedCAFile,
            verifyClients: tls.clientCertAuth, policy: tls.policy, applicationProtocols: ["http/1.1", "h2", "grpc-exp"])
    }

    func makeListeningChannel(
        listenerConfigurator: HTTP2ServerTransport.ListenerConfigurator,
        connectionConfigurator: HTTP2ServerTransport.ConnectionConfigurator
    ) async throws -> NIOAsyncChannel<HTTP2ServerTransport.ConnectionConfigurator.ConnectionChannel, Never> {
        let tls = self.tls, listener = self
        let channel = try await ServerBootstrap(group: eventLoopGroup)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { listenerConfigurator.configure(channel: $0) }
            .bind(host: host, port: port) { connection in
                // The sniffer in front of the gRPC pipeline holds it back until the first bytes
                // tell whether this is gRPC or HTTP/1.1.
                connection.eventLoop.makeCompletedFuture {
                    try listener.addTLSAndSniffer(to: connection, serves: listener.serves)
                }.flatMap {
                    connectionConfigurator.configure(channel: connection, tls: tls == nil ? .none : .configured(requireALPN: false))
                }
            }
        logger.info("ready to serve client requests", metadata: ["address": "\(host):\(port)", "tls": "\(tls != nil)"])
        return channel
    }

    /// `--listen-client-http-urls`: a listener for the client's HTTP/1.1 traffic alone (the JSON
    /// gateway, /health, /metrics), with the client port's TLS; a gRPC connection is closed.
    /// Serves until cancelled.
    func serveHTTPOnly() async throws {
        let tls = self.tls, listener = self
        let channel = try await ServerBootstrap(group: eventLoopGroup)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { connection in
                connection.eventLoop.makeCompletedFuture { try listener.addTLSAndSniffer(to: connection, serves: .http) }
            }
            .bind(host: host, port: port).get()
        logger.info("ready to serve client HTTP requests", metadata: ["address": "\(host):\(port)", "tls": "\(tls != nil)"])
        try await channel.closedOrCancelled()
    }

    /// TLS (when the URL is https) and the protocol sniffer, first in an accepted connection's pipeline.
    private func addTLSAndSniffer(to connection: any Channel, serves: ClientProtocol.Serves) throws {
        let pipeline = connection.pipeline.syncOperations
        if let tls { try pipeline.addHandler(ServerTLS.handler(tls, verification: clientVerification, connection: connection, logger: logger)) }
        try pipeline.addHandler(
            ClientProtocol.sniffer(endpoints: endpoints, identities: identities, logger: logger, usesTLS: tls != nil, serves: serves))
    }
}

/// How the client port decides a connection's protocol: HTTP/2's preface means gRPC, anything
/// else is HTTP/1.1 and goes to `HTTPEndpoints`. Also logs who the client is, by the CN of its
/// certificate (the audit trail client cert auth gives etcd users).
enum ClientProtocol {
    /// What a client listener serves: both (etcd's default), or with `--listen-client-http-urls`
    /// gRPC on the client URLs and HTTP/1.1 on the HTTP URLs; a connection speaking the other is
    /// closed.
    enum Serves: Sendable {
        case grpcAndHTTP, grpc, http
    }

    static func sniffer(
        endpoints: HTTPEndpoints, identities: ClientIdentities, logger: Logger, usesTLS: Bool, serves: Serves = .grpcAndHTTP
    ) -> ProtocolSniffer {
        ProtocolSniffer { context, seen in
            guard let isGRPC = ProtocolSniffer.isHTTP2(seen) else { return nil }
            switch (isGRPC, serves) {
            case (true, .http), (false, .grpc): return .close
            default: break
            }
            var commonName: String?
            if usesTLS {
                commonName = logClient(context, protocol: isGRPC ? "grpc" : "http", logger: logger)
                // A certificate reaches here only verified (with --client-cert-auth; without it
                // no certificate is asked for): its CN names the user when auth is on.
                if isGRPC, let commonName, !commonName.isEmpty, let address = context.channel.remoteAddress {
                    let peer = grpcPeerName(address)
                    identities.connected(peer, commonName: commonName)
                    context.channel.closeFuture.whenComplete { _ in identities.disconnected(peer) }
                }
            }
            if isGRPC { return .grpcThrough([FlushCoalescer(), HTTP2PingAnswerer()]) }
            return .handlers([
                ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)),
                HTTPResponseEncoder(),
                HTTPServerPipelineHandler(),
                HTTPServerProtocolErrorHandler(),
                HTTPEndpointHandler(endpoints: endpoints, clientCommonName: commonName),
            ])
        }
    }

    /// Logs the client and returns its certificate's common name.
    private static func logClient(_ context: ChannelHandlerContext, protocol name: String, logger: Logger) -> String? {
        let peer = context.channel.remoteAddress.map { "\($0)" } ?? "?"
        let certificate = try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self).peerCertificate
        let commonName = certificate.flatMap { try? Certificate(derEncoded: $0.toDERBytes()) }.flatMap(Self.commonName)
        logger.info("client connected", metadata: ["peer": "\(peer)", "cn": "\(commonName ?? "")", "protocol": "\(name)"])
        return commonName
    }

    /// A connection's name as gRPC gives it to handlers (`ServerContext.remotePeer`).
    static func grpcPeerName(_ address: NIOCore.SocketAddress) -> String {
        switch address {
        case .v4(let v4): "ipv4:\(v4.host):\(address.port ?? 0)"
        case .v6(let v6): "ipv6:[\(v6.host)]:\(address.port ?? 0)"
        case .unixDomainSocket: "unix:\(address.pathname ?? "")"
        }
    }

    static func commonName(_ certificate: Certificate) -> String? {
        for rdn in certificate.subject {
            for attribute in rdn where attribute.type == .RDNAttributeType.commonName {
                return String(describing: attribute.value)
            }
        }
        return nil
    }
}
