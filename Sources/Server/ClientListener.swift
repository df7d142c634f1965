internal import GRPCNIOTransportCore
internal import Logging
internal import NIOCore
internal import NIOHTTP1
internal import NIOPosix
internal import NIOSSL
internal import SwiftASN1
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
    let endpoints: HTTPEndpoints
    let logger: Logger

    /// The TLS settings of an https client URL: etcd's `--cert-file`, `--key-file`, and with
    /// `--client-cert-auth` a client certificate signed by `--trusted-ca-file` (clients are
    /// identified by their certificate, not by a host name).
    static func makeTLSContext(_ tls: TLSFiles) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(tls.certFile).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: tls.keyFile, format: .pem)))
        configuration.minimumTLSVersion = .tlsv12
        configuration.applicationProtocols = ["http/1.1", "h2", "grpc-exp"]
        if tls.clientCertAuth, let ca = tls.trustedCAFile {
            configuration.trustRoots = .file(ca)
            configuration.certificateVerification = .noHostnameVerification
        } else {
            configuration.certificateVerification = .none
        }
        return try NIOSSLContext(configuration: configuration)
    }

    func makeListeningChannel(
        listenerConfigurator: HTTP2ServerTransport.ListenerConfigurator,
        connectionConfigurator: HTTP2ServerTransport.ConnectionConfigurator
    ) async throws -> NIOAsyncChannel<HTTP2ServerTransport.ConnectionConfigurator.ConnectionChannel, Never> {
        let tls = self.tls, endpoints = self.endpoints, logger = self.logger
        let channel = try await ServerBootstrap(group: eventLoopGroup)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { listenerConfigurator.configure(channel: $0) }
            .bind(host: host, port: port) { connection in
                // Every connection gets the gRPC pipeline (NIO registers a connection only once
                // this returns, so the protocol cannot be known yet); the sniffer in front of it
                // holds it back until the first bytes tell, and serves HTTP/1.1 itself.
                connection.eventLoop.makeCompletedFuture {
                    if let tls { try connection.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    try connection.pipeline.syncOperations.addHandler(
                        ClientProtocolSniffer(endpoints: endpoints, logger: logger, usesTLS: tls != nil))
                }.flatMap {
                    connectionConfigurator.configure(channel: connection, tls: tls == nil ? .none : .configured(requireALPN: false))
                }
            }
        logger.info("ready to serve client requests", metadata: ["address": "\(host):\(port)", "tls": "\(tls != nil)"])
        return channel
    }
}

/// Sits between TLS and the gRPC (HTTP/2) handlers of one client connection until its first
/// bytes show which protocol it speaks. HTTP/2's preface means gRPC: the held bytes and the
/// gRPC side's own early writes (its SETTINGS) go through and the sniffer leaves. Anything else
/// is HTTP/1.1: the HTTP/1.1 handlers go in after the sniffer, the gRPC side's writes are
/// dropped, and it never sees a byte (it ends when the connection closes). Also logs who the
/// client is, by the CN of its certificate (the audit trail client cert auth gives etcd users).
final class ClientProtocolSniffer: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    private static let http2Preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    private let endpoints: HTTPEndpoints
    private let logger: Logger
    private let usesTLS: Bool
    private var received: ByteBuffer?
    private var heldWrites: [(IOData, EventLoopPromise<Void>?)] = []
    private var flushHeld = false
    private var decided = false

    init(endpoints: HTTPEndpoints, logger: Logger, usesTLS: Bool) {
        self.endpoints = endpoints
        self.logger = logger
        self.usesTLS = usesTLS
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        guard !decided else {
            context.fireChannelRead(data)
            return
        }
        if var buffered = received {
            buffered.writeBuffer(&bytes)
            received = buffered
        } else {
            received = bytes
        }
        guard let buffered = received else { return }
        let seen = buffered.readableBytesView.prefix(Self.http2Preface.count)
        if !seen.elementsEqual(Self.http2Preface.prefix(seen.count)) {
            decide(context, isGRPC: false)
        } else if seen.count == Self.http2Preface.count {
            decide(context, isGRPC: true)
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if decided {
            context.write(data, promise: promise)
        } else {
            heldWrites.append((unwrapOutboundIn(data), promise))
        }
    }

    func flush(context: ChannelHandlerContext) {
        if decided { context.flush() } else { flushHeld = true }
    }

    func channelInactive(context: ChannelHandlerContext) {
        // A connection that closes before saying anything: nothing was written for it.
        for (_, promise) in heldWrites { promise?.fail(ChannelError.ioOnClosedChannel) }
        heldWrites = []
        context.fireChannelInactive()
    }

    private func decide(_ context: ChannelHandlerContext, isGRPC: Bool) {
        decided = true
        logClient(context, protocol: isGRPC ? "grpc" : "http")
        let held = heldWrites
        heldWrites = []
        if isGRPC {
            for (data, promise) in held { context.write(wrapOutboundOut(data), promise: promise) }
            if flushHeld { context.flush() }
        } else {
            // The gRPC side's preface is not for an HTTP/1.1 client.
            for (_, promise) in held { promise?.succeed(()) }
            do {
                try context.pipeline.syncOperations.addHandlers(
                    [
                        ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)),
                        HTTPResponseEncoder(),
                        HTTPServerPipelineHandler(),
                        HTTPServerProtocolErrorHandler(),
                        HTTPEndpointHandler(endpoints: endpoints),
                    ],
                    position: .after(self))
            } catch {
                context.close(promise: nil)
                return
            }
        }
        if let buffered = received {
            received = nil
            context.fireChannelRead(wrapInboundOut(buffered))
        }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    private func logClient(_ context: ChannelHandlerContext, protocol name: String) {
        guard usesTLS else { return }
        let peer = context.channel.remoteAddress.map { "\($0)" } ?? "?"
        let certificate = try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self).peerCertificate
        let commonName = certificate.flatMap { try? Certificate(derEncoded: $0.toDERBytes()) }.flatMap(Self.commonName)
        logger.info("client connected", metadata: ["peer": "\(peer)", "cn": "\(commonName ?? "")", "protocol": "\(name)"])
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
