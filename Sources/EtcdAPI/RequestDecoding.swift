public import GRPCCore
public import SwiftProtobuf
internal import Synchronization

/// How a server decodes client requests, as etcd's grpc-go does. The generated service code
/// (`scripts/generate-protos.sh` points every request deserializer of `rpc.grpc.swift` here)
/// cannot be handed settings, so the server sets them once at start.
public enum RequestDecoding {
    /// etcd's gRPC receive limit (`--max-request-bytes` plus 512 KiB): a larger request gets
    /// grpc-go's `ResourceExhausted` status. The transport's own limit sits above it, so that
    /// such requests reach the check instead of having their stream reset.
    public static var messageBytesMax: Int {
        get { limit.load(ordering: .relaxed) }
        set { limit.store(newValue, ordering: .relaxed) }
    }
    private static let limit = Atomic<Int>(Int.max)

    /// Nested messages accepted: a Txn nests two per level (TxnRequest, RequestOp), and etcd's
    /// gogo-generated decoder has no depth limit, where Swift Protobuf's default (100) refused a
    /// Txn nested 50 deep. A Raft entry wraps the request once more.
    public static let options: BinaryDecodingOptions = {
        var options = BinaryDecodingOptions()
        options.messageDepthLimit = 1_000
        return options
    }()
}

/// Decodes one client request with `RequestDecoding`'s limits and grpc-go's statuses.
public struct EtcdRequestDeserializer<Message: SwiftProtobuf.Message>: MessageDeserializer {
    public init() {}

    public func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws -> Message {
        let size = serializedMessageBytes.count, limit = RequestDecoding.messageBytesMax
        if size > limit {
            throw RPCError(code: .resourceExhausted, message: "grpc: received message larger than max (\(size) vs. \(limit))")
        }
        do {
            return try Message(serializedBytes: GRPCBytes(serializedMessageBytes), options: RequestDecoding.options)
        } catch {
            // Go's decoder says "unexpected EOF" where Swift Protobuf says "truncated".
            let reason = error as? BinaryDecodingError == .truncated ? "unexpected EOF" : "\(error)"
            throw RPCError(code: .internalError, message: "grpc: error unmarshalling request: \(reason)")
        }
    }
}

/// gRPC's bytes as Swift Protobuf reads them, without a copy.
private struct GRPCBytes<Bytes: GRPCContiguousBytes>: SwiftProtobufContiguousBytes {
    var bytes: Bytes
    init(_ bytes: Bytes) { self.bytes = bytes }
    init(repeating: UInt8, count: Int) { bytes = Bytes(repeating: repeating, count: count) }
    init(_ sequence: some Sequence<UInt8>) { bytes = Bytes(sequence) }
    var count: Int { bytes.count }
    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R { try bytes.withUnsafeBytes(body) }
    mutating func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        try bytes.withUnsafeMutableBytes(body)
    }
}
