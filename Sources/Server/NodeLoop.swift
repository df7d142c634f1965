internal import EtcdAPI
internal import Foundation
internal import Logging
internal import MVCC
internal import NIOCore
internal import NIOPosix
internal import Raft
internal import Storage
internal import SwiftProtobuf
internal import Prometheus
internal import Synchronization
internal import Transport

/// Who waits for what the node loop completes: a handler suspended on a continuation, or a
/// callback (the client port's direct unary calls, which finish on their connection's event loop
/// without a task). A callback runs on `kvd-raft`, so it only hands the result on.
enum Waiter<Value: Sendable>: Sendable {
    typealias Continuation = CheckedContinuation<Result<Value, APIError>, Never>

    case task(Continuation)
    case callback(@Sendable (Result<Value, APIError>) -> Void)

    func resume(returning result: Result<Value, APIError>) {
        switch self {
        case .task(let continuation): continuation.resume(returning: result)
        case .callback(let callback): callback(result)
        }
    }
}

typealias ProposalWaiter = Waiter<WriteResult?>
typealias ReadWaiter = Waiter<Void>

/// Settings of the node loop, in etcd's terms.
struct NodeSettings: Sendable {
    var memberID: MemberID
    var clusterID: MemberID
    /// `--heartbeat-interval`: one Raft tick.
    var tickInterval: Duration
    /// `--election-timeout` in ticks.
    var electionTicks: Int
    /// `--snapshot-count`: applied entries between snapshots.
    var snapshotCount: UInt64
    /// Entries kept behind a snapshot for slow followers (etcd: 5000).
    var catchUpEntries: UInt64
    /// How long a request may wait before "request timed out" (etcd: 5 s + 2 election timeouts).
    var requestTimeout: Duration
    /// Where snapshot images live.
    var snapshotDirectory: String
    /// `--quota-backend-bytes`: a write that would take the backend to it is refused and this
    /// member raises the NOSPACE alarm; nil: no quota.
    var quotaBytes: Int64? = nil
    /// `--max-request-bytes`: a larger encoded proposal is refused before it reaches Raft.
    var requestBytesMax = KVLimits().requestBytesMax
    /// `--strict-reconfig-check`: refuse membership changes that would leave too few started or
    /// connected voters (etcd's default); `=false` skips those checks, as etcd does.
    var strictReconfigCheck = true
}

/// What services read about the node: published by the loop after every turn that changed it.
struct NodeFacts: Sendable {
    var leader = NodeID.none
    var term = Term.zero
    var role = Role.follower
    var appliedIndex = LogIndex.zero
    var commitIndex = LogIndex.zero
    var lastIndex = LogIndex.zero
    var membership = Membership()
    /// Users and roles as of `appliedIndex`.
    var auth = AuthStore()
    var leaderChanges = 0
    /// Proposals waiting to be applied here.
    var pendingProposals = 0
    var removed = false
    /// Each member's match index, on the leader only.
    var progress: [NodeID: LogIndex] = [:]
    /// When a leader was last known (for "hasleader" streams).
    var lastLeaderSeen = ContinuousClock.now
}

/// The one owner of the Raft node: a dedicated event loop (its one thread, `kvd-raft`) that takes
/// every input from one bounded inbox, steps the node, and handles each `Ready` in order: send
/// now, persist (one synced batch), send after persist, apply, complete waiters, advance. Group
/// commit falls out of the batching: every proposal queued while the previous turn was busy goes
/// into the next `propose`.
final class NodeLoop: @unchecked Sendable {
    // @unchecked: `node`, `logStore`, `membership` and the waiter tables below are touched only
    // by the loop thread; everything else crosses through `inbox` or `facts` (Mutexes).

    enum Input: Sendable {
        case propose(id: UInt64, data: [UInt8], waiter: ProposalWaiter?, deadline: ContinuousClock.Instant)
        case confChange(ConfChange, context: [UInt8], waiter: ProposalWaiter, deadline: ContinuousClock.Instant)
        case read(ReadWaiter, deadline: ContinuousClock.Instant)
        case messages([Raft.Message])
        case snapshotArrived(Raft.Message, path: String)
        case transferLeader(NodeID)
        case unreachable(NodeID)
        case snapshotStatus(NodeID, failed: Bool)
        case snapshotImageWritten(index: LogIndex, confState: ConfState, path: String)
        /// Resume the waiter once this member holds no history below `revision` (a physical compaction).
        case historyRemoved(below: Revision, ReadWaiter)
    }

    struct Inbox {
        var inputs: [Input] = []
        var stopped = false
        /// A turn is queued on the event loop and has not yet taken the inputs.
        var turnQueued = false
    }

    let settings: NodeSettings
    let database: Database
    let store: MVCCStore
    private let logStore: RaftLogStore
    private var node: RawNode
    private var transport: PeerTransport?
    let logger: Logger
    private let inbox = Mutex(Inbox())
    /// The loop's own event loop. The Raft streams to and from the other members live on it too
    /// (`PeerTransport`), so the messages of a `Ready` are written to their sockets and the
    /// members' messages handed to the loop without waking another thread: at one client a
    /// put crossed threads four times more on its way between the members.
    let eventLoop: any EventLoop = MultiThreadedEventLoopGroup(numberOfThreads: 1).next()
    /// The next tick, at a fixed rate (one every `tickInterval`, whatever the turns cost).
    private var tickTask: Scheduled<Void>?
    /// Set by `start`: the turns queued before it leave the inbox to its first turn.
    private var started = false
    let facts: Mutex<NodeFacts>
    private let onApplied: @Sendable ([Event]) -> Void
    private let onSnapshotInstalled: @Sendable () -> Void
    let requestIDs: RequestIDs
    let leases: LeaseKeeper
    let metrics = NodeMetrics()
    /// The simple tokens this member knows: assigned where `Authenticate` entries are applied.
    let tokens: SimpleTokens
    /// Whether authentication is on, as of the last applied change: read by every request, so
    /// an atomic rather than the facts' lock.
    let authEnabled = Atomic<Bool>(false)
    /// See `refreshBackendBytes`.
    let backendBytes = Atomic<Int64>(0)
    /// A NOSPACE alarm of this member is being proposed (`raiseSpaceAlarm`).
    let spaceAlarmInFlight = Atomic<Bool>(false)
    /// Inputs queued at most; beyond it proposals fail with "too many requests".
    static let inboxMax = 65_536
    /// Key index entries one step of removing compacted history scans (about a millisecond of the
    /// loop's time), and the pause after each step (etcd: 1,000 keys, then 10 ms in 3.5).
    static let historyRemovalStep = 1_000
    static let historyRemovalPause = TimeAmount.milliseconds(1)

