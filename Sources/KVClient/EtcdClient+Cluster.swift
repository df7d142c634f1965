// Cluster service calls: MemberList, MemberAdd, MemberRemove, MemberUpdate, MemberPromote.

public import EtcdAPI
internal import GRPCCore
internal import GRPCNIOTransportHTTP2Posix

extension EtcdClient {
    /// Cluster/MemberList.
    public func memberList(timeout: Duration? = nil) async throws -> Etcdserverpb_MemberListResponse {
        try await call(timeout: timeout) { connection, options in
            try await Etcdserverpb_Cluster.Client(wrapping: connection).memberList(
                Etcdserverpb_MemberListRequest(), options: options)
        }
    }

    /// Cluster/MemberAdd, as a voter or (`isLearner`) as a learner.
    public func memberAdd(
        peerURLs: [String], isLearner: Bool, timeout: Duration? = nil
    ) async throws -> Etcdserverpb_MemberAddResponse {
        var request = Etcdserverpb_MemberAddRequest()
        request.peerUrls = peerURLs
        request.isLearner = isLearner
        return try await call(timeout: timeout) { [request] connection, options in
            try await Etcdserverpb_Cluster.Client(wrapping: connection).memberAdd(request, options: options)
        }
    }

    /// Cluster/MemberRemove.
    public func memberRemove(id: UInt64, timeout: Duration? = nil) async throws -> Etcdserverpb_MemberRemoveResponse {
        var request = Etcdserverpb_MemberRemoveRequest()
        request.id = id
        return try await call(timeout: timeout) { [request] connection, options in
            try await Etcdserverpb_Cluster.Client(wrapping: connection).memberRemove(request, options: options)
        }
    }

    /// Cluster/MemberUpdate: replaces the member's peer URLs.
    public func memberUpdate(
        id: UInt64, peerURLs: [String], timeout: Duration? = nil
    ) async throws -> Etcdserverpb_MemberUpdateResponse {
        var request = Etcdserverpb_MemberUpdateRequest()
        request.id = id
        request.peerUrls = peerURLs
        return try await call(timeout: timeout) { [request] connection, options in
            try await Etcdserverpb_Cluster.Client(wrapping: connection).memberUpdate(request, options: options)
        }
    }

    /// Cluster/MemberPromote: a learner becomes a voter.
    public func memberPromote(id: UInt64, timeout: Duration? = nil) async throws -> Etcdserverpb_MemberPromoteResponse {
        var request = Etcdserverpb_MemberPromoteRequest()
        request.id = id
        return try await call(timeout: timeout) { [request] connection, options in
            try await Etcdserverpb_Cluster.Client(wrapping: connection).memberPromote(request, options: options)
        }
    }
}
