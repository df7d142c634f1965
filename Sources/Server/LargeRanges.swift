internal import EtcdAPI
internal import MVCC
internal import NIOCore
internal import NIOHPACK
internal import NIOHTTP2
internal import NIOPosix
internal import SwiftProtobuf
internal import Synchronization

/// A Range over more than one key, answered on the client port's direct path in bounded memory.
///
/// Why: answered by grpc-swift, a Range is one message built whole, after the services built the
/// result: the stored records, their protobuf copies and the encoded message existed at once, and
/// a get of 1M keys (300 MB of response) grew a member by 838 MiB, against etcd's 603 MiB. Here
/// the result is read from one view in chunks of `chunkKeys`. A result that ends within
/// `wholeBytesMax` is answered as before, one built message. A larger one is read twice: once to
/// size the message (gRPC writes its length first), once to encode it and write it out as it
/// goes (`RangeStreamer`), the next piece encoded only while fewer than `writesAhead` writes are
/// under way (HTTP/2's flow control holds them until the client has room). The member then holds
/// a few chunks, whatever the size. Both passes read the same view, so they see the same keys.
///
/// Served here: results in key order as stored (no sort, or ascending by key), without revision
/// filters, not count-only; anything else is left to the bridge.
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
    /// read index for a linearizable one), then handed back built or written to `stream`.
    func largeRange(
        _ request: Etcdserverpb_RangeRequest, on eventLoop: any EventLoop, stream: any Channel,
        completion: @escaping Completion<LargeRange.Answer>
    ) {
        whenReadable(request, on: eventLoop, completion: completion) {
            NIOThreadPool.singleton.submit { state in
                guard state == .active else { return eventLoop.execute { completion(.failure(.stopped)) } }
                switch Result(catching: { () throws(APIError) in try largeRangeAnswer(request, stream: stream) }) {
                case .success(.built(let response)): eventLoop.execute { completion(.success(.whole(response))) }
                case .success(.streaming(let streamer)):
                    streamer.start { result in eventLoop.execute { completion(result.map { .streamed }) } }
                case .failure(let error): eventLoop.execute { completion(.failure(error)) }
                }
            }
        }
    }

    private enum LargeRangeRead {
        case built(Etcdserverpb_RangeResponse)
        case streaming(RangeStreamer)
    }

    /// Reads the range once: returns it built when it is small, or else a streamer that reads it
    /// again to write it out.
    private func largeRangeAnswer(_ request: Etcdserverpb_RangeRequest, stream: any Channel) throws(APIError) -> LargeRangeRead {
        let view = store.readView()
        view.recordRange()
        let query = RangeRequest(request)
        var header = Etcdserverpb_ResponseHeader(revision: view.current)
        self.header().fill(&header, currentRevision: view.current)

        // First pass: kept while small, only sized once it is not.
        var chunks = RangeChunks(view: view, query: query)
        var held: [KeyValue]? = []
        var kvsBytes = 0
        while let keyValues = try chunks.next() {
            for keyValue in keyValues {
                let size = LargeRange.encodedSize(keyValue, keysOnly: query.keysOnly)
                kvsBytes += 1 + LargeRange.varintSize(UInt64(size)) + size
            }
            if kvsBytes <= LargeRange.wholeBytesMax { held?.append(contentsOf: keyValues) } else { held = nil }
        }
        let more = chunks.more
        let count = try chunks.count()
        if let held {
            var response = Etcdserverpb_RangeResponse()
            response.header = header
            response.more = more
            response.count = count
            response.kvs = held.map { Mvccpb_KeyValue($0, keysOnly: query.keysOnly) }
            return .built(response)
        }

        // The message's fields in etcd's order: header, kvs, more, count.
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
        var first = ByteBuffer()
        first.writeInteger(UInt8(0))
        first.writeInteger(UInt32(messageBytes))
        first.writeInteger(UInt8(0x0A))
        LargeRange.appendVarint(UInt64(headerBytes.count), to: &first)
        first.writeBytes(headerBytes)
        return .streaming(
            RangeStreamer(
                stream: stream, chunks: RangeChunks(view: view, query: query), keysOnly: query.keysOnly, first: first,
                tail: tail, kvsBytes: kvsBytes))
    }
}

/// The chunks of one range's result, in key order, read from one view: what a large Range
/// encodes piece by piece and what RangeStream sends message by message.
struct RangeChunks: Sendable {
    let view: ReadView
    let revision: Revision
    /// The request's limit (no limit: `Int.max`).
    let total: Int
    /// What is left to read.
    private var range: KeyRange
    private(set) var sent = 0
    /// Whether the range holds keys past `total` (known once `isFinished`).
    private(set) var more = false
    private(set) var isFinished = false

    init(view: ReadView, query: RangeRequest) {
        self.view = view
        revision = query.revision.value > 0 ? query.revision : view.current
        total = query.limit > 0 ? Int(query.limit) : Int.max
        range = query.range
    }

    /// The next chunk of at most `limit` keys; nil once the result is read.
    mutating func next(limit: Int = LargeRange.chunkKeys) throws(APIError) -> [KeyValue]? {
        guard !isFinished else { return nil }
        let chunk = try mvcc { try view.rangeChunk(range, at: revision, limit: min(limit, total - sent)) }
        sent += chunk.keyValues.count
        if chunk.more, let last = chunk.keyValues.last?.key {
            range = range.resumed(after: last)
            if sent == total { (isFinished, more) = (true, true) }
        } else {
            isFinished = true
        }
        return chunk.keyValues
    }

