// Leader behaviour: proposals, replication with flow control, commit, ReadIndex, leader transfer.

extension Raft {
    mutating func stepLeader(_ message: Message) {
        switch message.type {
        case .beat:
            bcastHeartbeat(context: [])
        case .checkQuorum:
            // A leader cut off from a quorum steps down so clients find the real leader (thesis §6.2).
            if !tracker.isQuorumActive(selfID: id) {
                becomeFollower(term: term, lead: .none)
                return
            }
            tracker.resetRecentActive(selfID: id)
        case .propose:
            _ = propose(message)
        case .readIndex:
            handleReadIndex(message)
        case .transferLeader:
            handleTransferLeader(transferee: message.from)
        case .appendResponse:
            handleAppendResponse(message)
        case .heartbeatResponse:
            handleHeartbeatResponse(message)
        case .snapshotStatus:
            guard tracker.progress[message.from]?.state == .snapshot else { return }
            tracker.progress[message.from]?.snapshotFinished(failed: message.reject)
        case .unreachable:
            // Sends to it may be lost: stop pipelining and probe again.
            if tracker.progress[message.from]?.state == .replicate {
                tracker.progress[message.from]?.becomeProbe()
            }
        case .hup, .append, .vote, .voteResponse, .snapshot, .heartbeat, .timeoutNow, .readIndexResponse, .preVote,
            .preVoteResponse:
            break
        }
    }

    /// Accepts a batch of proposals, or says why not. Forwarded proposals that are dropped are simply lost;
    /// the proposer's waiter times out, as in etcd.
    mutating func propose(_ message: Message) -> ProposalDropped? {
        if message.entries.isEmpty { return .empty }
        switch role {
        case .leader:
            return proposeAsLeader(message.entries)
        case .follower:
            guard lead != .none else { return .noLeader }
            var forwarded = message
            forwarded.to = lead
            send(forwarded)
            return nil
        case .preCandidate, .candidate:
            return .noLeader
        }
    }

    private mutating func proposeAsLeader(_ proposed: [Entry]) -> ProposalDropped? {
        guard tracker.contains(id) else { return .notVoterOrLearner }
        if leadTransferee != .none { return .leaderTransferInProgress }
        var entries = proposed
        for position in entries.indices where entries[position].type == .confChange {
            if pendingConfIndex > raftLog.applied {
                // Never two membership changes in flight (thesis §4.1): keep the slot, drop the change.
                entries[position] = Entry(term: .zero, index: .zero)
            } else {
                pendingConfIndex = raftLog.lastIndex + UInt64(position + 1)
            }
        }
        appendEntries(entries)
        bcastAppend()
        return nil
    }

    /// Appends new entries of the current term. This node's own match moves only once they are persisted.
    mutating func appendEntries(_ entries: [Entry]) {
        var next = raftLog.lastIndex + 1
        var stamped = entries
        for position in stamped.indices {
            stamped[position].term = term
            stamped[position].index = next
            next = next + 1
        }
        raftLog.append(stamped[...])
    }

    /// Commits the quorum index if its entry is from this term (Raft §5.4.2); returns whether commit moved.
    mutating func maybeCommit() -> Bool {
        let index = tracker.committedIndex()
        if config.unsafeCommitPreviousTermByCount {
            // Deliberately wrong (test only): the figure 8 bug.
            guard index > raftLog.committed, index <= raftLog.lastIndex else { return false }
            raftLog.commitTo(index)
            return true
        }
        return raftLog.maybeCommit(index: index, term: term)
    }

    // MARK: Replication

    mutating func bcastAppend() {
        for member in tracker.members where member != id {
            sendAppend(to: member)
        }
    }

    mutating func sendAppend(to member: NodeID) { _ = maybeSendAppend(to: member, sendIfEmpty: true) }

    /// Sends the next batch to `member` if flow control allows; returns whether a message went out.
    mutating func maybeSendAppend(to member: NodeID, sendIfEmpty: Bool) -> Bool {
        guard member != id, let progress = tracker.progress[member], !progress.isPaused else { return false }
        let previousIndex = progress.next - 1
        guard let previousTerm = try? raftLog.term(at: previousIndex) else {
            // The entry before `next` was compacted: only a snapshot can catch this member up.
            return sendSnapshot(to: member)
        }
        var entries: [Entry] = []
        // A full window still allows an empty append: it is how a stuck pipeline discovers lost messages.
        if !(progress.state == .replicate && progress.inflights.isFull) {
            do {
                entries = try raftLog.entries(from: progress.next, bytesMax: config.messageBytesMax)
            } catch {
                return sendSnapshot(to: member)
            }
        }
        if entries.isEmpty && !sendIfEmpty { return false }
        let bytes = entries.reduce(0) { $0 + $1.byteCount }
        send(Message(type: .append, to: member, logTerm: previousTerm, index: previousIndex, entries: entries,
                     commit: raftLog.committed))
        tracker.progress[member]?.sentEntries(entryCount: entries.count, bytes: bytes)
        return true
    }

