internal import Storage
internal import SwiftProtobuf
internal import Synchronization
internal import EtcdAPI
internal import GRPCCore
internal import MVCC
internal import Raft

/// etcd's Maintenance service: Status and MoveLeader for now; the rest answers UNIMPLEMENTED
/// honestly until it exists.
struct MaintenanceService: Etcdserverpb_Maintenance.SimpleServiceProtocol {
    let loop: NodeLoop
    let store: MVCCStore
    let memberID: MemberID
    let clusterID: MemberID

    /// The etcd version kvd reports. Kubernetes reads it from Status to decide whether it may
    /// serve consistent lists from its watch cache (etcd >= 3.5.13, whose RequestProgress
    /// semantics kvd's watch follows); the wire API is etcd 3.4's, which 3.6 clients speak too.
    static let etcdVersion = "3.6.0"
    /// The cluster version the members agree on (`/version`'s "etcdcluster").
    static let clusterVersion = "3.6.0"

    func status(request: Etcdserverpb_StatusRequest, context: ServerContext) async throws -> Etcdserverpb_StatusResponse {
        let facts = loop.facts.withLock { $0 }
        var response = Etcdserverpb_StatusResponse()
        response.header = header(term: facts.term)
        response.version = Self.etcdVersion
        response.dbSize = loop.database.approximateSizeBytes()
        response.dbSizeInUse = response.dbSize
        response.leader = facts.leader.rawValue
        response.raftIndex = facts.commitIndex.rawValue
        response.raftTerm = facts.term.rawValue
        response.raftAppliedIndex = facts.appliedIndex.rawValue
        response.isLearner = facts.membership.member(memberID)?.isLearner ?? false
        return response
    }

    func moveLeader(request: Etcdserverpb_MoveLeaderRequest, context: ServerContext) async throws -> Etcdserverpb_MoveLeaderResponse {
        try await edge {
            try await loop.moveLeader(to: NodeID(request.targetID))
            var response = Etcdserverpb_MoveLeaderResponse()
            response.header = header(term: loop.facts.withLock { $0.term })
            return response
        }
    }

    func alarm(request: Etcdserverpb_AlarmRequest, context: ServerContext) async throws -> Etcdserverpb_AlarmResponse {
        throw RPCError(code: .unimplemented, message: "kvd: Maintenance.Alarm is not implemented yet")
    }

    func defragment(request: Etcdserverpb_DefragmentRequest, context: ServerContext) async throws -> Etcdserverpb_DefragmentResponse {
        throw RPCError(code: .unimplemented, message: "kvd: Maintenance.Defragment is not implemented yet")
    }

    /// etcd hashes the whole backend; kvd hashes the key space's full history, which is what
    /// differs between members if anything does.
    func hash(request: Etcdserverpb_HashRequest, context: ServerContext) async throws -> Etcdserverpb_HashResponse {
        try edge {
            let view = store.readView()
            var response = Etcdserverpb_HashResponse()
            response.hash = try mvcc { try view.hashKV(upTo: Revision(0)).hash }
            response.header = header(term: loop.facts.withLock { $0.term })
            return response
        }
    }

    func hashKV(request: Etcdserverpb_HashKVRequest, context: ServerContext) async throws -> Etcdserverpb_HashKVResponse {
        try edge {
            let view = store.readView()
            let (hash, compacted) = try mvcc { try view.hashKV(upTo: Revision(request.revision)) }
            var response = Etcdserverpb_HashKVResponse()
            response.hash = hash
            response.compactRevision = max(0, compacted.value)
            response.header = header(term: loop.facts.withLock { $0.term })
            return response
        }
    }

    func snapshot(request: Etcdserverpb_SnapshotRequest, response: RPCWriter<Etcdserverpb_SnapshotResponse>, context: ServerContext) async throws {
        throw RPCError(code: .unimplemented, message: "kvd: Maintenance.Snapshot is not implemented yet")
    }

    private func header(term: Term) -> Etcdserverpb_ResponseHeader {
        var header = Etcdserverpb_ResponseHeader()
        header.clusterID = clusterID.value
        header.memberID = memberID.value
        header.raftTerm = term.rawValue
        header.revision = store.currentRevision.value
        return header
    }
}
