internal import NIOCore
internal import NIOHTTP2
internal import Synchronization

/// A client port's open gRPC connections: when the member stops, each gets GOAWAY.
final class ClientConnections: Sendable {
    private struct Open: @unchecked Sendable {
        // @unchecked: the manager is used only on its connection's event loop (`execute`).
        let eventLoop: any EventLoop
        let manager: ClientConnectionManager
    }

    private let open = Mutex<(stopping: Bool, byID: [ObjectIdentifier: Open])>((false, [:]))

    /// False when the member is already stopping (the connection is told to go away at once).
    fileprivate func add(_ manager: ClientConnectionManager, on eventLoop: any EventLoop) -> Bool {
        open.withLock { open in
            guard !open.stopping else { return false }
            open.byID[ObjectIdentifier(manager)] = Open(eventLoop: eventLoop, manager: manager)
            return true
        }
    }

    fileprivate func remove(_ manager: ClientConnectionManager) {
        _ = open.withLock { $0.byID.removeValue(forKey: ObjectIdentifier(manager)) }
    }

    /// GOAWAY to every connection; each closes once its streams have ended, or after `grace`.
    func goAway(grace: TimeAmount) {
        let all = open.withLock { open in
            open.stopping = true
            return Array(open.byID.values)
        }
        for connection in all {
            connection.eventLoop.execute { connection.manager.goAway(grace: grace) }
        }
    }
}

/// The connection-level part of the client port's gRPC that HTTP/2 itself does not do: the
/// server's keepalive pings (`--grpc-keepalive-interval`, `--grpc-keepalive-timeout`: a client
/// that does not answer within the timeout is dropped, as grpc-go's server drops it) and the
/// GOAWAY of a stopping member. Sits after the HTTP/2 handler, which hands it the frames of
/// stream 0; on an HTTP/1.1 connection it never sees one and does nothing. (The client's own
/// pings are answered below the HTTP/2 handler, by `HTTP2PingAnswerer`.)
final class ClientConnectionManager: ChannelDuplexHandler {
    typealias InboundIn = HTTP2Frame
    typealias InboundOut = HTTP2Frame
    typealias OutboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    private static let pingData = HTTP2PingData(withInteger: 0x6B7664_6B61)

    private let keepaliveInterval: TimeAmount
    private let keepaliveTimeout: TimeAmount
    private let connections: ClientConnections
    private var context: ChannelHandlerContext?
    private var registered = false
    private var keepalive: RepeatedTask?
    private var pingDeadline: Scheduled<Void>?
    private var openStreams = 0
    private var goingAway = false

    init(keepaliveInterval: TimeAmount, keepaliveTimeout: TimeAmount, connections: ClientConnections) {
        self.keepaliveInterval = keepaliveInterval
        self.keepaliveTimeout = keepaliveTimeout
        self.connections = connections
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        stopTimers()
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if !registered {
            // The client's first HTTP/2 frame (its SETTINGS): this is a gRPC connection.
            registered = true
            if connections.add(self, on: context.eventLoop) { startKeepalive(context) } else { goAway(grace: .seconds(2)) }
        }
        if case .ping(let data, ack: true) = unwrapInboundIn(data).payload, data == Self.pingData {
            pingDeadline?.cancel()
            pingDeadline = nil
        }
        context.fireChannelRead(data)
    }

    func channelInactive(context: ChannelHandlerContext) {
        stopTimers()
        if registered { connections.remove(self) }
        context.fireChannelInactive()
    }

    /// Called by the stream initializer, on this connection's event loop.
    func streamOpened(_ stream: any Channel) {
        openStreams += 1
        let manager = NIOLoopBound(self, eventLoop: stream.eventLoop)
        stream.closeFuture.whenComplete { _ in manager.value.streamClosed() }
    }

    private func streamClosed() {
        openStreams -= 1
        if goingAway && openStreams == 0 { context?.close(promise: nil) }
    }

    fileprivate func goAway(grace: TimeAmount) {
        guard let context, !goingAway else { return }
        goingAway = true
        stopTimers()
        let goAway = HTTP2Frame(streamID: .rootStream, payload: .goAway(lastStreamID: .maxID, errorCode: .noError, opaqueData: nil))
        context.writeAndFlush(wrapOutboundOut(goAway), promise: nil)
        if openStreams == 0 { return context.close(promise: nil) }
        let manager = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.scheduleTask(in: grace) { manager.value.context?.close(promise: nil) }
    }

    private func startKeepalive(_ context: ChannelHandlerContext) {
        let manager = NIOLoopBound(self, eventLoop: context.eventLoop)
        keepalive = context.eventLoop.scheduleRepeatedTask(initialDelay: keepaliveInterval, delay: keepaliveInterval) { _ in
            manager.value.ping()
        }
    }

    private func ping() {
        guard let context, pingDeadline == nil else { return }
        context.writeAndFlush(wrapOutboundOut(HTTP2Frame(streamID: .rootStream, payload: .ping(Self.pingData, ack: false))), promise: nil)
        let manager = NIOLoopBound(self, eventLoop: context.eventLoop)
        pingDeadline = context.eventLoop.scheduleTask(in: keepaliveTimeout) { manager.value.context?.close(promise: nil) }
    }

    private func stopTimers() {
        keepalive?.cancel()
        keepalive = nil
        pingDeadline?.cancel()
        pingDeadline = nil
    }
}
