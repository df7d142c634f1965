// The public face of the core: inputs in, `Ready` batches out (etcd-io/raft `rawnode.go`,
// tikv/raft-rs `raw_node.rs` for the send-now / send-after-persist split).

/// Everything the caller must do after some inputs, in this order:
/// 1. persist `snapshot`, `entries` and `hardState` (one write batch; fsync if `mustSync`);
/// 2. send `messages` at once (they may go before step 1 finishes), and `messagesAfterPersist` only after it;
/// 3. apply `snapshot` then `committedEntries`, in order (they may include entries of this very batch,
///    so they must be applied only after step 1);
/// 4. serve `readStates` once applied reaches each index;
/// then call `advance(ready)` before asking for the next `Ready`.
package struct Ready: Sendable {
    /// Set when the leader or role changed since the last `Ready`.
    package var softState: SoftState?
    /// Set when term, vote or commit changed.
    package var hardState: HardState?
    /// New entries to append to stable storage (may overwrite an uncommitted suffix).
    package var entries: [Entry]
    /// A snapshot from the leader to install, replacing the whole log.
    package var snapshot: Snapshot?
    /// Messages that may be sent now, before persisting (the leader's appends: thesis §10.2.1).
    package var messages: [Message]
    /// Messages to send only after this `Ready` is persisted (acks and votes: thesis §3.8).
    package var messagesAfterPersist: [Message]
    /// Committed entries to apply to the state machine.
    package var committedEntries: [Entry]
    /// Linearizable read points (thesis §6.4).
    package var readStates: [ReadState]
    /// Whether the write in step 1 must be synced: new entries, a snapshot, or a changed term or vote.
    package var mustSync: Bool
}

/// Counters and per-member replication state for status endpoints and tests.
package struct Status: Sendable {
    /// This node.
    package var id: NodeID
    /// Term, vote and commit.
    package var hardState: HardState
    /// Leader and role.
    package var softState: SoftState
    /// The last index acknowledged as applied through `advance`.
    package var applied: LogIndex
    /// The last index in the log, persisted or not.
    package var lastIndex: LogIndex
    /// The target of a leader transfer in progress, or `.none`.
    package var leadTransferee: NodeID
    /// Per member (leader only): match, next, state.
    package var progress: [NodeID: (match: LogIndex, next: LogIndex, state: ProgressState)]
    /// The membership in effect.
    package var confState: ConfState
}

/// Misuse of `step`: these are programmer errors of the caller's plumbing, reported rather than trapping
/// because they may come off the network.
package enum StepError: Error, Sendable, Hashable {
    /// Local message kinds (`hup`, `beat`, `checkQuorum`) must not arrive from the network.
    case localMessage
    /// A response from a node that is not a member (a stale or removed peer).
    case peerNotFound
}