    mutating func sendSnapshot(to member: NodeID) -> Bool {
        // A snapshot is expensive: send it only to a member known to be alive.
        guard tracker.progress[member]?.recentActive == true else { return false }
        guard let snapshot = try? raftLog.snapshot(), !snapshot.isEmpty else {
            // `snapshotTemporarilyUnavailable`: the next heartbeat response retries.
            return false
        }
        tracker.progress[member]?.becomeSnapshot(index: snapshot.metadata.index)
        send(Message(type: .snapshot, to: member, snapshot: snapshot))
        return true
    }

    mutating func bcastHeartbeat(context: [UInt8]) {
        for member in tracker.members where member != id {
            guard let progress = tracker.progress[member] else { continue }
            // Never tell a follower to commit beyond what it is known to store.
            let commit = min(progress.match, raftLog.committed)
            send(Message(type: .heartbeat, to: member, commit: commit, context: context))
        }
    }

    private mutating func handleAppendResponse(_ message: Message) {
        let member = message.from
        guard let progress = tracker.progress[member] else { return }
        tracker.progress[member]?.recentActive = true
        if message.reject {
            var nextProbe = message.rejectHint
            if message.logTerm > .zero {
                nextProbe = raftLog.findConflictByTerm(index: message.rejectHint, term: message.logTerm).index
            }
            if tracker.progress[member]?.maybeDecrease(rejected: message.index, matchHint: nextProbe) == true {
                if progress.state == .replicate { tracker.progress[member]?.becomeProbe() }
                sendAppend(to: member)
            }
            return
        }
        let wasPaused = progress.isPaused
        let updated = tracker.progress[member]?.maybeUpdate(message.index) == true
        let probeConfirmed = progress.state == .probe && progress.match == message.index
        guard updated || probeConfirmed else { return }
        tracker.progress[member]?.acknowledged(index: message.index, firstIndex: raftLog.firstIndex)
        if maybeCommit() {
            releasePendingReadIndexMessages()
            bcastAppend()
        } else if wasPaused {
            sendAppend(to: member)
        }
        // Pipelining: keep sending while the window has room (thesis §10.2.1).
        while maybeSendAppend(to: member, sendIfEmpty: false) {}
        if member == leadTransferee && tracker.progress[member]?.match == raftLog.lastIndex {
            send(Message(type: .timeoutNow, to: member))
        }
    }

    private mutating func handleHeartbeatResponse(_ message: Message) {
        let member = message.from
        guard let progress = tracker.progress[member] else { return }
        tracker.progress[member]?.recentActive = true
        tracker.progress[member]?.resumeAfterHeartbeat()
        if progress.match < raftLog.lastIndex || progress.state == .probe {
            sendAppend(to: member)
        }
        guard !message.context.isEmpty,
              let acks = readOnly.recordAck(from: member, context: message.context) else { return }
        let voterAcks = tracker.voters.filter { acks.contains($0) }.count
        guard voterAcks >= tracker.quorum else { return }
        for request in readOnly.advance(through: message.context) {
            respondToReadIndex(index: request.index, from: request.from, context: request.context)
        }
    }

    // MARK: ReadIndex (thesis §6.4)

    var committedEntryInCurrentTerm: Bool { (try? raftLog.term(at: raftLog.committed)) == term }

    mutating func handleReadIndex(_ message: Message) {
        // A new leader's commit index may lag until an entry of its own term commits.
        guard committedEntryInCurrentTerm else {
            pendingReadIndexMessages.append(message)
            return
        }
        if tracker.voters == [id] {
            respondToReadIndex(index: raftLog.committed, from: message.from, context: message.context)
            return
        }
        readOnly.add(index: raftLog.committed, from: message.from, context: message.context, leaderID: id)
    }

    mutating func releasePendingReadIndexMessages() {
        guard !pendingReadIndexMessages.isEmpty, committedEntryInCurrentTerm else { return }
        let pending = pendingReadIndexMessages
        pendingReadIndexMessages = []
        for message in pending { handleReadIndex(message) }
    }

    /// One heartbeat round for all reads queued since the last one (batching).
    mutating func flushReadIndexHeartbeat() {
        guard role == .leader, let context = readOnly.unsentContext else { return }
        readOnly.unsentContext = nil
        bcastHeartbeat(context: context)
    }

    mutating func respondToReadIndex(index: LogIndex, from: NodeID, context: [UInt8]) {
        if from == id || from == .none {
            readStates.append(ReadState(index: index, requestContext: context))
        } else {
            send(Message(type: .readIndexResponse, to: from, index: index, context: context))
        }
    }

    // MARK: Leader transfer (thesis §3.10)

    private mutating func handleTransferLeader(transferee: NodeID) {
        guard tracker.isVoter(transferee), transferee != id else { return }
        if leadTransferee == transferee { return }
        // The transfer must finish within one election timeout, or it is abandoned (see tickHeartbeat).
        electionElapsed = 0
        leadTransferee = transferee
        if tracker.progress[transferee]?.match == raftLog.lastIndex {
            send(Message(type: .timeoutNow, to: transferee))
        } else {
            // Catch it up first; the append response sends TimeoutNow once it matches.
            sendAppend(to: transferee)
        }
    }
}
