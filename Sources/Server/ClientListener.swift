internal import Logging
internal import NIOCore
internal import NIOHTTP1
internal import NIOHPACK
internal import NIOHTTP2
internal import NIOPosix
internal import NIOSSL
internal import SwiftASN1
internal import Transport
internal import X509

/// The client port as etcd serves it: gRPC and the HTTP endpoints (`/health`, `/metrics`, ...) on
/// one listener. A connection that opens with HTTP/2's preface is HTTP/2, anything else is
/// HTTP/1.1 and goes to `HTTPEndpoints`. On HTTP/2 with TLS, as in etcd's handler, a stream whose
/// content type is gRPC's is a call and any other goes to `HTTPEndpoints` too (without TLS, etcd's
/// HTTP/2 connections are gRPC's alone, and so are kvd's). With TLS the server
/// prefers "h2" in ALPN, as etcd's Go server does, so curl speaks HTTP/2 with both.
struct ClientListener: Sendable {
    let eventLoopGroup: any EventLoopGroup
    let host: String
    let port: Int
    /// Nil for an http:// URL. Carries the check for `--client-cert-allowed-hostname`.
    let tls: ReloadingServerTLS?
    /// `--client-crl-file`.
    let revocationList: String?
    let endpoints: HTTPEndpoints
    let identities: ClientIdentities
    let logger: Logger
    /// Which protocols this listener serves (gRPC only with `--listen-client-http-urls`).
    let serves: ClientProtocol.Serves

    /// The TLS settings of an https client URL: etcd's `--cert-file`, `--key-file`, and with
    /// `--client-cert-auth` a client certificate signed by `--trusted-ca-file` (clients are
    /// identified by their certificate, not by a host name).
    /// ALPN as the listener serves: h2 first where HTTP/2 carries both gRPC and HTTP (etcd's Go
    /// server prefers it); where one protocol is served alone (`--listen-client-http-urls`),
    /// HTTP/1.1 first, so that curl speaks HTTP/1.1: served on the HTTP URLs, closed on the
    /// gRPC-only ones, whose HTTP/2 is gRPC's.
    static func makeTLSContext(_ tls: TLSFiles, serves: ClientProtocol.Serves) throws -> NIOSSLContext {
        try ServerTLS.makeContext(
            certFile: tls.certFile, keyFile: tls.keyFile, trustedCAFile: tls.trustedCAFile,
            verifyClients: tls.clientCertAuth, policy: tls.policy,
            applicationProtocols: serves == .grpcAndHTTP ? ["h2", "http/1.1"] : ["http/1.1", "h2"])
    }

    /// What the client port's gRPC needs besides its listener.
    struct GRPCSettings: Sendable {
        let direct: DirectKVCalls.Service
        let bridge: BridgedCall.Bridge
        /// `--max-concurrent-streams`; nil: HTTP/2's default (no limit announced).
        let maxConcurrentStreams: Int?
        /// `--grpc-keepalive-interval` / `-timeout`: the member pings a client this often and
        /// drops it when an answer takes longer than the timeout.
        let keepaliveInterval: TimeAmount
        let keepaliveTimeout: TimeAmount
    }

    /// Serves gRPC (and, unless `--listen-client-http-urls` moved it, HTTP/1.1) until cancelled;
    /// then the listener closes, every gRPC connection gets GOAWAY and is closed once its
    /// streams have ended, or after 2 s (the calls still open are cancelled then, as etcd's stop
    /// gives up waiting).
    func serve(grpc: GRPCSettings) async throws {
        let listener = self
        let connections = ClientConnections()
        let channel = try await ServerBootstrap(group: eventLoopGroup)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { connection in
                connection.eventLoop.makeCompletedFuture {
                    try listener.addTLSAndSniffer(to: connection, serves: listener.serves)
                    // Over TLS only: etcd's plaintext port hands every HTTP/2 connection to gRPC.
                    let http = listener.serves == .grpcAndHTTP && listener.tls != nil
                        ? DirectKVCalls.HTTPRoutes(endpoints: listener.endpoints, identities: listener.identities) : nil
                    try Self.addHTTP2(to: connection, grpc: grpc, http: http, connections: connections)
                }
            }
            .bind(host: host, port: port).get()
        logger.info("ready to serve client requests", metadata: ["address": "\(host):\(port)", "tls": "\(tls != nil)"])
        try await channel.closedOrCancelled { connections.goAway(grace: .seconds(2)) }
    }

    /// The client connection's HTTP/2, after the sniffer (an HTTP/1.1 connection never reaches
    /// it): each stream gets the hot path's handler, which puts the bridge to the services behind
    /// itself for a call it does not serve.
    private static func addHTTP2(
        to connection: any Channel, grpc: GRPCSettings, http: DirectKVCalls.HTTPRoutes?, connections: ClientConnections
    ) throws {
        // As grpc-swift's transport set them up: 64 KiB windows, 16 KiB frames.
        var settings = NIOHTTP2Handler.ConnectionConfiguration()
        settings.targetWindowSize = 65535
        settings.initialSettings = [
            HTTP2Setting(parameter: .initialWindowSize, value: 65535),
            HTTP2Setting(parameter: .maxFrameSize, value: 1 << 14),
            HTTP2Setting(parameter: .maxHeaderListSize, value: HPACKDecoder.defaultMaxHeaderListSize),
        ]
        if let streams = grpc.maxConcurrentStreams {
            settings.initialSettings.append(HTTP2Setting(parameter: .maxConcurrentStreams, value: streams))
        }
        var streamSettings = NIOHTTP2Handler.StreamConfiguration()
        streamSettings.targetWindowSize = 65535
        let peer = connection.remoteAddress.map(ClientProtocol.grpcPeerName) ?? "unknown"
        let localPeer = connection.localAddress.map(ClientProtocol.grpcPeerName) ?? "unknown"
        let manager = ClientConnectionManager(
            keepaliveInterval: grpc.keepaliveInterval, keepaliveTimeout: grpc.keepaliveTimeout, connections: connections)
        _ = try connection.pipeline.syncOperations.configureHTTP2Pipeline(
            mode: .server, connectionConfiguration: settings, streamConfiguration: streamSettings
        ) { [manager = NIOLoopBound(manager, eventLoop: connection.eventLoop)] stream in
            stream.eventLoop.makeCompletedFuture {
                manager.value.streamOpened(stream)
                try stream.pipeline.syncOperations.addHandler(
                    DirectKVCalls(service: grpc.direct, bridge: grpc.bridge, http: http, peer: peer, localPeer: localPeer))
            }
        }
        try connection.pipeline.syncOperations.addHandler(manager)
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
        if let tls {
            try ServerTLS.addHandlers(tls.current(), revocationList: revocationList, to: connection, logger: logger)
        }
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
