package import NIOCore

/// Holds a connection's flushes until the event loop has run the tasks already queued on it,
/// then flushes once: answers completed together (a Raft round's proposals, a ReadIndex round's
/// reads, each resumed as its own task on the connection's event loop) leave in one TLS write
/// instead of one write, and one system call, per answer.
///
/// No timer: a lone answer waits for nothing but the tasks ahead of it (at one client, none), so
/// it adds no latency, unlike a flush delay (grpc-swift-nio-transport's flush coalescing holds
/// every flush up to 100 µs). Writes pass through at once; only the flush waits.
package final class FlushCoalescer: ChannelOutboundHandler, RemovableChannelHandler {
    package typealias OutboundIn = ByteBuffer
    package typealias OutboundOut = ByteBuffer

    private var flushQueued = false

    package init() {}

    package func flush(context: ChannelHandlerContext) {
        guard !flushQueued else { return }
        flushQueued = true
        context.eventLoop.assumeIsolated().execute { self.flushNow(context: context) }
    }

    /// What was written before a close (a GOAWAY, TLS's close_notify) leaves before it.
    package func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        flushNow(context: context)
        context.close(mode: mode, promise: promise)
    }

    private func flushNow(context: ChannelHandlerContext) {
        guard flushQueued else { return }
        flushQueued = false
        context.flush()
    }
}
