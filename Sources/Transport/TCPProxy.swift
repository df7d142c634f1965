package import Logging
package import NIOCore
internal import NIOPosix
internal import Synchronization

/// etcd's `gateway`: a plain TCP proxy in front of a cluster's client endpoints. Every accepted
/// connection is joined byte for byte to a connection to one endpoint, taken in turn; TLS, if
/// any, goes through it end to end, as the gateway never looks at what it carries. An endpoint
/// that refuses a connection is set aside for `retryDelay` and the next is tried; a client for
/// which no endpoint answers is disconnected.
package final class TCPProxy: Sendable {
    package struct Endpoint: Sendable, Hashable, CustomStringConvertible {
        package var host: String
        package var port: Int

        package init(host: String, port: Int) {
            self.host = host
            self.port = port
        }

        package var description: String { "\(host):\(port)" }
    }

    private let endpoints: [Endpoint]
    private let retryDelay: Duration
    private let logger: Logger
    private let group: any EventLoopGroup
    /// The next endpoint in turn, and until when each refused one is set aside.
    private let state: Mutex<(next: Int, setAsideUntil: [Endpoint: ContinuousClock.Instant])>

    package init(endpoints: [Endpoint], retryDelay: Duration, group: any EventLoopGroup, logger: Logger) {
        precondition(!endpoints.isEmpty, "a proxy needs an endpoint")
        self.endpoints = endpoints
        self.retryDelay = retryDelay
        self.group = group
        self.logger = logger
        state = Mutex((0, [:]))
    }

    /// Listens on `host:port` and proxies until the listener closes; returns the bound listener
    /// once it is listening.
    package func listen(host: String, port: Int) async throws -> any Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            // Nothing is read from a client before its endpoint is connected.
            .childChannelOption(.autoRead, value: false)
            .childChannelInitializer { [self] client in
                client.eventLoop.makeCompletedFuture { self.connect(client, tried: 0) }
            }
            .bind(host: host, port: port).get()
    }

    /// The next endpoint in turn that is not set aside; nil when every one is (the client is then
    /// disconnected, as etcd's gateway does).
    private func pick() -> Endpoint? {
        state.withLock { state in
            let now = ContinuousClock.now
            state.setAsideUntil = state.setAsideUntil.filter { $0.value > now }
            for offset in 0..<endpoints.count {
                let endpoint = endpoints[(state.next + offset) % endpoints.count]
                if state.setAsideUntil[endpoint] == nil {
                    state.next = (state.next + offset + 1) % endpoints.count
                    return endpoint
                }
            }
            return nil
        }
    }

    private func setAside(_ endpoint: Endpoint, error: any Error) {
        state.withLock { $0.setAsideUntil[endpoint] = ContinuousClock.now + retryDelay }
        logger.warning("deactivated endpoint", metadata: [
            "address": "\(endpoint)", "interval": "\(retryDelay)", "error": "\(error)",
        ])
    }

    /// Connects `client` (accepted, not reading yet) to the next endpoint that answers, on the
    /// client's own event loop, so that the two halves of the splice share one thread.
    private func connect(_ client: any Channel, tried: Int) {
        guard tried < endpoints.count, let endpoint = pick() else {
            client.close(promise: nil)
            return
        }
        ClientBootstrap(group: client.eventLoop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.autoRead, value: false)
            .connectTimeout(.seconds(5))
            .connect(host: endpoint.host, port: endpoint.port)
            .whenComplete { [self] result in
                switch result {
                case .success(let server):
                    // The client may have gone while its endpoint was being connected.
                    guard client.isActive else {
                        server.close(promise: nil)
                        return
                    }
                    do {
                        let clientSide = Splice(), serverSide = Splice()
                        try client.pipeline.syncOperations.addHandler(clientSide)
                        try server.pipeline.syncOperations.addHandler(serverSide)
                        Splice.join(clientSide, serverSide)
                        client.setOption(.autoRead, value: true).whenFailure { _ in client.close(promise: nil) }
                        server.setOption(.autoRead, value: true).whenFailure { _ in server.close(promise: nil) }
                    } catch {
                        client.close(promise: nil)
                        server.close(promise: nil)
                    }
                case .failure(let error):
                    setAside(endpoint, error: error)
                    connect(client, tried: tried + 1)
                }
            }
    }
}

/// One half of a proxied connection: what its channel reads is written to the other half's, and
/// when either closes, the other closes once everything read from it has been written out (as
/// etcd's gateway copies to the end before it closes). Both halves live on one event loop. A half
/// reads only while the other's channel is writable, so a slow reader on one side never makes
/// the proxy buffer without bound.
private final class Splice: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var partner: Splice?
    private var context: ChannelHandlerContext?
    /// A read asked for while the partner could not take more.
    private var readPending = false

    static func join(_ one: Splice, _ other: Splice) {
        one.partner = other
        other.partner = one
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        unsplice()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        partner?.context?.write(data, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.context?.flush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        unsplice()
        context.fireChannelInactive()
    }

    /// This half's channel is gone: the partner closes after writing what it still holds, and
    /// the two let go of each other.
    private func unsplice() {
        guard let partner else { return }
        self.partner = nil
        partner.partner = nil
        guard let other = partner.context else { return }
        // Written out, then only the sending side shut: closing a socket whose peer still sends
        // (an HTTP/2 window update while it reads the tail) would reset it and drop the tail.
        // The partner reads and drops from here on, and closes once its peer has, or 10 s later.
        let channel = other.channel, written = other.eventLoop.makePromise(of: Void.self)
        other.writeAndFlush(NIOAny(ByteBuffer()), promise: written)
        written.futureResult.whenComplete { _ in
            channel.close(mode: .output).whenComplete { _ in
                channel.eventLoop.scheduleTask(in: .seconds(10)) { channel.close(promise: nil) }
            }
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, let partner, partner.readPending {
            partner.readPending = false
            partner.context?.read()
        }
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        // Unspliced: read (and drop) until the peer closes.
        guard let partner else { return context.read() }
        if partner.context?.channel.isWritable ?? false {
            context.read()
        } else {
            readPending = true
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
