internal import EtcdAPI
internal import Foundation
internal import Logging
internal import MVCC
internal import Raft
internal import SwiftProtobuf
internal import Synchronization
internal import Transport

/// The write path as the services see it: a request goes into the Raft log and its result comes
/// back once the entry is applied on this member.
protocol WriteProposer: Sendable {
    func propose(_ request: Kvdpb_InternalRequest) async throws(APIError) -> WriteResult?
    /// Proposes `request`; `waiter` gets the result once it is applied here.
    func propose(_ request: Kvdpb_InternalRequest, waiter: ProposalWaiter)
    /// Returns once this member holds no history below `revision` (etcd's physical compaction).
    func waitForHistoryRemoval(below revision: Revision) async throws(APIError)
}

/// Linearizable reads as the services see them.
protocol ReadBarrier: Sendable {
    /// Returns once this member has applied everything committed when the read was asked for
    /// (ReadIndex, Raft thesis §6.4).
    func waitForReadIndex() async throws(APIError)
    /// `waitForReadIndex()` for a caller without a task: `waiter` is resumed instead.
    func waitForReadIndex(waiter: ReadWaiter)
}

/// Request IDs: the member ID's low 16 bits, then a counter started from the clock so that a
/// restart does not reuse IDs still in the log (etcd `idutil.Generator`).
final class RequestIDs: Sendable {
    private let next: Atomic<UInt64>

    init(memberID: MemberID) {
        let start = UInt64(Date().timeIntervalSince1970 * 1000) << 8
        next = Atomic((memberID.value & 0xFFFF) << 48 | (start & 0x0000_FFFF_FFFF_FFFF))
    }

    func make() -> UInt64 { next.add(1, ordering: .relaxed).newValue }
}

extension NodeLoop: WriteProposer, ReadBarrier {
    func propose(_ request: Kvdpb_InternalRequest) async throws(APIError) -> WriteResult? {
        try await withCheckedContinuation { propose(request, waiter: .task($0)) }.get()
    }

    func propose(_ request: Kvdpb_InternalRequest, waiter: ProposalWaiter) {
        if let quota = settings.quotaBytes, case let cost = Self.quotaCost(request), cost > 0,
            backendBytes.load(ordering: .relaxed) + cost >= quota
        {
            return raiseSpaceAlarm(failing: waiter)
        }
        var request = request
        request.id = requestIDs.make()
        let data: [UInt8]
        do {
            data = try request.serializedBytes()
        } catch {
            return waiter.resume(returning: .failure(.storage("cannot encode request: \(error)")))
        }
        // etcd checks the encoded proposal, not the client's request: one encoding serves both.
        if data.count > settings.requestBytesMax { return waiter.resume(returning: .failure(.requestTooLarge)) }
        let deadline = ContinuousClock.now + settings.requestTimeout
        if !submit(.propose(id: request.id, data: data, waiter: waiter, deadline: deadline)) {
            waiter.resume(returning: .failure(.tooManyRequests))
        }
    }

    /// etcd's estimate of what a write adds to the backend (its quota's `Cost`): a put's key and
    /// value and 256 bytes of metadata, the larger branch of a txn's puts, 64 bytes per lease.
    /// Nothing else is checked against the quota.
    static func quotaCost(_ request: Kvdpb_InternalRequest) -> Int64 {
        func put(_ put: Etcdserverpb_PutRequest) -> Int64 { 256 + Int64(put.key.count + put.value.count) }
        func puts(_ ops: [Etcdserverpb_RequestOp]) -> Int64 {
            ops.reduce(0) { total, op in
                if case .requestPut(let request) = op.request { total + put(request) } else { total }
            }
        }
        switch request.request {
        case .put(let request): return put(request)
        case .txn(let txn): return max(puts(txn.success), puts(txn.failure))
        case .leaseGrant: return 64
        default: return 0
        }
    }

