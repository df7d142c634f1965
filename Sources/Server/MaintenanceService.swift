internal import Crypto
internal import Foundation
internal import Storage
internal import SwiftProtobuf
internal import Synchronization
internal import EtcdAPI
internal import GRPCCore
internal import MVCC
internal import Transport
internal import Raft

/// etcd's Maintenance service: Status and MoveLeader for now; the rest answers UNIMPLEMENTED
/// honestly until it exists.
struct MaintenanceService: Etcdserverpb_Maintenance.SimpleServiceProtocol {
    let loop: NodeLoop
    let store: MVCCStore
    let memberID: MemberID
    let clusterID: MemberID
    let auth: Authenticator
    /// Where client snapshots are written before they are streamed.
    let snapshotDirectory: String

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
        response.dbSize = loop.database.approximateSizeBytes(of: NodeLoop.stateFamilies)
        response.dbSizeInUse = response.dbSize
        response.leader = facts.leader.rawValue
        response.raftIndex = facts.commitIndex.rawValue
        response.raftTerm = facts.term.rawValue
        response.raftAppliedIndex = facts.appliedIndex.rawValue
        response.isLearner = facts.membership.member(memberID)?.isLearner ?? false
        // etcd lists "no leader" and every active alarm.
        if facts.leader == NodeID.none { response.errors.append(APIError.noLeader.rpcError.message) }
        response.errors += facts.membership.alarms.map(\.description)
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

    /// etcd's Alarm: GET lists the alarms (of one type, or all for NONE) as of a linearizable
    /// point; ACTIVATE and DEACTIVATE go through Raft and answer with the alarm they changed.
    func alarm(request: Etcdserverpb_AlarmRequest, context: ServerContext) async throws -> Etcdserverpb_AlarmResponse {
        try await edge {
            var response = Etcdserverpb_AlarmResponse()
            let wanted = ActiveAlarm(member: MemberID(request.memberID), alarm: request.alarm)
            switch request.action {
            case .get:
                try await loop.waitForReadIndex()
                let alarms = loop.facts.withLock { $0.membership.alarms }
                response.alarms = alarms.filter { request.alarm == .none || $0.alarm == request.alarm }.map(Etcdserverpb_AlarmMember.init)
            case .activate, .deactivate:
                let before = loop.facts.withLock { $0.membership.alarms }
                _ = try await loop.propose(.with { $0.alarm = request })
                let after = loop.facts.withLock { $0.membership.alarms }
                let changed = request.action == .activate ? !before.contains(wanted) && after.contains(wanted) : before.contains(wanted) && !after.contains(wanted)
                if changed { response.alarms = [Etcdserverpb_AlarmMember(wanted)] }
            case .UNRECOGNIZED:
                throw RPCError(code: .invalidArgument, message: "etcdserver: unknown alarm action")
            }
            return response  // etcd's Alarm answers carry no header
        }
    }

    /// etcd rewrites its bbolt file; kvd compacts the state column families, which drops what
    /// deletes and MVCC compaction left behind. Runs off the cooperative pool (it can take long).
    func defragment(request: Etcdserverpb_DefragmentRequest, context: ServerContext) async throws -> Etcdserverpb_DefragmentResponse {
        try await edge { try await auth.checkAdmin() }
        let database = loop.database
        try await Self.offPool {
            for family in NodeLoop.stateFamilies { database.compact(database.columnFamily(family)) }
        }
        loop.refreshBackendBytes()  // a write refused for space may fit now
        var response = Etcdserverpb_DefragmentResponse()
        response.header = header(term: loop.facts.withLock { $0.term })
        return response
    }

    /// etcd hashes the whole backend; kvd hashes the key space's full history, which is what
    /// differs between members if anything does.
    func hash(request: Etcdserverpb_HashRequest, context: ServerContext) async throws -> Etcdserverpb_HashResponse {
        let answer = try await edge {
            try await auth.checkAdmin()
            return try await loop.hashKV(upTo: Revision(0))
        }
        var response = Etcdserverpb_HashResponse()
        response.hash = answer.hash
        response.header = header(term: loop.facts.withLock { $0.term })
        return response
    }

    func hashKV(request: Etcdserverpb_HashKVRequest, context: ServerContext) async throws -> Etcdserverpb_HashKVResponse {
        let answer = try await edge {
            try await auth.checkAdmin()
            return try await loop.hashKV(upTo: Revision(request.revision))
        }
        var response = Etcdserverpb_HashKVResponse()
        response.hash = answer.hash
        response.compactRevision = answer.compactRevision
        response.header = header(term: loop.facts.withLock { $0.term })
        return response
    }

    /// A consistent point-in-time copy of this member's key space, users and roles as etcd's
    /// backend (a bbolt file, `EtcdBackupFile`), streamed as etcd does: 32 KiB blobs with
    /// `remaining_bytes`, then the SHA-256 of everything sent as the last blob. The file is
    /// written first (memory stays bounded at any size) and removed after the stream.
    func snapshot(request: Etcdserverpb_SnapshotRequest, response: RPCWriter<Etcdserverpb_SnapshotResponse>, context: ServerContext) async throws {
        try await edge { try await auth.checkAdmin() }
        let database = loop.database
        let view = store.readView()
        let path = snapshotDirectory + "/client-\(UUID().uuidString).snap"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try await Self.offPool {
            _ = try EtcdBackupFile.write(view, database: database, to: path)
        }
        guard let file = FileHandle(forReadingAtPath: path) else {
            throw RPCError(code: .internalError, message: "etcdserver: cannot read snapshot image")
        }
        defer { try? file.close() }  // read-only: nothing to lose
        let total = try file.seekToEnd()
        try file.seek(toOffset: 0)
        var digest = SHA256()
        var sent: UInt64 = 0
        while sent < total {
            let blob = try file.read(upToCount: 32 * 1024) ?? Data()
            if blob.isEmpty { break }
            digest.update(data: blob)
            sent += UInt64(blob.count)
            var message = Etcdserverpb_SnapshotResponse()
            message.remainingBytes = total - sent
            message.blob = blob
            try await response.write(message)
        }
        var last = Etcdserverpb_SnapshotResponse()
        last.blob = Data(digest.finalize())
        try await response.write(last)
    }

    /// Runs blocking storage work on its own thread, keeping Swift's cooperative pool free.
    private static func offPool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread { continuation.resume(with: Result { try work() }) }
            thread.name = "kvd-maintenance"
            thread.start()
        }
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