    // Loop-thread state.
    private var membership: Membership
    private var auth: AuthStore
    /// Each proposal's waiter, its deadline and when the loop received it.
    private var proposalWaiters: [UInt64: (ProposalWaiter, deadline: ContinuousClock.Instant, received: ContinuousClock.Instant)] = [:]
    /// Proposals Raft dropped (no leader yet): retried every turn until their deadline.
    private var unproposed: [(UInt64, [UInt8])] = []
    private var pendingConfChange: (ConfChange, [UInt8], ProposalWaiter, ContinuousClock.Instant)?
    private var confChangeWaiter: (MemberID, ProposalWaiter, ContinuousClock.Instant)?
    /// Reads not yet sent to Raft.
    private var newReads: [(ReadWaiter, ContinuousClock.Instant)] = []
    /// Reads sent under a context, waiting for its read state (and when it was last sent).
    private var readsByContext: [[UInt8]: (waiters: [(ReadWaiter, ContinuousClock.Instant)], sentAt: ContinuousClock.Instant)] = [:]
    /// Reads with a read index, waiting for the applied index to reach it.
    private var readsByIndex: [(LogIndex, ReadWaiter, ContinuousClock.Instant)] = []
    private var readContextCounter: UInt64 = 0
    /// Physical compactions waiting for the removal of the history below their revision.
    private var historyWaiters: [(Revision, ReadWaiter)] = []
    /// When the next step of removing compacted history may run, and the turn scheduled for it.
    private var nextRemovalStep = NIODeadline.uptimeNanoseconds(0)
    private var removalTurn: Scheduled<Void>?
    private var lastSnapshotIndex: LogIndex
    private var snapshotInProgress = false
    private var incomingImages: [LogIndex: String] = [:]
    private var appliedIndex: LogIndex
    private var lastLeader = NodeID.none
    /// When the oldest unanswered heartbeat to each peer was sent (peer round-trip metric).
    private var heartbeatsSent: [NodeID: ContinuousClock.Instant] = [:]
    private var leaderChanges = 0

    init(
        settings: NodeSettings, database: Database, store: MVCCStore, logStore: RaftLogStore, membership: Membership,
        appliedIndex: LogIndex, logger: Logger, tokens: SimpleTokens, onApplied: @escaping @Sendable ([Event]) -> Void,
        onSnapshotInstalled: @escaping @Sendable () -> Void
    ) {
        self.tokens = tokens
        self.onSnapshotInstalled = onSnapshotInstalled
        self.settings = settings
        self.database = database
        self.store = store
        self.logStore = logStore
        self.membership = membership
        do {
            auth = try AuthStore.load(from: database)
        } catch {
            preconditionFailure("the stored users and roles cannot be read: \(error)")
        }
        authEnabled.store(auth.enabled, ordering: .relaxed)
        self.logger = logger
        self.onApplied = onApplied
        self.appliedIndex = appliedIndex
        requestIDs = RequestIDs(memberID: settings.memberID)
        metrics.identify(settings.memberID)
        leases = LeaseKeeper(electionTimeoutMillis: Int64(settings.electionTicks) * Int64(settings.tickInterval.components.seconds * 1000 + settings.tickInterval.components.attoseconds / 1_000_000_000_000_000))
        lastSnapshotIndex = logStore.latestSnapshot.index
        // The latest snapshot's image, if a follower needed one before the restart. Every other
        // image is a leftover: older snapshots can no longer be asked for, and nothing is being
        // received or streamed to a client yet.
        let latestName = Self.imageName(lastSnapshotIndex)
        for name in (try? FileManager.default.contentsOfDirectory(atPath: settings.snapshotDirectory)) ?? [] where name.hasSuffix(".snap") {
            if name == latestName {
                logStore.imageIndex = lastSnapshotIndex
            } else {
                try? FileManager.default.removeItem(atPath: settings.snapshotDirectory + "/" + name)
            }
        }
        var config = Config(id: NodeID(settings.memberID.value))
        config.electionTicks = settings.electionTicks
        config.heartbeatTicks = 1
        config.preVote = true
        config.checkQuorum = true
        config.applied = appliedIndex
        config.seed = settings.memberID.value ^ UInt64(UInt32(truncatingIfNeeded: Int(Date().timeIntervalSince1970 * 1000)))
        node = RawNode(config: config, storage: logStore)
        var facts = NodeFacts()
        facts.membership = membership
        facts.auth = auth
        facts.appliedIndex = appliedIndex
        facts.lastIndex = logStore.lastIndex()
        facts.term = logStore.hardState.term
        facts.commitIndex = logStore.hardState.commit
        self.facts = Mutex(facts)
        refreshBackendBytes()
    }

    func attach(_ transport: PeerTransport) {
        self.transport = transport
    }

    // MARK: inputs (any thread)

