// The leader's view of one follower, and the flow-control window that bounds pipelined appends.
// State transitions live here only; the leader code asks, it does not poke fields.
//
//   probe ──(append acked)──► replicate ──(append rejected / unreachable)──► probe
//     │                                                                        ▲
//     └──(needed entries compacted)──► snapshot ──(snapshot applied / failed)──┘

/// Flow-control state of one follower (etcd-io/raft `tracker/state.go`).
package enum ProgressState: UInt8, Sendable, Hashable {
    /// One append at a time until the follower's match index is found.
    case probe
    /// Appends are pipelined within the inflight window.
    case replicate
    /// A snapshot is on its way; appends pause.
    case snapshot
}

/// A bounded ring of in-flight appends, by message count and by bytes (thesis §10.2.1 pipelining).
struct Inflights {
    /// Last index and byte size of each in-flight append, oldest first.
    private var ring: [(index: LogIndex, bytes: Int)]
    /// Where the oldest element sits in `ring`.
    private var start = 0
    /// How many elements are in flight.
    /// Invariant: count <= messagesMax.
    private(set) var count = 0
    /// Sum of the bytes in flight.
    private(set) var bytes = 0
    /// Limit on in-flight append messages.
    let messagesMax: Int
    /// Limit on in-flight bytes; the window may exceed it by one message.
    let bytesMax: Int

    init(messagesMax: Int, bytesMax: Int) {
        precondition(messagesMax > 0, "inflight window must allow one message")
        self.messagesMax = messagesMax
        self.bytesMax = bytesMax
        ring = []
        ring.reserveCapacity(min(messagesMax, 64))
    }

    var isFull: Bool { count >= messagesMax || bytes >= bytesMax }

    mutating func add(index: LogIndex, bytes added: Int) {
        precondition(count < messagesMax, "inflight window overflow")
        let position = (start + count) % messagesMax
        if position < ring.count {
            ring[position] = (index, added)
        } else {
            precondition(position == ring.count, "inflight ring grows one slot at a time")
            ring.append((index, added))
        }
        count += 1
        bytes += added
    }

    /// Frees every append up to and including `index` (the follower acknowledged it).
    mutating func freeLE(_ index: LogIndex) {
        while count > 0 && ring[start].index <= index {
            bytes -= ring[start].bytes
            start = (start + 1) % messagesMax
            count -= 1
        }
        if count == 0 { start = 0 }
    }

    mutating func reset() {
        start = 0
        count = 0
        bytes = 0
    }
}

/// The leader's record of one member's log (etcd-io/raft `tracker/progress.go`).
struct Progress {
    /// The highest index known to match the leader's log.
    /// Invariant: match < next.
    private(set) var match: LogIndex
    /// The next index to send.
    private(set) var next: LogIndex
    /// Flow-control state.
    private(set) var state: ProgressState = .probe
    /// In snapshot state, the index of the snapshot being sent.
    private(set) var pendingSnapshot: LogIndex = .zero
    /// Heard from within the last election timeout (check-quorum).
    var recentActive = false
    /// In probe state: an append is outstanding, so wait for its answer or the next heartbeat.
    private(set) var msgAppFlowPaused = false
    /// Pipelined appends in replicate state.
    private(set) var inflights: Inflights
    /// A learner receives the log but does not vote.
    var isLearner: Bool

    init(next: LogIndex, inflightMessagesMax: Int, inflightBytesMax: Int, isLearner: Bool) {
        match = .zero
        self.next = next
        inflights = Inflights(messagesMax: inflightMessagesMax, bytesMax: inflightBytesMax)
        self.isLearner = isLearner
    }

    /// Whether the leader should hold off sending appends.
    var isPaused: Bool {
        switch state {
        case .probe: msgAppFlowPaused
        case .replicate: msgAppFlowPaused
        case .snapshot: true
        }
    }

    private mutating func reset(to newState: ProgressState) {
        msgAppFlowPaused = false
        pendingSnapshot = .zero
        state = newState
        inflights.reset()
    }

    mutating func becomeProbe() {
        // After a snapshot, resume right after it, even if the follower has not confirmed it yet.
        if state == .snapshot {
            let snapshotIndex = pendingSnapshot
            reset(to: .probe)
            next = max(match + 1, snapshotIndex + 1)
        } else {
            reset(to: .probe)
            next = match + 1
        }
    }

    mutating func becomeReplicate() {
        reset(to: .replicate)
        next = match + 1
    }

    mutating func becomeSnapshot(index: LogIndex) {
        reset(to: .snapshot)
        pendingSnapshot = index
    }

    /// Records that an append of `entryCount` entries and `bytes` bytes was sent (optimistic in replicate).
    mutating func sentEntries(entryCount: Int, bytes: Int) {
        switch state {
        case .replicate:
            if entryCount > 0 {
                next = next + UInt64(entryCount)
                inflights.add(index: next - 1, bytes: bytes)
            }
            msgAppFlowPaused = inflights.isFull
        case .probe:
            // One probe at a time: wait for its answer or a heartbeat response.
            msgAppFlowPaused = true
        case .snapshot:
            preconditionFailure("sending entries in snapshot state")
        }
    }

    /// A heartbeat response proves the follower is alive: let a stuck probe go again.
    mutating func resumeAfterHeartbeat() { msgAppFlowPaused = false }

    /// Acknowledged through `index`; returns whether match advanced.
    mutating func maybeUpdate(_ index: LogIndex) -> Bool {
        var updated = false
        if match < index {
            match = index
            updated = true
            msgAppFlowPaused = false
        }
        next = max(next, index + 1)
        return updated
    }

    /// Moves to the state an acknowledgment of `index` implies (probe found the match; snapshot applied).
    mutating func acknowledged(index: LogIndex, firstIndex: LogIndex) {
        switch state {
        case .probe:
            becomeReplicate()
        case .snapshot:
            // The follower applied a snapshot (or caught up otherwise) and can now be served from the log.
            if match + 1 >= firstIndex {
                becomeProbe()
                becomeReplicate()
            }
        case .replicate:
            inflights.freeLE(index)
            msgAppFlowPaused = inflights.isFull
        }
    }

    /// The transport reports the snapshot's fate. On failure, start probing from the match again.
    mutating func snapshotFinished(failed: Bool) {
        if failed { pendingSnapshot = .zero }
        becomeProbe()
        // Wait for the follower's answer (or the next heartbeat) before sending more.
        msgAppFlowPaused = true
    }

    /// A rejected append at `rejected`; `matchHint` is the follower's guess of a matching index.
    /// Returns false for a stale rejection.
    mutating func maybeDecrease(rejected: LogIndex, matchHint: LogIndex) -> Bool {
        if state == .replicate {
            // Rejections at or below match are stale: that index was acknowledged since.
            if rejected <= match { return false }
            next = match + 1
            return true
        }
        // In probe only the latest probe (next - 1) matters.
        if next - 1 != rejected { return false }
        next = max(min(rejected, matchHint + 1), match + 1)
        msgAppFlowPaused = false
        return true
    }
}
