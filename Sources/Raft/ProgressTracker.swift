// Membership, per-member progress and vote counting for one configuration (single-server changes only,
// so there is never a joint configuration). Iteration is always in sorted ID order: dictionary order is
// seeded per process in Swift and would make the simulation irreproducible.

/// The outcome of counting votes.
enum VoteResult: Sendable, Hashable {
    case pending
    case won
    case lost
}

struct ProgressTracker {
    /// Voting members, sorted.
    private(set) var voters: [NodeID] = []
    /// Non-voting members, sorted, disjoint from `voters`.
    private(set) var learners: [NodeID] = []
    /// Progress of every member, voters and learners (including this node).
    /// Invariant: keys == voters ∪ learners.
    var progress: [NodeID: Progress] = [:]
    /// Votes received in the current election; true means granted.
    private(set) var votes: [NodeID: Bool] = [:]
    /// Window sizes for new members.
    let inflightMessagesMax: Int
    let inflightBytesMax: Int

    init(inflightMessagesMax: Int, inflightBytesMax: Int) {
        self.inflightMessagesMax = inflightMessagesMax
        self.inflightBytesMax = inflightBytesMax
    }

    var confState: ConfState { ConfState(voters: voters, learners: learners) }

    /// All members in sorted order.
    var members: [NodeID] { (voters + learners).sorted() }

    var quorum: Int { voters.count / 2 + 1 }

    func isVoter(_ id: NodeID) -> Bool { voters.contains(id) }
    func isLearner(_ id: NodeID) -> Bool { learners.contains(id) }
    func contains(_ id: NodeID) -> Bool { progress[id] != nil }

    /// Replaces the configuration, keeping progress of members that stay.
    mutating func reset(to confState: ConfState, nextIndex: LogIndex) {
        voters = confState.voters
        learners = confState.learners
        var newProgress: [NodeID: Progress] = [:]
        for id in voters + learners {
            var entry = progress[id] ?? makeProgress(next: nextIndex, isLearner: false)
            entry.isLearner = learners.contains(id)
            newProgress[id] = entry
        }
        progress = newProgress
    }

    /// Fresh progress for everyone, as when a node changes term (etcd `reset`).
    mutating func resetAllProgress(nextIndex: LogIndex) {
        for id in voters + learners {
            progress[id] = makeProgress(next: nextIndex, isLearner: learners.contains(id))
        }
    }

    func makeProgress(next: LogIndex, isLearner: Bool) -> Progress {
        Progress(next: next, inflightMessagesMax: inflightMessagesMax, inflightBytesMax: inflightBytesMax,
                 isLearner: isLearner)
    }

    /// The largest index stored on a quorum of voters: sort matches descending and take the quorum-th.
    func committedIndex() -> LogIndex {
        if voters.isEmpty { return .zero }
        var matches = voters.map { progress[$0]?.match ?? .zero }
        matches.sort(by: >)
        return matches[quorum - 1]
    }

    /// Whether a quorum of voters was heard from recently; this node counts as active.
    func isQuorumActive(selfID: NodeID) -> Bool {
        var active = 0
        for id in voters where id == selfID || progress[id]?.recentActive == true {
            active += 1
        }
        return active >= quorum
    }

    mutating func resetRecentActive(selfID: NodeID) {
        for id in voters + learners {
            progress[id]?.recentActive = id == selfID
        }
    }

    mutating func resetVotes() { votes = [:] }

    /// Records a vote (the first answer from a voter wins) and returns the tally.
    mutating func recordVote(from id: NodeID, granted: Bool) -> (granted: Int, rejected: Int, result: VoteResult) {
        if votes[id] == nil && isVoter(id) { votes[id] = granted }
        var grantedCount = 0
        var rejectedCount = 0
        for voter in voters {
            switch votes[voter] {
            case true?: grantedCount += 1
            case false?: rejectedCount += 1
            case nil: break
            }
        }
        let result: VoteResult
        if grantedCount >= quorum {
            result = .won
        } else if rejectedCount > voters.count - quorum {
            result = .lost
        } else {
            result = .pending
        }
        return (grantedCount, rejectedCount, result)
    }
}