    @discardableResult
    func submit(_ input: Input) -> Bool {
        let (accepted, queueTurn) = inbox.withLock { inbox -> (Bool, Bool) in
            guard !inbox.stopped, inbox.inputs.count < Self.inboxMax else { return (false, false) }
            inbox.inputs.append(input)
            defer { inbox.turnQueued = true }
            return (true, !inbox.turnQueued)
        }
        if queueTurn { eventLoop.execute { self.turn(tick: false) } }
        return accepted
    }

    func stop() {
        let queueTurn = inbox.withLock { inbox -> Bool in
            inbox.stopped = true
            defer { inbox.turnQueued = true }
            return !inbox.turnQueued
        }
        if queueTurn { eventLoop.execute { self.turn(tick: false) } }
    }

    func start() {
        eventLoop.execute { [self] in
            #if os(Linux)
            // Name the thread, so that top -H, perf and /proc show which thread is the node loop.
            try? "kvd-raft".write(toFile: "/proc/thread-self/comm", atomically: false, encoding: .utf8)
            #endif
            if logStore.confState.voters == [NodeID(settings.memberID.value)] {
                node.campaign()  // the only voter need not wait an election timeout
            }
            publishFacts()
            started = true
            scheduleTick(after: .now())
            turn(tick: false)
        }
    }

    // MARK: the loop (loop thread only)

    private func scheduleTick(after previous: NIODeadline) {
        let interval = TimeAmount.nanoseconds(Int64(settings.tickInterval / .nanoseconds(1)))
        // A loop that fell behind by more than a tick ticks once now, not once per missed tick.
        let next = max(previous + interval, .now())
        tickTask = eventLoop.scheduleTask(deadline: next) { [self] in
            scheduleTick(after: next)
            turn(tick: true)
        }
    }

    /// One turn: everything that arrived since the last, a tick when one is due, and every
    /// `Ready` that results.
    private func turn(tick: Bool) {
        guard started else { return }
        let (inputs, stopped) = inbox.withLock { inbox in
            inbox.turnQueued = false
            defer { inbox.inputs.removeAll(keepingCapacity: true) }
            return (inbox.inputs, inbox.stopped)
        }
        if stopped {
            guard let tickTask else { return }  // already stopped
            tickTask.cancel()
            self.tickTask = nil
            removalTurn?.cancel()
            failEverything(.stopped, inputs: inputs)
            return
        }
        let now = ContinuousClock.now
        if tick {
            node.tick()
            expireWaiters(now)
            proposeLeaseRevocations()
            refreshBackendBytes()
        }
        for input in inputs { handle(input, now: now) }
        proposeQueued()
        issueReads(now)
        while node.hasReady {
            let started = ContinuousClock.now
            handleReady(node.ready())
            metrics.readyDuration.record(started.duration(to: .now))
        }
        maybeSnapshot()
        if logStore.imageWanted { writeSnapshotImage() }
        if store.removingHistory { removeHistoryStep() }
        publishFacts()
    }

    /// A step of removing compacted history in a turn at most every `historyRemovalPause`, and a
    /// turn scheduled for the next one while some is left. Scheduled, not queued: the event loop
    /// runs queued tasks until none is left before it reads its sockets again, so a removal that
    /// queued its next turn at once kept every Raft stream and client waiting until it was done
    /// (a put waited 0.98 s behind a compaction of 1M keys); a pause lets the loop read between
    /// steps, and under load the turns that serve requests take the steps.
    private func removeHistoryStep() {
        if NIODeadline.now() >= nextRemovalStep {
            do {
                try store.removeCompactedHistory(limit: Self.historyRemovalStep)
            } catch {
                preconditionFailure("removing compacted history failed: \(error)")  // fail-stop, as every state store write
            }
            resumeHistoryWaiters()
            nextRemovalStep = .now() + Self.historyRemovalPause
        }
        guard store.removingHistory, removalTurn == nil else { return }
        removalTurn = eventLoop.scheduleTask(deadline: nextRemovalStep) { [self] in
            removalTurn = nil
            turn(tick: false)
        }
    }

    private func resumeHistoryWaiters() {
        let removed = store.historyRemovedRevision
        historyWaiters.removeAll { revision, waiter in
            guard revision <= removed else { return false }
            waiter.resume(returning: .success(()))
            return true
        }
    }

    private func handle(_ input: Input, now: ContinuousClock.Instant) {
        switch input {
        case .propose(let id, let data, let waiter, let deadline):
            if let waiter { proposalWaiters[id] = (waiter, deadline, now) }
            unproposed.append((id, data))
        case .confChange(let change, let context, let waiter, let deadline):
            if pendingConfChange != nil || confChangeWaiter != nil {
                waiter.resume(returning: .failure(.timeout))
            } else {
                pendingConfChange = (change, context, waiter, deadline)
            }
        case .read(let waiter, let deadline):
            newReads.append((waiter, deadline))
        case .messages(let messages):
            for message in messages {
                if message.type == .heartbeatResponse, let sent = heartbeatsSent.removeValue(forKey: message.from) {
                    metrics.peerRoundTrip(to: message.from).record(sent.duration(to: now))
                }
                do {
                    try node.step(message)
                } catch {
                    logger.debug("dropped peer message", metadata: ["type": "\(message.type)", "error": "\(error)"])
                }
            }
        case .snapshotArrived(let message, let path):
            if let index = message.snapshot?.metadata.index {
                if let old = incomingImages[index] { try? FileManager.default.removeItem(atPath: old) }  // superseded copy
                incomingImages[index] = path
            }
            do {
                try node.step(message)
            } catch {
                logger.warning("dropped snapshot message", metadata: ["error": "\(error)"])
            }
        case .transferLeader(let transferee):
            node.transferLeader(to: transferee)
        case .unreachable(let id):
            node.reportUnreachable(id)
        case .snapshotStatus(let id, let failed):
            node.reportSnapshot(to: id, failed: failed)
        case .historyRemoved(let revision, let waiter):
            historyWaiters.append((revision, waiter))
            resumeHistoryWaiters()
        case .snapshotImageWritten(let index, let confState, let path):
            snapshotImageWritten(index: index, confState: confState, path: path)
        }
    }

