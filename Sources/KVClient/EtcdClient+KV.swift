// KV service calls: Range, Put, DeleteRange, Txn, Compact.

public import EtcdAPI
internal import GRPCCore
internal import GRPCNIOTransportHTTP2Posix
internal import SwiftProtobuf

extension EtcdClient {
    /// KV/Range. `timeout` nil means no limit.
    public func range(
        _ request: Etcdserverpb_RangeRequest, timeout: Duration? = nil
    ) async throws -> Etcdserverpb_RangeResponse {
        try Self.checkSize(request)
        return try await call(timeout: timeout) { connection, options in
            try await Etcdserverpb_KV.Client(wrapping: connection).range(request, options: options)
        }
    }

    /// KV/Put.
    public func put(
        _ request: Etcdserverpb_PutRequest, timeout: Duration? = nil
    ) async throws -> Etcdserverpb_PutResponse {
        try Self.checkSize(request)
        return try await call(timeout: timeout) { connection, options in
            try await Etcdserverpb_KV.Client(wrapping: connection).put(request, options: options)
        }
    }

    /// KV/DeleteRange.
    public func deleteRange(
        _ request: Etcdserverpb_DeleteRangeRequest, timeout: Duration? = nil
    ) async throws -> Etcdserverpb_DeleteRangeResponse {
        try Self.checkSize(request)
        return try await call(timeout: timeout) { connection, options in
            try await Etcdserverpb_KV.Client(wrapping: connection).deleteRange(request, options: options)
        }
    }

    /// KV/Txn.
    public func txn(
        _ request: Etcdserverpb_TxnRequest, timeout: Duration? = nil
    ) async throws -> Etcdserverpb_TxnResponse {
        try Self.checkSize(request)
        return try await call(timeout: timeout) { connection, options in
            try await Etcdserverpb_KV.Client(wrapping: connection).txn(request, options: options)
        }
    }

    /// KV/Compact.
    public func compact(
        _ request: Etcdserverpb_CompactionRequest, timeout: Duration? = nil
    ) async throws -> Etcdserverpb_CompactionResponse {
        try Self.checkSize(request)
        return try await call(timeout: timeout) { connection, options in
            try await Etcdserverpb_KV.Client(wrapping: connection).compact(request, options: options)
        }
    }

    /// Refuses a request above `requestBytesMax` before sending it, with Go grpc's status (clientv3 does the same).
    static func checkSize(_ request: some SwiftProtobuf.Message) throws {
        // Serialising an in-memory proto3 message cannot fail; a failure would surface again when it is sent.
        let size = ((try? request.serializedBytes()) as [UInt8]?)?.count ?? 0
        guard size <= requestBytesMax else {
            throw EtcdClientError(
                code: .resourceExhausted,
                message: "trying to send message larger than max (\(size) vs. \(requestBytesMax))")
        }
    }
}