    /// The response's count, once finished: the keys read, and those past `total`.
    func count() throws(APIError) -> Int64 {
        Int64(sent) + (more ? Int64(try mvcc { try view.count(range, at: revision) }) : 0)
    }
}

/// Writes a large range's message to its HTTP/2 stream, encoding it chunk by chunk on NIO's
/// blocking pool without ever waiting there for the client: once `LargeRange.writesAhead` writes
/// are under way, the next piece is encoded when one of them completes (a client that stops
/// reading holds memory for those writes, not a thread that other reads need).
private final class RangeStreamer: @unchecked Sendable {
    // @unchecked: the encoding state (`chunks`, `pending`, `tail`, `written`, `headersSent`) is
    // used by one `pump` at a time: a pump runs again only after the last one stopped, started by
    // a write's completion that saw it stop (under `progress`'s lock). `completion` is set before
    // the first pump.
    private let stream: any Channel
    private var chunks: RangeChunks
    private let keysOnly: Bool
    /// Encoded and not yet written.
    private var pending: ByteBuffer
    /// `more` and `count`, written after the last key-value; nil once written.
    private var tail: ByteBuffer?
    /// The key-values' bytes the first pass sized, and those encoded so far.
    private let kvsBytes: Int
    private var written = 0
    private var headersSent = false
    private var completion: (@Sendable (Result<Void, APIError>) -> Void)?

    private struct Progress {
        var underWay = 0
        /// The pump stopped for room: the next completion starts it again.
        var waiting = false
        var ended = false
    }
    private let progress = Mutex(Progress())

    init(stream: any Channel, chunks: RangeChunks, keysOnly: Bool, first: ByteBuffer, tail: ByteBuffer, kvsBytes: Int) {
        self.stream = stream
        self.chunks = chunks
        self.keysOnly = keysOnly
        self.pending = first
        self.tail = tail
        self.kvsBytes = kvsBytes
    }

    /// Starts writing; `completion` runs once, when the message is out or the stream failed.
    func start(completion: @escaping @Sendable (Result<Void, APIError>) -> Void) {
        self.completion = completion
        pump()
    }

    private func pump() {
        while true {
            let proceed = progress.withLock { progress -> Bool in
                if progress.ended { return false }
                if progress.underWay >= LargeRange.writesAhead {
                    progress.waiting = true
                    return false
                }
                progress.underWay += 1
                return true
            }
            guard proceed else { return }
            let next: (payload: HTTP2Frame.FramePayload, last: Bool)
            do throws(APIError) {
                next = try nextFrame()
            } catch {
                return end(.failure(error))
            }
            stream.writeAndFlush(next.payload).whenComplete { result in self.wrote(result, last: next.last) }
            if next.last { return }
        }
    }

    /// A write completed (on the stream's event loop).
    private func wrote(_ result: Result<Void, any Error>, last: Bool) {
        let resume = progress.withLock { progress -> Bool in
            progress.underWay -= 1
            defer { progress.waiting = false }
            return progress.waiting && !progress.ended
        }
        switch result {
        case .failure: end(.failure(.stopped))  // the client went away
        case .success where last: end(.success(()))
        case .success:
            guard resume else { return }
            NIOThreadPool.singleton.submit { state in state == .active ? self.pump() : self.end(.failure(.stopped)) }
        }
    }

    /// Reports the first end only; a failed one resets the stream.
    private func end(_ result: Result<Void, APIError>) {
        let first = progress.withLock { progress -> Bool in
            defer { progress.ended = true }
            return !progress.ended
        }
        guard first else { return }
        if case .failure = result { stream.close(promise: nil) }
        completion?(result)
    }

    /// The response headers, then pieces of the message of about `LargeRange.writeBytes`, then
    /// the trailers (`last`).
    private func nextFrame() throws(APIError) -> (payload: HTTP2Frame.FramePayload, last: Bool) {
        if !headersSent {
            headersSent = true
            return (.headers(.init(headers: [":status": "200", "content-type": "application/grpc"])), false)
        }
        guard var tail else { return (.headers(.init(headers: ["grpc-status": "0"], endStream: true)), true) }
        while pending.readableBytes < LargeRange.writeBytes, let keyValues = try chunks.next() {
            for keyValue in keyValues {
                let bytes: [UInt8]
                do { bytes = try Mvccpb_KeyValue(keyValue, keysOnly: keysOnly).serializedBytes() } catch { throw .storage("cannot encode a key-value: \(error)") }
                pending.writeInteger(UInt8(0x12))
                LargeRange.appendVarint(UInt64(bytes.count), to: &pending)
                pending.writeBytes(bytes)
                written += 1 + LargeRange.varintSize(UInt64(bytes.count)) + bytes.count
            }
        }
        if chunks.isFinished {
            // The same view, so this pass reads what the first sized; anything else would send a
            // corrupt message.
            guard written == kvsBytes else { throw .storage("a range read \(written) bytes of key-values, sized \(kvsBytes)") }
            pending.writeBuffer(&tail)
            self.tail = nil
        }
        defer { pending = ByteBuffer() }
        return (.data(.init(data: .byteBuffer(pending))), false)
    }
}