    private func proposeQueued() {
        if !unproposed.isEmpty {
            do {
                try node.propose(unproposed.map(\.1))
                unproposed.removeAll(keepingCapacity: true)
            } catch {
                // Kept for the next turn: a leader may be elected before the deadline (etcd
                // blocks proposals the same way until a leader is known).
            }
        }
        if let (change, context, waiter, deadline) = pendingConfChange {
            do {
                try node.proposeConfChange(change, context: context)
                pendingConfChange = nil
                confChangeWaiter = (MemberID(change.nodeID.rawValue), waiter, deadline)
            } catch .confChangePending {
                pendingConfChange = nil
                waiter.resume(returning: .failure(.timeout))
            } catch {
                // No leader yet: retried next turn until the deadline.
            }
        }
    }

    /// All reads queued since the last turn share one read index request (batched ReadIndex).
    private func issueReads(_ now: ContinuousClock.Instant) {
        // One ReadIndex round in flight, as etcd's read loop keeps: reads that arrive meanwhile
        // share the next round instead of each turn starting its own heartbeat broadcast.
        if !newReads.isEmpty && readsByContext.isEmpty {
            readContextCounter += 1
            let context = RaftLogStore.key(LogIndex(readContextCounter))
            readsByContext[context] = (newReads, now)
            newReads.removeAll()
            ask(context, now)
        }
        // A read index request can be lost (a dropped message, a leader change): ask again.
        let retryAfter = settings.tickInterval * settings.electionTicks / 2
        for (context, pending) in readsByContext where pending.sentAt + retryAfter <= now {
            ask(context, now)
        }
    }

    private func ask(_ context: [UInt8], _ now: ContinuousClock.Instant) {
        do {
            try node.readIndex(context: context)
            readsByContext[context]?.sentAt = now
        } catch {
            // No leader yet: ask again on the next tick.
            readsByContext[context]?.sentAt = now - settings.tickInterval * settings.electionTicks / 2 + settings.tickInterval
        }
    }

    private func handleReady(_ ready: Ready) {
        if let soft = ready.softState { noteLeader(soft) }
        for state in ready.readStates {
            if let pending = readsByContext.removeValue(forKey: state.requestContext) {
                readsByIndex.append(contentsOf: pending.waiters.map { (state.index, $0.0, $0.1) })
            }
        }
        if ready.entries.isEmpty && ready.snapshot == nil {
            // Nothing to append: a Ready that commits what a quorum has acknowledged. Its entries
            // are applied (and their callers answered) before its messages go out, since none of
            // them waits on those messages: on the leader they only tell the followers the new
            // commit index, and sending them first put two TLS writes in front of every answer
            // at one client.
            persist(ready)
            apply(ready.committedEntries)
            send(ready.messages)
            send(ready.messagesAfterPersist)
        } else {
            // New entries go to the followers before this member's own synced append, so that
            // the appends on every member overlap.
            send(ready.messages)
            persist(ready)
            send(ready.messagesAfterPersist)
            apply(ready.committedEntries)
        }
        node.advance(ready)
        completeReads()
    }

    /// The leader revokes expired leases through Raft, so every member deletes the same keys.
    private func proposeLeaseRevocations() {
        for id in leases.takeExpired() {
            var revoke = Etcdserverpb_LeaseRevokeRequest()
            revoke.id = id.value
            var request = Kvdpb_InternalRequest()
            request.id = requestIDs.make()
            request.leaseRevoke = revoke
            // The member itself, with root's rights (etcd revokes expired leases with a root
            // token): an expired lease's keys go whoever may write them, whatever the auth revision.
            if auth.enabled {
                request.authUser = AuthStore.rootUser
                request.authRevision = .max
            }
            guard let data = try? request.serializedBytes() as [UInt8] else { continue }  // a built message always encodes
            unproposed.append((request.id, data))
            logger.info("lease expired; revoking", metadata: ["lease": "\(String(id.value, radix: 16))"])
        }
    }

    /// The size of this member's backend (the state families: what etcd's bbolt file holds, not
    /// the Raft log), as `propose` checks the space quota against it. Refreshed every tick and
    /// after a defragmentation, so a check costs an atomic load; etcd's backend size, which its
    /// quota reads, likewise moves with each batch commit (every 100 ms).
    func refreshBackendBytes() {
        guard settings.quotaBytes != nil else { return }
        backendBytes.store(database.approximateSizeBytes(of: Self.stateFamilies), ordering: .relaxed)
    }

    private func noteLeader(_ soft: SoftState) {
        if soft.leader != lastLeader {
            if soft.leader != .none { leaderChanges += 1 }
            heartbeatsSent.removeAll()
            logger.info("leader changed", metadata: ["leader": "\(MemberID(soft.leader.rawValue))", "role": "\(soft.role)"])
            // Reads waiting on the old leader's confirmation can no longer be trusted (etcd
            // answers them with "leader changed").
            for (_, pending) in readsByContext {
                for (waiter, _) in pending.waiters { waiter.resume(returning: .failure(.leaderChanged)) }
            }
            readsByContext.removeAll()
            lastLeader = soft.leader
        }
        // Only the leader tracks lease deadlines; a new leader restarts every lease's clock.
        let leading = soft.role == .leader
        if leading && !leases.isLeader {
            leases.promote(store.leaseRecords())
        } else if !leading && leases.isLeader {
            leases.demote()
        }
    }

