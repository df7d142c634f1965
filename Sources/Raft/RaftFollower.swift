// Follower and candidate handling: appends, heartbeats, snapshots, forwarding (Raft §5.3, thesis §6.4).

extension Raft {
    mutating func stepFollower(_ message: Message) {
        switch message.type {
        case .propose:
            _ = propose(message)
        case .append:
            electionElapsed = 0
            lead = message.from
            handleAppend(message)
        case .heartbeat:
            electionElapsed = 0
            lead = message.from
            handleHeartbeat(message)
        case .snapshot:
            electionElapsed = 0
            lead = message.from
            handleSnapshot(message)
        case .transferLeader, .readIndex:
            // Forwarded with the original `from` (the transferee, or the reader) kept intact.
            guard lead != .none else { return }
            var forwarded = message
            forwarded.to = lead
            send(forwarded)
        case .timeoutNow:
            campaignIfAllowed(transfer: true)
        case .readIndexResponse:
            readStates.append(ReadState(index: message.index, requestContext: message.context))
        case .hup, .beat, .appendResponse, .vote, .voteResponse, .heartbeatResponse, .unreachable,
            .snapshotStatus, .checkQuorum, .preVote, .preVoteResponse:
            break
        }
    }

    mutating func stepCandidate(_ message: Message) {
        switch message.type {
        case .propose:
            _ = propose(message)
        case .append:
            becomeFollower(term: message.term, lead: message.from)
            handleAppend(message)
        case .heartbeat:
            becomeFollower(term: message.term, lead: message.from)
            handleHeartbeat(message)
        case .snapshot:
            becomeFollower(term: message.term, lead: message.from)
            handleSnapshot(message)
        case .voteResponse, .preVoteResponse:
            handleVoteResponse(message)
        case .hup, .beat, .appendResponse, .vote, .heartbeatResponse, .unreachable, .snapshotStatus, .checkQuorum,
            .transferLeader, .timeoutNow, .readIndex, .readIndexResponse, .preVote:
            break
        }
    }

    mutating func handleAppend(_ message: Message) {
        if message.index < raftLog.committed {
            send(Message(type: .appendResponse, to: message.from, index: raftLog.committed))
            return
        }
        if let lastNew = raftLog.maybeAppend(index: message.index, logTerm: message.logTerm,
                                             commit: message.commit, entries: message.entries) {
            send(Message(type: .appendResponse, to: message.from, index: lastNew))
            return
        }
        // Fast back-off: hint the last index whose term is at most the leader's term at `index`,
        // so the leader can skip a whole conflicting term per round trip (thesis §5.3 optimization).
        let hint = raftLog.findConflictByTerm(index: min(message.index, raftLog.lastIndex), term: message.logTerm)
        send(Message(type: .appendResponse, to: message.from, logTerm: hint.term, index: message.index,
                     reject: true, rejectHint: hint.index))
    }

    mutating func handleHeartbeat(_ message: Message) {
        // The leader sends min(match, commit), so this never exceeds our log.
        raftLog.commitTo(message.commit)
        send(Message(type: .heartbeatResponse, to: message.from, context: message.context))
    }

    mutating func handleSnapshot(_ message: Message) {
        guard let snapshot = message.snapshot else { return }
        if restore(snapshot) {
            send(Message(type: .appendResponse, to: message.from, index: raftLog.lastIndex))
        } else {
            send(Message(type: .appendResponse, to: message.from, index: raftLog.committed))
        }
    }

    /// Installs a snapshot as the new log base; returns false if it brings nothing new.
    mutating func restore(_ snapshot: Snapshot) -> Bool {
        let metadata = snapshot.metadata
        if metadata.index <= raftLog.committed { return false }
        let confState = metadata.confState
        // NB: unlike etcd-io/raft we accept a snapshot whose membership lacks us: a member added after the
        // leader's last compaction gets such a snapshot and learns of itself from the entries that follow.
        // It stays unpromotable (not a voter in its own view) until then, so this is safe.
        if raftLog.matchTerm(index: metadata.index, term: metadata.term) {
            // We already have the entries: just fast-forward commit, keeping the log after it.
            raftLog.commitTo(metadata.index)
            return false
        }
        raftLog.restore(snapshot)
        tracker.reset(to: confState, nextIndex: raftLog.lastIndex + 1)
        tracker.resetAllProgress(nextIndex: raftLog.lastIndex + 1)
        isLearner = tracker.isLearner(id)
        return true
    }
}
