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

extension EtcdClient {
    /// Maintenance/Alarm: lists (GET), raises (ACTIVATE) or clears (DEACTIVATE) alarms; a zero member ID and the
    /// NONE alarm type in a DEACTIVATE match every alarm (what `etcdctl alarm disarm` sends).
    public func alarm(
        _ request: Etcdserverpb_AlarmRequest, timeout: Duration? = nil
    ) async throws -> Etcdserverpb_AlarmResponse {
        try await call(timeout: timeout) { connection, options in
            try await Etcdserverpb_Maintenance.Client(wrapping: connection).alarm(request, options: options)
        }
    }

    /// Maintenance/Defragment of the member that answers.
    public func defragment(timeout: Duration? = nil) async throws -> Etcdserverpb_DefragmentResponse {
        try await call(timeout: timeout) { connection, options in
            try await Etcdserverpb_Maintenance.Client(wrapping: connection).defragment(
                Etcdserverpb_DefragmentRequest(), options: options)
        }
    }

    /// Maintenance/Snapshot of the member that answers: each blob in order to `onBlob`, with the bytes the
    /// server says remain. The last blob is the SHA-256 of the ones before it.
    public func snapshot(
        timeout: Duration? = nil,
        onBlob: @escaping @Sendable (_ blob: [UInt8], _ remainingBytes: UInt64) async throws -> Void
    ) async throws {
        try await call(timeout: timeout) { connection, options in
            try await Etcdserverpb_Maintenance.Client(wrapping: connection).snapshot(
                Etcdserverpb_SnapshotRequest(), options: options,
                onResponse: { response in
                    var received = false
                    do {
                        for try await message in response.messages {
                            received = true
                            try await onBlob(Array(message.blob), message.remainingBytes)
                        }
                    } catch let error as RPCError where received {
                        // Blobs already went to the caller: a failover would send them again from the start.
                        throw EtcdClientError(error)
                    }
                })
        }
    }
}