    private func send(_ messages: [Raft.Message]) {
        guard let transport, !messages.isEmpty else { return }
        var regular: [Raft.Message] = []
        regular.reserveCapacity(messages.count)
        for message in messages {
            if message.type == .snapshot, let index = message.snapshot?.metadata.index {
                if logStore.imageIndex == index {
                    transport.sendSnapshot(message, imagePath: imagePath(index))
                } else {
                    logger.error("no image for snapshot", metadata: ["index": "\(index)"])
                    node.reportSnapshot(to: message.to, failed: true)
                }
            } else {
                // The leader's heartbeat round trips are etcd's peer RTT: time only the first
                // unanswered heartbeat to each peer, so a slow peer shows as slow.
                if message.type == .heartbeat, heartbeatsSent[message.to] == nil { heartbeatsSent[message.to] = .now }
                regular.append(message)
            }
        }
        transport.send(regular)
    }

    /// Entries, hard state and an installed snapshot become durable in one write, synced when
    /// Raft requires it (new entries or a vote: a follower's ack counts toward commit).
    private func persist(_ ready: Ready) {
        let batch = WriteBatch()
        var installed = false
        if let snapshot = ready.snapshot {
            installSnapshot(snapshot, into: batch)
            installed = true
        }
        logStore.append(ready.entries, into: batch)
        if let hardState = ready.hardState { logStore.setHardState(hardState, into: batch) }
        guard batch.count > 0 else { return }
        do {
            let sync = ready.mustSync || installed
            let started = ContinuousClock.now
            try database.write(batch, sync: sync)
            if sync { metrics.walFsyncDuration.record(started.duration(to: .now)) }
        } catch {
            // Fail-stop: a lost raft log write breaks safety.
            preconditionFailure("raft log write failed: \(error)")
        }
        if installed { afterSnapshotInstall(ready.snapshot!) }
    }

    // MARK: apply

    private func apply(_ entries: [Entry]) {
        var requests: [WriteRequest] = []
        var markers: [[UInt8]] = []
        var ids: [UInt64] = []
        func flush() {
            guard !requests.isEmpty else { return }
            let started = ContinuousClock.now
            let (results, events) = store.apply(
                requests, markers: markers, sync: false, capped: membership.isCapped, corrupt: membership.isCorrupt)
            metrics.backendCommitDuration.record(started.duration(to: .now))
            for (request, result) in zip(requests, results) {
                switch (request, result) {
                case (.leaseGrant(let id, let ttl), .success): leases.granted(id, ttlSeconds: ttl)
                case (.leaseRevoke(let id), .success), (.leaseRevoke(let id), .failure(.leaseNotFound)): leases.revoked(id)
                default: break
                }
            }
            onApplied(events)
            let applied = ContinuousClock.now
            for (id, result) in zip(ids, results) {
                guard let (waiter, _, received) = proposalWaiters.removeValue(forKey: id) else { continue }
                metrics.proposalDuration.record(received.duration(to: applied))
                waiter.resume(returning: result.map { Optional($0) }.mapError(APIError.init))
            }
            requests.removeAll()
            markers.removeAll()
            ids.removeAll()
        }
        for entry in entries {
            let marker = RaftLogStore.key(entry.index)
            switch entry.type {
            case .normal:
                guard !entry.data.isEmpty else { break }
                guard let request = try? Kvdpb_InternalRequest(serializedBytes: entry.data, options: RequestDecoding.options) else {
                    preconditionFailure("committed entry \(entry.index) is not a kvd request")
                }
                if let write = WriteRequest(request) {
                    if auth.enabled {
                        // Checked against the auth store and leases as this entry finds them.
                        flush()
                        if let refusal = authorize(request) {
                            writeApplied(marker: marker) { _ in }
                            proposalWaiters.removeValue(forKey: request.id)?.0.resume(returning: .failure(.auth(refusal)))
                            appliedIndex = entry.index
                            continue
                        }
                    }
                    requests.append(write)
                    markers.append(marker)
                    ids.append(request.id)
                } else {
                    flush()
                    switch request.request {
                    case .alarm(let alarm): applyAlarm(alarm, requestID: request.id, marker: marker)
                    case .memberAttributes(let attributes): applyMemberAttributes(attributes, requestID: request.id, marker: marker)
                    case .authenticate(let authenticate):
                        applyAuthenticate(authenticate, requestID: request.id, index: entry.index, marker: marker)
                    case let change?: applyAuthChange(change, caller: Self.caller(of: request), requestID: request.id, marker: marker)
                    case nil: break
                    }
                }
            case .confChange:
                flush()
                applyConfChange(entry, marker: marker)
            }
            appliedIndex = entry.index
        }
        flush()
    }

    private func applyMemberAttributes(_ attributes: Kvdpb_MemberAttributes, requestID: UInt64, marker: [UInt8]) {
        let id = MemberID(attributes.memberID)
        if var record = membership.member(id) {
            if attributes.updatePeerUrls {
                record.peerURLs = attributes.peerUrls
                transport?.setPeer(NodeID(id.value), addresses: peerAddresses(attributes.peerUrls))
            } else {
                record.name = attributes.name
                record.clientURLs = attributes.clientUrls
            }
            membership.upsert(record)
        }
        writeMembership(marker: marker)
        proposalWaiters.removeValue(forKey: requestID)?.0.resume(returning: .success(nil))
    }

