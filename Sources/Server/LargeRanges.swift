internal import EtcdAPI
internal import MVCC
internal import NIOCore
internal import NIOHPACK
internal import NIOHTTP2
internal import NIOPosix
internal import SwiftProtobuf

/// A Range over more than one key, answered on the client port's direct path in bounded memory.
///
/// Why: answered by grpc-swift, a Range is one message built whole, after the services built the
/// result: the stored records, their protobuf copies and the encoded message existed at once, and
/// a get of 1M keys (300 MB of response) grew a member by 838 MiB, against etcd's 603 MiB. Here
/// the result is read from one view in chunks of `chunkKeys`. A result that ends within
/// `wholeBytesMax` is answered as before, one built message. A larger one is read twice: once to
/// size the message (gRPC writes its length first), once to encode it and write it out as it
/// goes, each write waiting while `writesAhead` are under way (HTTP/2's flow control holds them
/// until the client has room). The member then holds a few chunks, whatever the size. Both
/// passes read the same view, so they see the same keys.
///
/// Served here: key order (as stored) and no revision filters, RangeStream's restrictions, and
/// not count-only; anything else is left to the bridge.
enum LargeRange {
    static let chunkKeys = 1_000
    static let wholeBytesMax = 4 << 20
    /// Encoded bytes written at once.
    static let writeBytes = 256 << 10
    static let writesAhead = 4
    /// grpc-go's default limit on a message a server sends (math.MaxInt32).
    static let messageBytesMax = Int(Int32.max)

    static func serves(_ request: Etcdserverpb_RangeRequest) -> Bool {
        !request.rangeEnd.isEmpty && !request.countOnly && request.sortTarget == .key
            && (request.sortOrder == .none || request.sortOrder == .ascend)
            && request.minModRevision == 0 && request.maxModRevision == 0
            && request.minCreateRevision == 0 && request.maxCreateRevision == 0
    }

    /// How a large range was answered.
    enum Answer: Sendable {
        /// Small enough to build: the caller writes it.
        case whole(Etcdserverpb_RangeResponse)
        /// Written to the stream already, trailers included.
        case streamed
    }

    /// The number of bytes `keyValue` takes encoded as an `mvccpb.KeyValue` (proto3: fields at
    /// their defaults are left out), so that the message's length is known before it is encoded.
    static func encodedSize(_ keyValue: KeyValue, keysOnly: Bool) -> Int {
        func bytesField(_ count: Int) -> Int { count == 0 ? 0 : 1 + varintSize(UInt64(count)) + count }
        func intField(_ value: Int64) -> Int { value == 0 ? 0 : 1 + varintSize(UInt64(bitPattern: value)) }
        return bytesField(keyValue.key.count) + intField(keyValue.createRevision.value) + intField(keyValue.modRevision.value)
            + intField(keyValue.version) + bytesField(keysOnly ? 0 : keyValue.value.count) + intField(keyValue.lease.value)
    }

    static func varintSize(_ value: UInt64) -> Int {
        var value = value, size = 1
        while value >= 0x80 {
            value >>= 7
            size += 1
        }
        return size
    }

