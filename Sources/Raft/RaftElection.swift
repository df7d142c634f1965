// Elections: pre-vote, vote requests, vote counting (Raft §5.2, thesis §9.6).

extension Raft {
    mutating func campaignIfAllowed(transfer: Bool) {
        guard role != .leader, isPromotable else { return }
        // A node must not campaign while a committed conf change is unapplied: it would count the wrong voters.
        if hasUnappliedConfChanges() { return }
        if config.preVote && !transfer {
            campaign(type: .preVote, transfer: false)
        } else {
            campaign(type: .vote, transfer: transfer)
        }
    }

    func hasUnappliedConfChanges() -> Bool {
        let committed = raftLog.committed
        let applied = raftLog.applied
        if committed <= applied { return false }
        // Unreadable entries would be a compaction above applied, a caller bug; treat as "none pending".
        guard let pending = try? raftLog.slice(from: applied + 1, to: committed + 1, bytesMax: Int.max) else {
            return false
        }
        return pending.contains { $0.type == .confChange }
    }

    mutating func campaign(type: MessageType, transfer: Bool) {
        let voteTerm: Term
        if type == .preVote {
            becomePreCandidate()
            voteTerm = term.next
        } else {
            becomeCandidate()
            voteTerm = term
        }
        if tracker.recordVote(from: id, granted: true).result == .won {
            // A single voter wins at once.
            if type == .preVote {
                campaign(type: .vote, transfer: transfer)
            } else {
                becomeLeader()
            }
            return
        }
        let context = transfer ? campaignTransferContext : []
        let lastIndex = raftLog.lastIndex
        let lastTerm = raftLog.lastTerm
        for voter in tracker.voters where voter != id {
            send(Message(type: type, to: voter, term: voteTerm, logTerm: lastTerm, index: lastIndex,
                         context: context))
        }
    }

    mutating func handleVoteRequest(_ message: Message) {
        let responseType: MessageType = message.type == .vote ? .voteResponse : .preVoteResponse
        // We may vote again for the same candidate (a duplicated request), or for anyone if we have neither
        // voted nor seen a leader in this term. Pre-votes for a future term are always considered.
        let canVote = vote == message.from
            || (vote == .none && lead == .none)
            || (message.type == .preVote && message.term > term)
        let upToDate = config.unsafeGrantVotesWithoutLogCheck
            || raftLog.isUpToDate(lastIndex: message.index, term: message.logTerm)
        if canVote && upToDate {
            // Answer in the candidate's term so the response is not discarded as stale.
            send(Message(type: responseType, to: message.from, term: message.term))
            if message.type == .vote {
                electionElapsed = 0
                vote = message.from
            }
        } else {
            send(Message(type: responseType, to: message.from, term: term, reject: true))
        }
    }

    mutating func handleVoteResponse(_ message: Message) {
        let expected: MessageType = role == .preCandidate ? .preVoteResponse : .voteResponse
        guard message.type == expected else { return }
        switch tracker.recordVote(from: message.from, granted: !message.reject).result {
        case .won:
            if role == .preCandidate {
                campaign(type: .vote, transfer: false)
            } else {
                becomeLeader()
                bcastAppend()
            }
        case .lost:
            becomeFollower(term: term, lead: .none)
        case .pending:
            break
        }
    }
}