    /// etcd's alarm store: ACTIVATE adds (member, alarm) once, DEACTIVATE removes it.
    private func applyAlarm(_ alarm: Etcdserverpb_AlarmRequest, requestID: UInt64, marker: [UInt8]) {
        let entry = ActiveAlarm(member: MemberID(alarm.memberID), alarm: alarm.alarm)
        switch alarm.action {
        case .activate:
            if !membership.alarms.contains(entry) {
                membership.alarms.append(entry)
                logger.warning("alarm raised", metadata: ["alarm": "\(entry.alarm.goName)", "from": "\(entry.member)"])
            }
        case .deactivate:
            if let index = membership.alarms.firstIndex(of: entry) {
                membership.alarms.remove(at: index)
                logger.warning("alarm disarmed", metadata: ["alarm": "\(entry.alarm.goName)", "from": "\(entry.member)"])
            }
        case .get, .UNRECOGNIZED:
            break
        }
        writeMembership(marker: marker)
        proposalWaiters.removeValue(forKey: requestID)?.0.resume(returning: .success(nil))
    }

    /// etcd's authApplierV3: only the root role changes users, roles and whether auth is on.
    private func applyAuthChange(
        _ change: Kvdpb_InternalRequest.OneOf_Request, caller: AuthInfo?, requestID: UInt64, marker: [UInt8]
    ) {
        var changed = auth
        let result: Result<WriteResult?, APIError>
        do {
            try auth.checkAdmin(caller)
            try changed.apply(change)
            auth = changed
            result = .success(nil)
        } catch {
            result = .failure(.auth(error))
        }
        if case .success = result {
            switch change {
            case .authUserDelete(let delete): tokens.invalidate(user: delete.name)
            case .authDisable: tokens.removeAll()
            case .authEnable: logger.info("enabled authentication")
            default: break
            }
        }
        writeApplied(marker: marker) { auth.save(into: $0, database: database) }
        publishAuth()
        proposalWaiters.removeValue(forKey: requestID)?.0.resume(returning: result)
    }

    /// Every member records the token; the proposing member's waiter then finds it by its prefix.
    private func applyAuthenticate(_ request: Kvdpb_AuthenticateRequest, requestID: UInt64, index: LogIndex, marker: [UInt8]) {
        let result: Result<WriteResult?, APIError>
        do {
            try auth.checkAuthenticate(user: request.name)
            // Empty with JWT tokens: the proposing member signs one.
            if !request.simpleToken.isEmpty { tokens.assign(prefix: request.simpleToken, index: index.rawValue, user: request.name) }
            result = .success(nil)
        } catch {
            result = .failure(.auth(error))
        }
        writeApplied(marker: marker) { _ in }
        proposalWaiters.removeValue(forKey: requestID)?.0.resume(returning: result)
    }

    private static func caller(of request: Kvdpb_InternalRequest) -> AuthInfo? {
        request.authRevision == 0 && request.authUser.isEmpty ? nil : AuthInfo(user: request.authUser, revision: request.authRevision)
    }

    /// etcd's authApplierV3 checks of a write: the keys it writes, the keys it returns, and the
    /// keys attached to a lease it attaches or revokes.
    private func authorize(_ request: Kvdpb_InternalRequest) -> AuthError? {
        let caller = Self.caller(of: request)
        func leaseKeysWritable(_ id: Int64) throws(AuthError) {
            for key in store.leaseRecord(LeaseID(id))?.keys ?? [] {
                try auth.check(caller, key: Data(key), rangeEnd: Data(), .write)
            }
        }
        do {
            switch request.request {
            case .put(let put):
                try auth.check(caller, key: put.key, rangeEnd: Data(), .write)
                try leaseKeysWritable(put.lease)
                if put.prevKv { try auth.check(caller, key: put.key, rangeEnd: Data(), .read) }
            case .deleteRange(let delete):
                try auth.check(caller, key: delete.key, rangeEnd: delete.rangeEnd, .write)
                if delete.prevKv { try auth.check(caller, key: delete.key, rangeEnd: delete.rangeEnd, .read) }
            case .txn(let txn):
                try auth.check(caller, txn: txn)
            case .leaseRevoke(let revoke):
                try leaseKeysWritable(revoke.id)
            default:
                break
            }
            return nil
        } catch {
            return error
        }
    }

    private func applyConfChange(_ entry: Entry, marker: [UInt8]) {
        let changeBytes = Array(entry.data.prefix(9))
        guard let change = try? decodeConfChange(changeBytes) else {
            preconditionFailure("committed conf change \(entry.index) is corrupt")
        }
        let context = try? Kvdpb_MemberContext(serializedBytes: Array(entry.data.dropFirst(9)))
        let before = node.status
        let confState = node.applyConfChange(change)
        let id = MemberID(change.nodeID.rawValue)
        switch change {
        case .addVoter, .addLearner:
            var record = membership.member(id)
                ?? MemberRecord(id: id, name: "", peerURLs: [], clientURLs: [], isLearner: false)
            if let context, context.memberID == id.value {
                record.peerURLs = context.peerUrls
                if !context.name.isEmpty { record.name = context.name }
            }
            if case .addLearner = change { record.isLearner = true } else { record.isLearner = false }
            membership.upsert(record)
            transport?.setPeer(change.nodeID, addresses: peerAddresses(record.peerURLs))
        case .promote:
            if var record = membership.member(id) {
                record.isLearner = false
                membership.upsert(record)
            }
        case .remove:
            membership.remove(id)
            // Once removed, a member gets no more appends, so it may never learn that its removal
            // committed (a learner never campaigns, so no peer ever refuses it). The leader tells
            // it with one last heartbeat carrying the commit, when it holds the entry.
            if before.softState.role == .leader, change.nodeID != before.id,
               let match = before.progress[change.nodeID]?.match, match >= entry.index {
                transport?.send([Raft.Message(
                    type: .heartbeat, to: change.nodeID, from: before.id, term: before.hardState.term, commit: entry.index)])
            }
            transport?.removePeer(change.nodeID)
            if id == settings.memberID {
                logger.critical("this member was removed from the cluster")
                facts.withLock { $0.removed = true }
            }
        }
        writeApplied(marker: marker) { batch in
            logStore.setConfState(confState, into: batch)
            membership.save(into: batch, database: database)
        }
        publishMembership()
        if let (waitingFor, waiter, _) = confChangeWaiter, waitingFor == id {
            confChangeWaiter = nil
            waiter.resume(returning: .success(nil))
        }
    }