    static func appendVarint(_ value: UInt64, to buffer: inout ByteBuffer) {
        var value = value
        while value >= 0x80 {
            buffer.writeInteger(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        buffer.writeInteger(UInt8(value))
    }
}

extension KVService {
    /// A Range `LargeRange.serves`, from the direct path: read on NIO's blocking pool (after the
    /// read index for a linearizable one) and either handed back whole or written to `stream`.
    func largeRange(
        _ request: Etcdserverpb_RangeRequest, on eventLoop: any EventLoop, stream: any Channel,
        completion: @escaping Completion<LargeRange.Answer>
    ) {
        let read: @Sendable () -> Void = {
            NIOThreadPool.singleton.submit { state in
                let answer = state == .active ? Result { () throws(APIError) in try largeRangeAnswer(request, stream: stream) } : .failure(.stopped)
                eventLoop.execute { completion(answer) }
            }
        }
        do throws(APIError) {
            try RequestChecks.check(request)
            if request.serializable { return read() }
            if isLearner() { throw .notSupportedForLearner }
            reads.waitForReadIndex(waiter: .callback { result in
                switch result {
                case .success: read()
                case .failure(let error): eventLoop.execute { completion(.failure(error)) }
                }
            })
        } catch {
            completion(.failure(error))
        }
    }

    /// Reads the range; writes it to `stream` when it is too large to build (blocking this thread
    /// on the client), or returns it built.
    private func largeRangeAnswer(_ request: Etcdserverpb_RangeRequest, stream: any Channel) throws(APIError) -> LargeRange.Answer {
        let view = store.readView()
        view.recordRange()
        let query = RangeRequest(request)
        let revision = query.revision.value > 0 ? query.revision : view.current
        let total = query.limit > 0 ? Int(query.limit) : Int.max

        /// Calls `body` with each chunk of the result in order; returns the response's `more`
        /// and `count`.
        func forEachChunk(_ body: ([KeyValue]) throws(APIError) -> Void) throws(APIError) -> (more: Bool, count: Int64) {
            var range = query.range, sent = 0
            while true {
                let chunk = try mvcc { try view.rangeChunk(range, at: revision, limit: min(LargeRange.chunkKeys, total - sent)) }
                sent += chunk.keyValues.count
                try body(chunk.keyValues)
                guard chunk.more, let last = chunk.keyValues.last?.key else { return (false, Int64(sent)) }
                range = range.resumed(after: last)
                if sent == total { return (true, Int64(sent + (try mvcc { try view.count(range, at: revision) }))) }
            }
        }

        var header = Etcdserverpb_ResponseHeader(revision: view.current)
        self.header().fill(&header, currentRevision: view.current)
        // First pass: kept while small, only sized once it is not.
        var held: [KeyValue]? = []
        var kvsBytes = 0
        let (more, count) = try forEachChunk { keyValues throws(APIError) in
            for keyValue in keyValues {
                let size = LargeRange.encodedSize(keyValue, keysOnly: query.keysOnly)
                kvsBytes += 1 + LargeRange.varintSize(UInt64(size)) + size
            }
            if kvsBytes <= LargeRange.wholeBytesMax { held?.append(contentsOf: keyValues) } else { held = nil }
        }
        if let held {
            var response = Etcdserverpb_RangeResponse()
            response.header = header
            response.more = more
            response.count = count
            response.kvs = held.map { keyValue in
                var keyValue = keyValue
                if query.keysOnly { keyValue.value = [] }
                return Mvccpb_KeyValue(keyValue)
            }
            return .whole(response)
        }

        // Second pass: the message's fields in etcd's order (header, kvs, more, count).
        let headerBytes: [UInt8]
        do { headerBytes = try header.serializedBytes() } catch { throw .storage("cannot encode a response header: \(error)") }
        var tail = ByteBuffer()
        if more { tail.writeBytes([0x18, 1]) }
        if count != 0 {
            tail.writeInteger(UInt8(0x20))
            LargeRange.appendVarint(UInt64(bitPattern: count), to: &tail)
        }
        let messageBytes = 1 + LargeRange.varintSize(UInt64(headerBytes.count)) + headerBytes.count + kvsBytes + tail.readableBytes
        guard messageBytes <= LargeRange.messageBytesMax else { throw .responseTooLarge(bytes: messageBytes) }
        let writer = StreamedMessageWriter(stream: stream)
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt8(0))
        buffer.writeInteger(UInt32(messageBytes))
        buffer.writeInteger(UInt8(0x0A))
        LargeRange.appendVarint(UInt64(headerBytes.count), to: &buffer)
        buffer.writeBytes(headerBytes)
        var written = 0
        do throws(APIError) {
            try writer.start()
            _ = try forEachChunk { keyValues throws(APIError) in
                for keyValue in keyValues {
                    var keyValue = keyValue
                    if query.keysOnly { keyValue.value = [] }
                    let bytes: [UInt8]
                    do { bytes = try Mvccpb_KeyValue(keyValue).serializedBytes() } catch { throw .storage("cannot encode a key-value: \(error)") }
                    buffer.writeInteger(UInt8(0x12))
                    LargeRange.appendVarint(UInt64(bytes.count), to: &buffer)
                    buffer.writeBytes(bytes)
                    written += 1 + LargeRange.varintSize(UInt64(bytes.count)) + bytes.count
                }
                if buffer.readableBytes >= LargeRange.writeBytes {
                    try writer.write(buffer)
                    buffer = ByteBuffer()
                }
            }
            // The view is the same, so the second pass reads what the first sized; anything else
            // would send a corrupt message.
            guard written == kvsBytes else { throw APIError.storage("a range read \(written) bytes of key-values, sized \(kvsBytes)") }
            buffer.writeBuffer(&tail)
            try writer.write(buffer)
            try writer.finish()
        } catch {
            writer.reset()
            throw error
        }
        return .streamed
    }
}

/// Writes one response's frames to its HTTP/2 stream from a thread of NIO's blocking pool,
/// waiting while `LargeRange.writesAhead` writes are under way.
private final class StreamedMessageWriter {
    let stream: any Channel
    private var underWay: [EventLoopFuture<Void>] = []

    init(stream: any Channel) {
        self.stream = stream
    }

    func start() throws(APIError) {
        try send(.headers(.init(headers: [":status": "200", "content-type": "application/grpc"])))
    }

    func write(_ bytes: ByteBuffer) throws(APIError) {
        try send(.data(.init(data: .byteBuffer(bytes))))
    }

    func finish() throws(APIError) {
        try send(.headers(.init(headers: ["grpc-status": "0"], endStream: true)))
        try wait(until: 0)
    }

    /// The client went away, or the result could not be read to its end: the stream is reset.
    func reset() {
        stream.close(promise: nil)
    }

    private func send(_ payload: HTTP2Frame.FramePayload) throws(APIError) {
        try wait(until: LargeRange.writesAhead - 1)
        underWay.append(stream.writeAndFlush(payload))
    }

    private func wait(until count: Int) throws(APIError) {
        while underWay.count > count {
            do {
                try underWay.removeFirst().wait()
            } catch {
                throw .stopped  // the stream closed under the write
            }
        }
    }
}
