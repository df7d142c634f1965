// etcd's v3lock and v3election services: the server side of `etcdctl lock` and `etcdctl elect`.

public import EtcdAPI
public import Foundation
internal import GRPCCore
internal import SwiftProtobuf

extension EtcdClient {
    /// Lock/Lock: waits until the lock `name` is held by `lease`; no time limit (a lock may wait
    /// for as long as its holder keeps it).
    public func lock(name: Data, lease: Int64) async throws -> V3lockpb_LockResponse {
        let request = V3lockpb_LockRequest.with { $0.name = name; $0.lease = lease }
        return try await call(timeout: nil) { connection, options in
            try await V3lockpb_Lock.Client(wrapping: connection).lock(request, options: options)
        }
    }

    /// Lock/Unlock: deletes the lock's key.
    public func unlock(key: Data, timeout: Duration? = nil) async throws -> V3lockpb_UnlockResponse {
        let request = V3lockpb_UnlockRequest.with { $0.key = key }
        return try await call(timeout: timeout) { connection, options in
            try await V3lockpb_Lock.Client(wrapping: connection).unlock(request, options: options)
        }
    }

    /// Election/Campaign: waits until `lease`'s candidacy in `name` leads; no time limit.
    public func campaign(name: Data, lease: Int64, value: Data) async throws -> V3electionpb_CampaignResponse {
        let request = V3electionpb_CampaignRequest.with { $0.name = name; $0.lease = lease; $0.value = value }
        return try await call(timeout: nil) { connection, options in
            try await V3electionpb_Election.Client(wrapping: connection).campaign(request, options: options)
        }
    }

    /// Election/Resign: gives up the leadership `leader` holds.
    public func resign(_ leader: V3electionpb_LeaderKey, timeout: Duration? = nil) async throws -> V3electionpb_ResignResponse {
        let request = V3electionpb_ResignRequest.with { $0.leader = leader }
        return try await call(timeout: timeout) { connection, options in
            try await V3electionpb_Election.Client(wrapping: connection).resign(request, options: options)
        }
    }

    /// Election/Observe: each leader of `name` and each value it proclaims, until the stream ends.
    public func observe(
        name: Data, onResponse: @escaping @Sendable (V3electionpb_LeaderResponse) async throws -> Void
    ) async throws {
        let request = V3electionpb_LeaderRequest.with { $0.name = name }
        try await call(timeout: nil) { connection, options in
            try await V3electionpb_Election.Client(wrapping: connection).observe(request, options: options) { response in
                for try await leader in response.messages { try await onResponse(leader) }
            }
        }
    }
}
