// The PING answerer over an embedded channel: every byte but a client PING's reaches the HTTP/2
// side unchanged, however the stream is cut into reads, and each PING is acknowledged with its
// own opaque data.
import NIOCore
import NIOEmbedded
import Testing
import Transport

@Suite struct HTTP2PingAnswererTests {
    private func frame(type: UInt8, flags: UInt8 = 0, stream: UInt32 = 0, payload: [UInt8]) -> [UInt8] {
        let length = UInt32(payload.count)
        return [UInt8(length >> 16), UInt8(truncatingIfNeeded: length >> 8), UInt8(truncatingIfNeeded: length), type, flags]
            + [UInt8(stream >> 24), UInt8(truncatingIfNeeded: stream >> 16), UInt8(truncatingIfNeeded: stream >> 8), UInt8(truncatingIfNeeded: stream)]
            + payload
    }

    /// Feeds `bytes` in reads of `chunk` bytes; returns what passed through and what was written back.
    private func run(_ bytes: [UInt8], chunk: Int) throws -> (passed: [UInt8], written: [UInt8]) {
        let channel = EmbeddedChannel(handler: HTTP2PingAnswerer())
        var start = 0
        while start < bytes.count {
            let end = min(bytes.count, start + chunk)
            try channel.writeInbound(ByteBuffer(bytes: bytes[start..<end]))
            channel.pipeline.fireChannelReadComplete()
            start = end
        }
        var passed: [UInt8] = [], written: [UInt8] = []
        while let buffer = try channel.readInbound(as: ByteBuffer.self) { passed += Array(buffer.readableBytesView) }
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { written += Array(buffer.readableBytesView) }
        _ = try channel.finish()
        return (passed, written)
    }

    @Test func pingsAreAnsweredAndEverythingElsePassesUnchanged() throws {
        let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
        let settings = frame(type: 0x4, payload: [0, 4, 0, 1, 0, 0])
        // A DATA frame whose payload looks like a PING frame must not be mistaken for one.
        let data = frame(type: 0x0, stream: 1, payload: frame(type: 0x6, payload: Array(repeating: 9, count: 8)))
        let pingA = frame(type: 0x6, payload: Array("bdp-ping".utf8))
        let ack = frame(type: 0x6, flags: 0x1, payload: Array("their-ack".utf8.prefix(8)))
        let pingOnStream = frame(type: 0x6, stream: 3, payload: Array(repeating: 1, count: 8))  // malformed: the HTTP/2 side's to refuse
        let pingB = frame(type: 0x6, payload: [1, 2, 3, 4, 5, 6, 7, 8])
        let windowUpdate = frame(type: 0x8, payload: [0, 0, 0x40, 0])
        let stream = preface + settings + data + pingA + ack + pingOnStream + windowUpdate + pingB
        let expectedPassed = preface + settings + data + ack + pingOnStream + windowUpdate
        let expectedWritten = frame(type: 0x6, flags: 0x1, payload: Array("bdp-ping".utf8))
            + frame(type: 0x6, flags: 0x1, payload: [1, 2, 3, 4, 5, 6, 7, 8])
        for chunk in [1, 2, 5, 9, 16, 17, 100, stream.count] {
            let (passed, written) = try run(stream, chunk: chunk)
            #expect(passed == expectedPassed, "reads of \(chunk) bytes")
            #expect(written == expectedWritten, "reads of \(chunk) bytes")
        }
    }
}
