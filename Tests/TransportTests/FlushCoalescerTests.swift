// The flush coalescer over an embedded channel: flushes asked for while tasks are queued leave as
// one, after those tasks; writes are never held back from a flush, and a close flushes first.
import NIOCore
import NIOEmbedded
import Testing
import Transport

@Suite struct FlushCoalescerTests {
    /// Counts the flushes that reach the socket side.
    private final class FlushCounter: ChannelOutboundHandler {
        typealias OutboundIn = ByteBuffer
        var flushes = 0
        var flushesBeforeClose: Int?

        func flush(context: ChannelHandlerContext) {
            flushes += 1
            context.flush()
        }

        func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
            flushesBeforeClose = flushes
            context.close(mode: mode, promise: promise)
        }
    }

    private func written(_ channel: EmbeddedChannel) throws -> [String] {
        var out: [String] = []
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { out.append(String(buffer: buffer)) }
        return out
    }

    @Test func flushesInOneBurstLeaveOnceAfterIt() throws {
        let counter = FlushCounter()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandlers([counter, FlushCoalescer()])
        // Three answers completed together, each written and flushed by its own task.
        for answer in ["a", "b", "c"] {
            channel.eventLoop.execute {
                channel.write(ByteBuffer(string: answer), promise: nil)
                channel.flush()
            }
        }
        channel.embeddedEventLoop.run()
        #expect(counter.flushes == 1)
        #expect(try written(channel) == ["a", "b", "c"])

        // A later answer is a burst of its own: flushed once its task has run, not held.
        channel.write(ByteBuffer(string: "d"), promise: nil)
        channel.flush()
        #expect(try written(channel).isEmpty)
        channel.embeddedEventLoop.run()
        #expect(counter.flushes == 2)
        #expect(try written(channel) == ["d"])
        _ = try channel.finish()
    }

    @Test func closeFlushesWhatWasWrittenFirst() throws {
        let counter = FlushCounter()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandlers([counter, FlushCoalescer()])
        channel.write(ByteBuffer(string: "goaway"), promise: nil)
        channel.flush()
        channel.close(promise: nil)
        #expect(counter.flushesBeforeClose == 1)
        #expect(try written(channel) == ["goaway"])
        channel.embeddedEventLoop.run()
        #expect(counter.flushes == 1)  // the queued flush found nothing left to do
    }
}
