package import NIOCore

/// Answers a gRPC client's HTTP/2 PINGs itself, below the HTTP/2 handler, which never sees them.
///
/// grpc-go clients (etcdctl, clientv3, kube-apiserver) estimate the connection's bandwidth-delay
/// product by sending a PING whenever DATA arrives and no such PING is outstanding: one PING per
/// response at light load, hundreds per second while a large response streams. NIOHTTP2's denial-
/// of-service guard allows 200 PING and SETTINGS frames per 30 s and then closes the connection
/// with GOAWAY ENHANCE_YOUR_CALM, and grpc-swift-nio-transport offers no way to raise it: without
/// this handler a grpc-go client lost its connection every ~200 responses (in-flight watches and
/// a 1M-key `snapshot save` with it). etcd answers every PING, as this does.
///
/// The handler reads the inbound byte stream frame by frame (after the connection preface),
/// passes every other frame through unchanged, and writes each PING's ACK at a frame boundary of
/// the outbound stream (the HTTP/2 handler writes whole frames within one event-loop turn).
package final class HTTP2PingAnswerer: ChannelInboundHandler, RemovableChannelHandler {
    package typealias InboundIn = ByteBuffer
    package typealias InboundOut = ByteBuffer
    package typealias OutboundOut = ByteBuffer

    static let frameHeaderBytes = 9
    static let pingType: UInt8 = 0x6
    static let ackFlag: UInt8 = 0x1
    static let pingPayloadBytes = 8

    /// Bytes of the client's connection preface still to pass through.
    private var prefaceRemaining = ProtocolSniffer.http2Preface.count
    /// Payload bytes of the current (non-PING) frame still to pass through.
    private var payloadRemaining = 0
    /// The start of a frame that is not complete enough yet to tell whether it is a PING.
    private var carried: ByteBuffer?
    private var answered = false

    package init() {}

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var input = unwrapInboundIn(data)
        if var carried = self.carried {
            carried.writeBuffer(&input)
            input = carried
            self.carried = nil
        }
        // `cursor` walks the frames; `[passStart, cursor)` is decided and not yet passed on.
        var cursor = input.readerIndex
        var passStart = cursor
        while cursor < input.writerIndex {
            let available = input.writerIndex - cursor
            if prefaceRemaining > 0 || payloadRemaining > 0 {
                let passing = min(available, prefaceRemaining > 0 ? prefaceRemaining : payloadRemaining)
                cursor += passing
                if prefaceRemaining > 0 { prefaceRemaining -= passing } else { payloadRemaining -= passing }
                continue
            }
            // At a frame boundary.
            guard available >= Self.frameHeaderBytes,
                  let lengthAndType = input.getInteger(at: cursor, as: UInt32.self),
                  let flags = input.getInteger(at: cursor + 4, as: UInt8.self),
                  let stream = input.getInteger(at: cursor + 5, as: UInt32.self)
            else { break }
            let length = Int(lengthAndType >> 8)
            let isPing = UInt8(truncatingIfNeeded: lengthAndType) == Self.pingType && flags & Self.ackFlag == 0
                && stream & 0x7FFF_FFFF == 0 && length == Self.pingPayloadBytes
            guard isPing else {
                // Everything else, malformed PINGs included, is the HTTP/2 handler's to judge.
                cursor += Self.frameHeaderBytes
                payloadRemaining = length
                continue
            }
            guard available >= Self.frameHeaderBytes + Self.pingPayloadBytes else { break }
            pass(context, input, from: passStart, to: cursor)
            writeAck(context, input.getSlice(at: cursor + Self.frameHeaderBytes, length: Self.pingPayloadBytes)!)
            cursor += Self.frameHeaderBytes + Self.pingPayloadBytes
            passStart = cursor
        }
        pass(context, input, from: passStart, to: cursor)
        if cursor < input.writerIndex { carried = input.getSlice(at: cursor, length: input.writerIndex - cursor) }
    }

    package func channelReadComplete(context: ChannelHandlerContext) {
        if answered {
            answered = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    /// Passes `[start, end)` of `input` on to the HTTP/2 handler.
    private func pass(_ context: ChannelHandlerContext, _ input: ByteBuffer, from start: Int, to end: Int) {
        guard end > start else { return }
        context.fireChannelRead(wrapInboundOut(input.getSlice(at: start, length: end - start)!))
    }

    private func writeAck(_ context: ChannelHandlerContext, _ opaque: ByteBuffer) {
        var frame = context.channel.allocator.buffer(capacity: Self.frameHeaderBytes + Self.pingPayloadBytes)
        frame.writeInteger(UInt32(Self.pingPayloadBytes) << 8 | UInt32(Self.pingType))  // length (24 bits), type
        frame.writeInteger(Self.ackFlag)
        frame.writeInteger(UInt32(0))  // stream 0
        var opaque = opaque
        frame.writeBuffer(&opaque)
        context.write(wrapOutboundOut(frame), promise: nil)
        answered = true
    }
}
