// Maintenance service calls: Status, HashKV, MoveLeader. These describe or act on the member that answers, so
// callers that mean one member give the client that member's endpoint only (clientv3 dials the endpoint for each).

public import EtcdAPI
internal import GRPCCore
internal import GRPCNIOTransportHTTP2Posix

extension EtcdClient {
    /// Maintenance/Status of the member that answers.
    public func status(timeout: Duration? = nil) async throws -> Etcdserverpb_StatusResponse {
        try await call(timeout: timeout) { connection, options in
            try await Etcdserverpb_Maintenance.Client(wrapping: connection).status(
                Etcdserverpb_StatusRequest(), options: options)
        }
    }

    /// Maintenance/HashKV: the hash of the answering member's MVCC history up to `revision` (0: all of it).
    public func hashKV(revision: Int64, timeout: Duration? = nil) async throws -> Etcdserverpb_HashKVResponse {
        var request = Etcdserverpb_HashKVRequest()
        request.revision = revision
        return try await call(timeout: timeout) { [request] connection, options in
            try await Etcdserverpb_Maintenance.Client(wrapping: connection).hashKV(request, options: options)
        }
    }

    /// Maintenance/MoveLeader: asks the answering member, which must be the leader, to transfer leadership.
    public func moveLeader(targetID: UInt64, timeout: Duration? = nil) async throws -> Etcdserverpb_MoveLeaderResponse {
        var request = Etcdserverpb_MoveLeaderRequest()
        request.targetID = targetID
        return try await call(timeout: timeout) { [request] connection, options in
            try await Etcdserverpb_Maintenance.Client(wrapping: connection).moveLeader(request, options: options)
        }
    }
}