    private func writeMembership(marker: [UInt8]) {
        writeApplied(marker: marker) { membership.save(into: $0, database: database) }
        publishMembership()
    }

    /// Writes state applied outside MVCC in one batch with the entry's applied marker, so that a
    /// restart sees exactly what was applied.
    private func writeApplied(marker: [UInt8], _ fill: (WriteBatch) -> Void) {
        let batch = WriteBatch()
        fill(batch)
        batch.put(database.columnFamily("meta"), MVCCStore.appliedMarkerKey, marker)
        do {
            try database.write(batch, sync: false)
        } catch {
            preconditionFailure("applied state write failed: \(error)")
        }
    }

    /// Another member refused our messages: we were removed, but the leader stopped replicating to
    /// us before we applied our removal. Stop as if we had applied it (etcd stops on 410 Gone).
    func noteRemovedByPeer() {
        let first = facts.withLock { facts in
            defer { facts.removed = true }
            return !facts.removed
        }
        if first { logger.critical("this member was removed from the cluster (told by a peer)") }
    }

    /// The services answer a membership change (or an alarm) with the member list they read
    /// from the facts once their waiter resumes: publish it before resuming, not at the end of
    /// the turn (a MemberAdd response once lacked the member it had just added). Users and roles
    /// likewise.
    private func publishMembership() {
        let membership = self.membership
        facts.withLock { $0.membership = membership }
    }

    private func publishAuth() {
        let auth = self.auth
        facts.withLock { $0.auth = auth }
        authEnabled.store(auth.enabled, ordering: .relaxed)
    }

    func peerAddresses(_ urls: [String]) -> [PeerAddress] {
        urls.compactMap { try? MemberURL(parsing: $0) }.map(\.peerAddress)
    }

    private func completeReads() {
        guard !readsByIndex.isEmpty else { return }
        readsByIndex.removeAll { index, waiter, _ in
            guard index <= appliedIndex else { return false }
            waiter.resume(returning: .success(()))
            return true
        }
    }

    private func expireWaiters(_ now: ContinuousClock.Instant) {
        let expired = proposalWaiters.filter { $0.value.deadline <= now }
        for (id, (waiter, _, _)) in expired {
            proposalWaiters.removeValue(forKey: id)
            waiter.resume(returning: .failure(.timeout))
        }
        if !expired.isEmpty { metrics.proposalsFailed.increment(by: Int64(expired.count)) }
        unproposed.removeAll { id, _ in expired[id] != nil }
        if let (_, _, waiter, deadline) = pendingConfChange, deadline <= now {
            pendingConfChange = nil
            waiter.resume(returning: .failure(.timeout))
        }
        if let (_, waiter, deadline) = confChangeWaiter, deadline <= now {
            confChangeWaiter = nil
            waiter.resume(returning: .failure(.timeout))
        }
        for (context, pending) in readsByContext {
            let (late, onTime) = (pending.waiters.filter { $0.1 <= now }, pending.waiters.filter { $0.1 > now })
            for (waiter, _) in late { waiter.resume(returning: .failure(.timeout)) }
            if onTime.isEmpty { readsByContext.removeValue(forKey: context) } else { readsByContext[context]!.waiters = onTime }
        }
        readsByIndex.removeAll { _, waiter, deadline in
            guard deadline <= now else { return false }
            waiter.resume(returning: .failure(.timeout))
            return true
        }
    }

    private func failEverything(_ error: APIError, inputs: [Input]) {
        for (waiter, _, _) in proposalWaiters.values { waiter.resume(returning: .failure(error)) }
        proposalWaiters.removeAll()
        for input in inputs {
            switch input {
            case .propose(_, _, let waiter, _): waiter?.resume(returning: .failure(error))
            case .confChange(_, _, let waiter, _): waiter.resume(returning: .failure(error))
            case .read(let waiter, _), .historyRemoved(_, let waiter): waiter.resume(returning: .failure(error))
            case .messages, .snapshotArrived, .transferLeader, .unreachable, .snapshotStatus, .snapshotImageWritten: break
            }
        }
        pendingConfChange?.2.resume(returning: .failure(error))
        confChangeWaiter?.1.resume(returning: .failure(error))
        for (waiter, _) in newReads { waiter.resume(returning: .failure(error)) }
        for (_, pending) in readsByContext { for (waiter, _) in pending.waiters { waiter.resume(returning: .failure(error)) } }
        for (_, waiter, _) in readsByIndex { waiter.resume(returning: .failure(error)) }
        for (_, waiter) in historyWaiters { waiter.resume(returning: .failure(error)) }
        historyWaiters.removeAll()
    }

    private func publishFacts() {
        let status = node.status
        let membership = self.membership
        let applied = appliedIndex
        let changes = leaderChanges
        let pending = proposalWaiters.count
        let last = logStore.lastIndex()
        facts.withLock { facts in
            facts.leader = status.softState.leader
            facts.role = status.softState.role
            facts.term = status.hardState.term
            facts.commitIndex = status.hardState.commit
            facts.appliedIndex = applied
            facts.lastIndex = last
            facts.membership = membership
            facts.leaderChanges = changes
            facts.pendingProposals = pending
            facts.progress = status.progress.mapValues(\.match)
            if status.softState.leader != .none { facts.lastLeaderSeen = .now }
        }
    }

    // MARK: snapshots

