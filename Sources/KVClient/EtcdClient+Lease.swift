// Lease service calls: LeaseGrant, LeaseRevoke, LeaseTimeToLive, LeaseLeases, and LeaseKeepAlive over its stream
// (clientv3's KeepAliveOnce and KeepAlive).

public import EtcdAPI
internal import GRPCCore
internal import GRPCNIOTransportHTTP2Posix
internal import Synchronization

extension EtcdClient {
    /// Lease/LeaseGrant: a lease of `ttlSeconds`; `id` 0 lets the server choose the ID.
    public func leaseGrant(
        ttlSeconds: Int64, id: Int64 = 0, timeout: Duration? = nil
    ) async throws -> Etcdserverpb_LeaseGrantResponse {
        var request = Etcdserverpb_LeaseGrantRequest()
        request.ttl = ttlSeconds
        request.id = id
        return try await call(timeout: timeout) { [request] connection, options in
            try await Etcdserverpb_Lease.Client(wrapping: connection).leaseGrant(request, options: options)
        }
    }

    /// Lease/LeaseRevoke: revokes the lease and deletes the keys attached to it.
    public func leaseRevoke(id: Int64, timeout: Duration? = nil) async throws -> Etcdserverpb_LeaseRevokeResponse {
        var request = Etcdserverpb_LeaseRevokeRequest()
        request.id = id
        return try await call(timeout: timeout) { [request] connection, options in
            try await Etcdserverpb_Lease.Client(wrapping: connection).leaseRevoke(request, options: options)
        }
    }

    /// Lease/LeaseTimeToLive: the lease's granted and remaining TTL, with its keys when `keys` is set.
    public func leaseTimeToLive(
        id: Int64, keys: Bool, timeout: Duration? = nil
    ) async throws -> Etcdserverpb_LeaseTimeToLiveResponse {
        var request = Etcdserverpb_LeaseTimeToLiveRequest()
        request.id = id
        request.keys = keys
        return try await call(timeout: timeout) { [request] connection, options in
            try await Etcdserverpb_Lease.Client(wrapping: connection).leaseTimeToLive(request, options: options)
        }
    }

    /// Lease/LeaseLeases: the IDs of every lease.
    public func leaseLeases(timeout: Duration? = nil) async throws -> Etcdserverpb_LeaseLeasesResponse {
        try await call(timeout: timeout) { connection, options in
            try await Etcdserverpb_Lease.Client(wrapping: connection).leaseLeases(
                Etcdserverpb_LeaseLeasesRequest(), options: options)
        }
    }

    /// One renewal over a LeaseKeepAlive stream (clientv3's KeepAliveOnce). A response with a TTL of 0 or less
    /// means the lease does not exist (any more); the caller decides what that means.
    public func leaseKeepAliveOnce(
        id: Int64, timeout: Duration? = nil
    ) async throws -> Etcdserverpb_LeaseKeepAliveResponse {
        try await leaseKeepAlive(id: id, timeout: timeout) { response in
            (response, true)
        }
    }

    /// Renews the lease over one LeaseKeepAlive stream: a request now, and another a third of the TTL after each
    /// answer (clientv3's rhythm), until `onResponse` says to stop or the lease is gone (TTL <= 0: that last
    /// response is passed too). Returns the last response.
    public func leaseKeepAlive(
        id: Int64, timeout: Duration? = nil,
        onResponse: @escaping @Sendable (Etcdserverpb_LeaseKeepAliveResponse) async throws -> Void
    ) async throws {
        _ = try await leaseKeepAlive(id: id, timeout: timeout) { response in
            try await onResponse(response)
            return (response, response.ttl <= 0)
        }
    }

    private func leaseKeepAlive(
        id: Int64, timeout: Duration?,
        _ handle: @escaping @Sendable (Etcdserverpb_LeaseKeepAliveResponse) async throws
            -> (Etcdserverpb_LeaseKeepAliveResponse, stop: Bool)
    ) async throws -> Etcdserverpb_LeaseKeepAliveResponse {
        var request = Etcdserverpb_LeaseKeepAliveRequest()
        request.id = id
        // The TTL of the latest answer paces the next request; the producer and the reader share it.
        let nextDelay = Mutex<Duration?>(nil)
        let answered = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        return try await call(timeout: timeout) { [request] connection, options in
            try await Etcdserverpb_Lease.Client(wrapping: connection).leaseKeepAlive(
                options: options,
                requestProducer: { writer in
                    try await writer.write(request)
                    for await _ in answered.stream {
                        guard let delay = nextDelay.withLock({ $0 }) else { continue }
                        try await Task.sleep(for: delay)
                        try await writer.write(request)
                    }
                },
                onResponse: { responses in
                    defer { answered.continuation.finish() }
                    for try await response in responses.messages {
                        let (result, stop) = try await handle(response)
                        if stop { return result }
                        nextDelay.withLock { $0 = .seconds(max(response.ttl / 3, 1)) }
                        answered.continuation.yield()
                    }
                    throw EtcdClientError(code: .unavailable, message: "etcdserver: server stopped")
                })
        }
    }
}