    /// A write the quota refuses: as etcd, this member raises its NOSPACE alarm through Raft (so
    /// every member then refuses writes at the same index) and the write fails with "database
    /// space exceeded" once the alarm is in.
    private func raiseSpaceAlarm(failing waiter: ProposalWaiter) {
        let me = settings.memberID
        // Once: the writes refused while the alarm is on its way through Raft only wait for it.
        if facts.withLock({ $0.membership.alarms.contains(ActiveAlarm(member: me, alarm: .nospace)) })
            || spaceAlarmInFlight.exchange(true, ordering: .relaxed)
        {
            return waiter.resume(returning: .failure(.noSpace))
        }
        logger.warning("database space exceeded; raising the NOSPACE alarm", metadata: [
            "size": "\(backendBytes.load(ordering: .relaxed))", "quota": "\(settings.quotaBytes ?? 0)",
        ])
        var request = Kvdpb_InternalRequest()
        request.alarm.action = .activate
        request.alarm.memberID = me.value
        request.alarm.alarm = .nospace
        // With root's rights, as the member's own lease revocations: the client's were not asked for.
        if authEnabled.load(ordering: .relaxed) {
            request.authUser = AuthStore.rootUser
            request.authRevision = .max
        }
        propose(request, waiter: .callback { [self] _ in
            spaceAlarmInFlight.store(false, ordering: .relaxed)
            waiter.resume(returning: .failure(.noSpace))
        })
    }

    func waitForReadIndex() async throws(APIError) {
        try await withCheckedContinuation { waitForReadIndex(waiter: .task($0)) }.get()
    }

    func waitForReadIndex(waiter: ReadWaiter) {
        if !submit(.read(waiter, deadline: ContinuousClock.now + settings.requestTimeout)) {
            waiter.resume(returning: .failure(.tooManyRequests))
        }
    }

    func waitForHistoryRemoval(below revision: Revision) async throws(APIError) {
        let result = await withCheckedContinuation { (continuation: ReadWaiter.Continuation) in
            let waiter = ReadWaiter.task(continuation)
            if !submit(.historyRemoved(below: revision, waiter)) {
                waiter.resume(returning: .failure(.tooManyRequests))
            }
        }
        try result.get()
    }

    /// Proposes a membership change and waits until it is applied here.
    func changeMembership(_ change: ConfChange, context: Kvdpb_MemberContext) async throws(APIError) {
        let bytes: [UInt8] = (try? context.serializedBytes()) ?? []  // a message we built always encodes
        let deadline = ContinuousClock.now + settings.requestTimeout
        let result = await withCheckedContinuation { (continuation: ProposalWaiter.Continuation) in
            let waiter = ProposalWaiter.task(continuation)
            if !submit(.confChange(change, context: bytes, waiter: waiter, deadline: deadline)) {
                waiter.resume(returning: .failure(.tooManyRequests))
            }
        }
        _ = try result.get()
    }
}

extension NodeLoop {
    /// etcd `isLearnerReady`: only the leader knows, and a learner may be promoted once its match
    /// index reaches 90% of the leader's.
    func checkLearnerReady(_ learner: NodeID) throws(APIError) {
        let (role, progress) = facts.withLock { ($0.role, $0.progress) }
        guard role == .leader else { throw .notLeader }
        let leaderMatch = progress[NodeID(settings.memberID.value)] ?? .zero
        guard let learnerMatch = progress[learner] else { return }
        if Double(learnerMatch.rawValue) < Double(leaderMatch.rawValue) * 0.9 { throw .learnerNotReady }
    }

    /// etcd `PromoteMember` on the leader: the learner must be in sync, and the started voters
    /// plus the learner must make a quorum of the new cluster.
    func promoteLearner(_ id: MemberID) async throws(APIError) {
        let membership = facts.withLock { $0.membership }
        guard let member = membership.member(id) else { throw .memberNotFound }
        guard member.isLearner else { throw .memberNotLearner }
        try checkLearnerReady(NodeID(id.value))
        if settings.strictReconfigCheck && !membership.isReadyToPromote() { throw .notEnoughStartedMembers }
        var context = Kvdpb_MemberContext()
        context.memberID = id.value
        try await changeMembership(.promote(NodeID(id.value)), context: context)
    }

    /// etcd `MoveLeader`: only on the leader, to a voting member; waits until the transferee leads.
    func moveLeader(to target: NodeID) async throws(APIError) {
        let (role, membership) = facts.withLock { ($0.role, $0.membership) }
        guard role == .leader else { throw .notLeader }
        guard let member = membership.member(MemberID(target.rawValue)), !member.isLearner else { throw .badLeaderTransferee }
        if target.rawValue == settings.memberID.value { return }
        let deadline = ContinuousClock.now + settings.requestTimeout
        submit(.transferLeader(target))
        while facts.withLock({ $0.leader }) != target {
            if ContinuousClock.now >= deadline { throw .leaderTransferTimeout }
            do {
                try await Task.sleep(for: .milliseconds(20))
            } catch {
                throw .stopped
            }
        }
    }
}

