// KV service calls: Range, Put, DeleteRange, Txn, Compact.

public import EtcdAPI
internal import GRPCCore
internal import GRPCNIOTransportHTTP2Posix

extension EtcdClient {
    /// KV/Range. `timeout` nil means no limit.
    public func range(
        _ request: Etcdserverpb_RangeRequest, timeout: Duration? = nil
    ) async throws -> Etcdserverpb_RangeResponse {
        try await call(timeout: timeout) { connection, options in
            try await Etcdserverpb_KV.Client(wrapping: connection).range(request, options: options)
        }
    }

    /// KV/Put.
    public func put(
        _ request: Etcdserverpb_PutRequest, timeout: Duration? = nil
    ) async throws -> Etcdserverpb_PutResponse {
        try await call(timeout: timeout) { connection, options in
            try await Etcdserverpb_KV.Client(wrapping: connection).put(request, options: options)
        }
    }

    /// KV/DeleteRange.
    public func deleteRange(
        _ request: Etcdserverpb_DeleteRangeRequest, timeout: Duration? = nil
    ) async throws -> Etcdserverpb_DeleteRangeResponse {
        try await call(timeout: timeout) { connection, options in
            try await Etcdserverpb_KV.Client(wrapping: connection).deleteRange(request, options: options)
        }
    }

    /// KV/Txn.
    public func txn(
        _ request: Etcdserverpb_TxnRequest, timeout: Duration? = nil
    ) async throws -> Etcdserverpb_TxnResponse {
        try await call(timeout: timeout) { connection, options in
            try await Etcdserverpb_KV.Client(wrapping: connection).txn(request, options: options)
        }
    }

    /// KV/Compact.
    public func compact(
        _ request: Etcdserverpb_CompactionRequest, timeout: Duration? = nil
    ) async throws -> Etcdserverpb_CompactionResponse {
        try await call(timeout: timeout) { connection, options in
            try await Etcdserverpb_KV.Client(wrapping: connection).compact(request, options: options)
        }
    }
}