/// One Raft node: not thread-safe, exactly one owner.
package struct RawNode {
    /// The state machine.
    var raft: Raft
    /// The soft state last reported in a `Ready`.
    private var previousSoftState: SoftState
    /// The hard state last handed out for persisting.
    private var previousHardState: HardState
    /// A `Ready` was handed out and not yet advanced; a second `ready()` would hand out the same entries twice.
    private var awaitingAdvance = false

    /// Builds a node from persisted state. To bootstrap a new cluster, the caller first stores the initial
    /// `ConfState` (e.g. `MemoryLogStorage.confState`); a joining node starts with an empty one and learns
    /// its membership from the leader.
    package init(config: Config, storage: any LogStorage) {
        raft = Raft(config: config, storage: storage)
        previousSoftState = raft.softState
        previousHardState = storage.initialState().hardState
    }

    package var id: NodeID { raft.id }
    package var role: Role { raft.role }
    package var leader: NodeID { raft.lead }
    package var term: Term { raft.term }
    package var commitIndex: LogIndex { raft.raftLog.committed }
    package var appliedIndex: LogIndex { raft.raftLog.applied }
    package var lastIndex: LogIndex { raft.raftLog.lastIndex }
    package var confState: ConfState { raft.tracker.confState }

    /// Advances logical time by one tick.
    package mutating func tick() { raft.tick() }

    /// Starts an election now (pre-vote first if enabled).
    package mutating func campaign() { raft.step(Message(type: .hup, from: raft.id)) }

    /// Feeds a message from a peer.
    package mutating func step(_ message: Message) throws(StepError) {
        switch message.type {
        case .hup, .beat, .checkQuorum:
            throw .localMessage
        case .appendResponse, .voteResponse, .heartbeatResponse, .preVoteResponse, .snapshotStatus, .unreachable:
            // Responses from non-members are stale (the member was removed); vote responses are counted only
            // from voters anyway.
            if raft.tracker.progress[message.from] == nil && message.type != .voteResponse
                && message.type != .preVoteResponse {
                throw .peerNotFound
            }
        case .propose, .append, .vote, .snapshot, .heartbeat, .transferLeader, .timeoutNow, .readIndex,
            .readIndexResponse, .preVote:
            break
        }
        raft.step(message)
    }

    /// Proposes a batch of application entries. Throws when the batch is certainly dropped; a forwarded
    /// batch may still be lost on the way, so the caller also needs a timeout.
    package mutating func propose(_ batch: [[UInt8]]) throws(ProposalDropped) {
        let entries = batch.map { Entry(term: .zero, index: .zero, data: $0) }
        if let dropped = raft.propose(Message(type: .propose, from: raft.id, entries: entries)) {
            throw dropped
        }
    }

    /// Proposes one entry.
    package mutating func propose(_ data: [UInt8]) throws(ProposalDropped) { try propose([data]) }

    /// Proposes a membership change. It takes effect once applied (`applyConfChange`).
    /// `context` is appended to the entry's data after the encoded change (the application's
    /// description of the member, opaque to Raft).
    package mutating func proposeConfChange(_ change: ConfChange, context: [UInt8] = []) throws(ProposalDropped) {
        if raft.role == .leader && raft.pendingConfIndex > raft.raftLog.applied { throw .confChangePending }
        let entry = Entry(term: .zero, index: .zero, type: .confChange, data: encodeConfChange(change) + context)
        if let dropped = raft.propose(Message(type: .propose, from: raft.id, entries: [entry])) {
            throw dropped
        }
    }

    /// Applies a committed conf change entry's change; the caller persists the returned membership
    /// together with the applied index.
    @discardableResult
    package mutating func applyConfChange(_ change: ConfChange) -> ConfState { raft.applyConfChange(change) }

    /// Requests a linearizable read point tagged `context` (unique per request); it comes back in a
    /// `Ready.readStates`. Requests made on a follower are answered by the leader. Throws `.noLeader` when no
    /// leader is known; a request that is lost on the way (leader change) never comes back, so the caller
    /// also needs a timeout.
    package mutating func readIndex(context: [UInt8]) throws(ProposalDropped) {
        if raft.role != .leader && raft.lead == .none { throw .noLeader }
        raft.step(Message(type: .readIndex, from: raft.id, context: context))
    }

    /// Asks the leader to hand over to `transferee` (thesis §3.10). Works on any member (forwarded).
    package mutating func transferLeader(to transferee: NodeID) {
        raft.step(Message(type: .transferLeader, from: transferee))
    }

    /// The transport could not reach `member`: stop pipelining to it.
    package mutating func reportUnreachable(_ member: NodeID) {
        raft.step(Message(type: .unreachable, from: member))
    }

    /// The transport finished (or failed) sending a snapshot to `member`.
    package mutating func reportSnapshot(to member: NodeID, failed: Bool) {
        raft.step(Message(type: .snapshotStatus, from: member, reject: failed))
    }

    package var hasReady: Bool {
        let raft = self.raft
        if raft.softState != previousSoftState { return true }
        let hardState = raft.hardState
        if !hardState.isEmpty && hardState != previousHardState { return true }
        if raft.raftLog.unstable.snapshot != nil || !raft.raftLog.unstable.entries.isEmpty { return true }
        if !raft.messages.isEmpty || !raft.messagesAfterPersist.isEmpty || !raft.readStates.isEmpty { return true }
        if raft.role == .leader && raft.readOnly.unsentContext != nil { return true }
        return raft.raftLog.hasNextCommittedEntries
    }

    /// Collects the pending work. Call `advance` with it before the next `ready()`.
    package mutating func ready() -> Ready {
        precondition(!awaitingAdvance, "ready() called again before advance()")
        awaitingAdvance = true
        raft.flushReadIndexHeartbeat()
        let softState = raft.softState
        let hardState = raft.hardState
        let hardStateChanged = !hardState.isEmpty && hardState != previousHardState
        let entries = raft.raftLog.unstable.entries
        let ready = Ready(
            softState: softState != previousSoftState ? softState : nil,
            hardState: hardStateChanged ? hardState : nil,
            entries: entries,
            snapshot: raft.raftLog.unstable.snapshot,
            messages: raft.messages,
            messagesAfterPersist: raft.messagesAfterPersist,
            committedEntries: raft.raftLog.nextCommittedEntries(),
            readStates: raft.readStates,
            // A snapshot is acknowledged like entries, so it must be durable before the ack goes out.
            mustSync: !entries.isEmpty || raft.raftLog.unstable.snapshot != nil
                || hardState.term != previousHardState.term || hardState.vote != previousHardState.vote
        )
        previousSoftState = softState
        raft.messages = []
        raft.messagesAfterPersist = []
        raft.readStates = []
        return ready
    }

    /// Acknowledges that `ready` was persisted and its committed entries applied.
    package mutating func advance(_ ready: Ready) {
        awaitingAdvance = false
        if let hardState = ready.hardState { previousHardState = hardState }
        if let snapshot = ready.snapshot {
            raft.raftLog.stableSnapshotTo(index: snapshot.metadata.index)
            raft.raftLog.appliedTo(snapshot.metadata.index)
        }
        if let last = ready.entries.last { raft.onPersisted(index: last.index, term: last.term) }
        if let last = ready.committedEntries.last { raft.raftLog.appliedTo(last.index) }
    }

    package var status: Status {
        var progress: [NodeID: (match: LogIndex, next: LogIndex, state: ProgressState)] = [:]
        if raft.role == .leader {
            for (member, entry) in raft.tracker.progress {
                progress[member] = (entry.match, entry.next, entry.state)
            }
        }
        return Status(id: raft.id, hardState: raft.hardState, softState: raft.softState,
                      applied: raft.raftLog.applied, lastIndex: raft.raftLog.lastIndex,
                      leadTransferee: raft.leadTransferee, progress: progress, confState: raft.tracker.confState)
    }
}

extension Raft {
    /// The caller persisted entries through `index`: the leader counts itself toward commit only now.
    mutating func onPersisted(index: LogIndex, term entryTerm: Term) {
        raftLog.stableTo(index: index, term: entryTerm)
        guard role == .leader, raftLog.matchTerm(index: index, term: entryTerm) else { return }
        if tracker.progress[id]?.maybeUpdate(index) == true && maybeCommit() {
            releasePendingReadIndexMessages()
            bcastAppend()
        }
    }
}
