package import NIOCore

/// Sits between TLS and the gRPC (HTTP/2) handlers of one connection until its first bytes show
/// which protocol it speaks, for ports that serve gRPC beside something else (the client port's
/// HTTP/1.1 endpoints, the peer port's Raft message stream). For gRPC the held bytes and the gRPC
/// side's own early writes (its SETTINGS) go through and the sniffer leaves. For another protocol
/// its handlers go in after the sniffer, the gRPC side's writes are dropped, and it never sees a
/// byte (it ends when the connection closes).
///
/// Every connection gets the gRPC pipeline because NIO registers a connection only once its
/// initialiser returns, before any byte has arrived.
package final class ProtocolSniffer: ChannelDuplexHandler, RemovableChannelHandler {
    package typealias InboundIn = ByteBuffer
    package typealias InboundOut = ByteBuffer
    package typealias OutboundIn = IOData
    package typealias OutboundOut = IOData

    package enum Decision {
        case grpc
        /// gRPC, with `handlers` (in pipeline order) between TLS and the HTTP/2 handlers from the
        /// first byte on.
        case grpcThrough([any ChannelHandler])
        /// Handlers that take the connection over, in pipeline order.
        case handlers([any ChannelHandler])
        case close
    }

    /// Decides from the bytes received so far; nil while they do not tell yet. Runs on the
    /// connection's event loop.
    package typealias Decide = (ChannelHandlerContext, ByteBufferView) -> Decision?

    package static let http2Preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    private let decideProtocol: Decide
    private var received: ByteBuffer?
    private var heldWrites: [(IOData, EventLoopPromise<Void>?)] = []
    private var flushHeld = false
    private var decided = false

    package init(decide: @escaping Decide) {
        self.decideProtocol = decide
    }

    /// Whether the first bytes of a connection are `prefix`: nil while they are still a strict
    /// prefix of it, `false` as soon as they differ.
    package static func matches(_ seen: ByteBufferView, prefix expected: [UInt8]) -> Bool? {
        let prefix = seen.prefix(expected.count)
        guard prefix.elementsEqual(expected.prefix(prefix.count)) else { return false }
        return prefix.count == expected.count ? true : nil
    }

    /// Whether the connection speaks HTTP/2 (its preface), as `matches` answers.
    package static func isHTTP2(_ seen: ByteBufferView) -> Bool? {
        matches(seen, prefix: http2Preface)
    }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
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
        guard let buffered = received, let decision = decideProtocol(context, buffered.readableBytesView) else { return }
        decide(context, decision)
    }

    package func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if decided {
            context.write(data, promise: promise)
        } else {
            heldWrites.append((unwrapOutboundIn(data), promise))
        }
    }

    package func flush(context: ChannelHandlerContext) {
        if decided { context.flush() } else { flushHeld = true }
    }

    package func channelInactive(context: ChannelHandlerContext) {
        // A connection that closes before saying anything: nothing was written for it.
        for (_, promise) in heldWrites { promise?.fail(ChannelError.ioOnClosedChannel) }
        heldWrites = []
        context.fireChannelInactive()
    }

    private func decide(_ context: ChannelHandlerContext, _ decision: Decision) {
        decided = true
        let held = heldWrites
        heldWrites = []
        switch decision {
        case .grpcThrough(let handlers):
            do {
                try context.pipeline.syncOperations.addHandlers(handlers, position: .after(self))
            } catch {
                context.close(promise: nil)
                return
            }
            fallthrough
        case .grpc:
            for (data, promise) in held { context.write(wrapOutboundOut(data), promise: promise) }
            if flushHeld { context.flush() }
        case .handlers(let handlers):
            // The gRPC side's preface is not for this protocol.
            for (_, promise) in held { promise?.succeed(()) }
            do {
                try context.pipeline.syncOperations.addHandlers(handlers, position: .after(self))
            } catch {
                context.close(promise: nil)
                return
            }
        case .close:
            for (_, promise) in held { promise?.succeed(()) }
            received = nil
            context.close(promise: nil)
            return
        }
        if let buffered = received {
            received = nil
            context.fireChannelRead(wrapInboundOut(buffered))
        }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}