extension NodeLoop {
    /// A view of the store whose compacted history is removed: the hashes (Hash, HashKV) cover
    /// what is stored, and members that applied the same log store the same only once their
    /// removals are done.
    private func viewWithoutCompactedHistory() async throws(APIError) -> ReadView {
        while true {
            let view = store.readView()
            guard view.removingHistory else { return view }
            try await waitForHistoryRemoval(below: view.compacted)
        }
    }

    /// etcd's HashKV of this member up to `revision` (0: the current one).
    func hashKV(upTo revision: Revision) async throws(APIError) -> PeerHashKV {
        let view = try await viewWithoutCompactedHistory()
        let (hash, compacted) = try await blocking { () throws(APIError) in try mvcc { try view.hashKV(upTo: revision) } }
        return PeerHashKV(
            hash: hash, compactRevision: max(0, compacted.value), revision: revision.value > 0 ? revision.value : view.current.value,
            memberID: settings.memberID.value)
    }
}

extension NodeLoop {
    /// The leader's view of a lease (keep-alive when `renew`), for local and forwarded requests.
    ///
    /// A renewal first confirms the leadership with a read index (etcd 3.5's ensureLeadership): a
    /// leader cut off from the others keeps believing it leads until check-quorum demotes it, and
    /// a keep-alive it answered meanwhile promised the client a TTL that the new leader, which
    /// never saw it, does not keep.
    func answerLease(_ id: LeaseID, renew: Bool) async throws(APIError) -> LeaseAnswer {
        guard leases.isLeader else { return LeaseAnswer(isLeader: false, found: false, ttlSeconds: 0, grantedTTLSeconds: 0) }
        if renew { try await waitForReadIndex() }
        return answerLeaseNow(id, renew: renew)
    }

    private func answerLeaseNow(_ id: LeaseID, renew: Bool) -> LeaseAnswer {
        guard leases.isLeader else { return LeaseAnswer(isLeader: false, found: false, ttlSeconds: 0, grantedTTLSeconds: 0) }
        guard let record = store.leaseRecord(id) else { return LeaseAnswer(isLeader: true, found: false, ttlSeconds: 0, grantedTTLSeconds: 0) }
        if renew {
            let renewed = leases.renew(id, ttlSeconds: record.ttlSeconds)
            return LeaseAnswer(isLeader: true, found: renewed, ttlSeconds: renewed ? record.ttlSeconds : 0, grantedTTLSeconds: record.ttlSeconds)
        }
        let remaining = leases.remainingSeconds(id) ?? record.ttlSeconds
        return LeaseAnswer(isLeader: true, found: true, ttlSeconds: remaining, grantedTTLSeconds: record.ttlSeconds)
    }
}

/// Routes what the peer transport receives and reports into the node loop's inbox.
struct NodeInbox: PeerInbox, PeerStatusSink {
    let loop: NodeLoop

    func deliver(_ messages: [Raft.Message]) {
        loop.submit(.messages(messages))
    }

    func deliverSnapshot(_ message: Raft.Message, imagePath: String) {
        loop.submit(.snapshotArrived(message, path: imagePath))
    }

    func isMember(_ id: NodeID) -> Bool {
        loop.facts.withLock { $0.membership.member(MemberID(id.rawValue)) != nil }
    }

    func peerMembers() -> [PeerMemberInfo] {
        loop.facts.withLock { facts in
            facts.membership.members.map { PeerMemberInfo(id: NodeID($0.id.value), peerURLs: $0.peerURLs, isLearner: $0.isLearner) }
        }
    }

    func reportUnreachable(_ id: NodeID) {
        loop.submit(.unreachable(id))
    }

    func queryLease(_ id: Int64, renew: Bool) async throws -> LeaseAnswer {
        do {
            return try await loop.answerLease(LeaseID(id), renew: renew)
        } catch {
            throw error.rpcError
        }
    }

    func promoteMember(_ id: UInt64) async throws {
        do {
            try await loop.promoteLearner(MemberID(id))
        } catch {
            throw error.rpcError
        }
    }

    func hashKV(upTo revision: Int64) async throws -> PeerHashKV {
        do {
            return try await loop.hashKV(upTo: Revision(revision))
        } catch {
            throw error.rpcError
        }
    }

    func isRemoved(_ id: NodeID) -> Bool {
        loop.facts.withLock { $0.membership.removed.contains(id.rawValue) }
    }

    func reportRemoved() {
        loop.noteRemovedByPeer()
    }

    func reportSnapshot(to id: NodeID, failed: Bool) {
        loop.submit(.snapshotStatus(id, failed: failed))
    }
}