    /// Every `snapshotCount` applied entries: record a snapshot at the applied index and compact
    /// the log. Only the metadata is written: the applied state already is in the database, and
    /// an image of it (a full copy) is made only when a follower needs one, since writing one
    /// every `snapshotCount` entries rewrote the whole state each time (364 MB every 100,000 puts
    /// at 1M keys).
    private func maybeSnapshot() {
        // Not while an image is being written: it becomes the latest snapshot when done, and a
        // newer record would make it useless before any follower got it.
        guard !snapshotInProgress, appliedIndex.rawValue >= lastSnapshotIndex.rawValue + settings.snapshotCount else { return }
        recordSnapshot(index: appliedIndex, confState: logStore.confState)
    }

    /// A follower needs the latest snapshot and it has no image: write one of the state as
    /// applied now, off the loop thread (it can take long), then record it as the latest snapshot
    /// (`snapshotImageWritten`); Raft's next attempt to send gets it.
    private func writeSnapshotImage() {
        logStore.imageWanted = false
        guard !snapshotInProgress else { return }
        snapshotInProgress = true
        let index = appliedIndex
        let confState = logStore.confState
        // Taken on the loop thread right after applying: the view is exactly the state at `index`.
        let view = database.makeConsistentView()
        let path = imagePath(index)
        let database = self.database
        let logger = self.logger
        let thread = Thread { [self] in
            do {
                try SnapshotImage.write(database, families: Self.stateFamilies, view: view, to: path)
                submit(.snapshotImageWritten(index: index, confState: confState, path: path))
            } catch {
                logger.error("snapshot image failed", metadata: ["index": "\(index)", "error": "\(error)"])
                submit(.snapshotImageWritten(index: .zero, confState: confState, path: ""))
            }
        }
        thread.name = "kvd-snapshot"
        thread.start()
    }

    static func imageName(_ index: LogIndex) -> String { String(format: "%016llx", index.rawValue) + ".snap" }

    static let stateFamilies = MVCCStore.columnFamilies + [Membership.family]

    private func snapshotImageWritten(index: LogIndex, confState: ConfState, path: String) {
        snapshotInProgress = false
        guard !path.isEmpty else { return }
        guard index >= lastSnapshotIndex else {
            try? FileManager.default.removeItem(atPath: path)  // a newer snapshot was installed meanwhile
            return
        }
        if index > lastSnapshotIndex { recordSnapshot(index: index, confState: confState) }
        keepImage(path, of: index)
    }

    /// Records a snapshot at `index` (applied) and compacts the log behind it, keeping
    /// `catchUpEntries` for slow followers.
    private func recordSnapshot(index: LogIndex, confState: ConfState) {
        guard index > lastSnapshotIndex else { return }
        let compactTo = LogIndex(index.rawValue > settings.catchUpEntries ? index.rawValue - settings.catchUpEntries : 0)
        let batch = WriteBatch()
        do {
            try logStore.recordSnapshot(at: index, confState: confState, compactTo: compactTo, into: batch)
            try database.write(batch, sync: true)
        } catch {
            preconditionFailure("recording snapshot \(index) failed: \(error)")
        }
        lastSnapshotIndex = index
        dropImage(below: index)  // Raft will only ask for this snapshot or a later one
        logger.info("recorded snapshot", metadata: ["index": "\(index)", "compacted-to": "\(compactTo)"])
    }

    /// Where the image of snapshot `index` is kept: the name a restart looks for.
    private func imagePath(_ index: LogIndex) -> String { settings.snapshotDirectory + "/" + Self.imageName(index) }

    /// `path` holds the image of snapshot `index`, the latest: Raft may now send it.
    private func keepImage(_ path: String, of index: LogIndex) {
        dropImage(below: index)
        let kept = imagePath(index)
        guard path == kept || (try? FileManager.default.moveItem(atPath: path, toPath: kept)) != nil else {
            try? FileManager.default.removeItem(atPath: path)  // unusable: a new one is written when needed
            return
        }
        logStore.imageIndex = index
    }

    /// Removes the one image kept, if it is older than `index`.
    private func dropImage(below index: LogIndex) {
        guard let old = logStore.imageIndex, old < index else { return }
        try? FileManager.default.removeItem(atPath: imagePath(old))  // a leftover file only wastes space
        logStore.imageIndex = nil
    }

    private func installSnapshot(_ snapshot: Snapshot, into batch: WriteBatch) {
        let index = snapshot.metadata.index
        guard let path = incomingImages[index] else {
            preconditionFailure("raft accepted snapshot \(index) but its image never arrived")
        }
        do {
            try SnapshotImage.install(from: path, into: batch, database: database, families: Self.stateFamilies)
        } catch {
            preconditionFailure("snapshot \(index) cannot be installed: \(error)")
        }
        batch.put(database.columnFamily("meta"), MVCCStore.appliedMarkerKey, RaftLogStore.key(index))
        logStore.installSnapshot(snapshot.metadata, into: batch)
    }

    private func afterSnapshotInstall(_ snapshot: Snapshot) {
        let index = snapshot.metadata.index
        do {
            try store.reload()
            membership = try Membership.load(from: database) ?? membership
            auth = try AuthStore.load(from: database)
            publishAuth()
        } catch {
            preconditionFailure("reloading installed snapshot \(index) failed: \(error)")
        }
        for member in membership.members where member.id != settings.memberID {
            transport?.setPeer(NodeID(member.id.value), addresses: peerAddresses(member.peerURLs))
        }
        appliedIndex = index
        lastSnapshotIndex = index
        if let path = incomingImages.removeValue(forKey: index) {
            keepImage(path, of: index)  // it can serve our own followers later
        }
        onSnapshotInstalled()
        logger.info("installed snapshot", metadata: ["index": "\(index)"])
    }
}
