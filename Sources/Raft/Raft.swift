// The consensus state machine: state, role changes, ticks and the top of `step`.
// Role-specific handling lives in RaftLeader.swift, RaftFollower.swift, RaftElection.swift, RaftMembership.swift.
// Modeled on etcd-io/raft `raft.go`; see Design.md for the role diagram.

/// The context of a `.vote`/`.timeoutNow`-forced election: it may disrupt a live leader's lease.
let campaignTransferContext: [UInt8] = Array("CampaignTransfer".utf8)

struct Raft {
    /// This node.
    let id: NodeID
    /// The settings this node was built with.
    let config: Config
    /// The latest term seen. Persisted in `HardState`.
    var term: Term = .zero
    /// The vote cast in `term`. Persisted in `HardState` before any message depending on it is sent.
    var vote: NodeID = .none
    /// The log (persisted part plus unstable tail).
    var raftLog: RaftLog
    /// Membership and per-member replication state.
    var tracker: ProgressTracker
    /// Current role.
    var role: Role = .follower
    /// The leader of `term` as far as this node knows.
    var lead: NodeID = .none
    /// Whether this node is a learner in the current configuration (learners never campaign).
    var isLearner = false
    /// The leader transfer target, if a transfer is in progress (leader only).
    var leadTransferee: NodeID = .none
    /// A conf change at an index above `applied` is pending; no second one is accepted until it applies.
    var pendingConfIndex: LogIndex = .zero
    /// Pending read requests waiting for heartbeat confirmation (leader only).
    var readOnly = ReadOnly()
    /// Read requests that arrived before this leader committed an entry of its term (thesis §6.4).
    var pendingReadIndexMessages: [Message] = []
    /// Read points released to the caller through the next `Ready`.
    var readStates: [ReadState] = []
    /// Ticks since the last election timeout reset (followers, candidates) or check-quorum (leaders).
    var electionElapsed = 0
    /// Ticks since the last heartbeat (leader only).
    var heartbeatElapsed = 0
    /// Randomized in `[electionTicks, 2*electionTicks)` at each reset, so candidates rarely collide (Raft §5.2).
    var randomizedElectionTimeout = 0
    /// Seeded jitter source.
    var random: SplitMix64
    /// Messages that may go out at once (leader appends and heartbeats, requests).
    var messages: [Message] = []
    /// Messages that must wait until the current `Ready` is persisted (acks and votes, thesis §3.8).
    var messagesAfterPersist: [Message] = []

    init(config: Config, storage: any LogStorage) {
        config.validate()
        id = config.id
        self.config = config
        random = SplitMix64(seed: config.seed ^ (config.id.rawValue &* 0x9E37_79B9_7F4A_7C15))
        raftLog = RaftLog(storage: storage, committedBytesMax: config.committedBytesMax)
        tracker = ProgressTracker(inflightMessagesMax: config.inflightMessagesMax,
                                  inflightBytesMax: config.inflightBytesMax)
        let (hardState, confState) = storage.initialState()
        tracker.reset(to: confState, nextIndex: raftLog.lastIndex + 1)
        isLearner = tracker.isLearner(id)
        if !hardState.isEmpty {
            precondition(hardState.commit <= raftLog.lastIndex,
                         "persisted commit \(hardState.commit) beyond last index \(raftLog.lastIndex)")
            raftLog.commitTo(hardState.commit)
            term = hardState.term
            vote = hardState.vote
        }
        if config.applied > .zero {
            raftLog.appliedTo(min(config.applied, raftLog.committed))
        }
        becomeFollower(term: term, lead: .none)
    }

    var hardState: HardState { HardState(term: term, vote: vote, commit: raftLog.committed) }
    var softState: SoftState { SoftState(leader: lead, role: role) }

    /// A voter in the current configuration may campaign; learners and non-members may not.
    var isPromotable: Bool { tracker.isVoter(id) && raftLog.unstable.snapshot == nil }

    // MARK: Role changes

    mutating func reset(term newTerm: Term) {
        if term != newTerm {
            term = newTerm
            vote = .none
        }
        lead = .none
        electionElapsed = 0
        heartbeatElapsed = 0
        resetRandomizedElectionTimeout()
        leadTransferee = .none
        tracker.resetVotes()
        tracker.resetAllProgress(nextIndex: raftLog.lastIndex + 1)
        pendingConfIndex = .zero
        readOnly.reset()
        pendingReadIndexMessages = []
    }

    mutating func resetRandomizedElectionTimeout() {
        randomizedElectionTimeout = config.electionTicks + Int.random(in: 0..<config.electionTicks, using: &random)
    }

    mutating func becomeFollower(term newTerm: Term, lead newLead: NodeID) {
        reset(term: newTerm)
        lead = newLead
        role = .follower
    }

    mutating func becomePreCandidate() {
        precondition(role != .leader, "leader cannot become pre-candidate")
        // The term is not bumped: a failed pre-vote leaves no trace in the cluster (thesis §9.6).
        tracker.resetVotes()
        lead = .none
        role = .preCandidate
    }

    mutating func becomeCandidate() {
        precondition(role != .leader, "leader cannot become candidate")
        reset(term: term.next)
        vote = id
        role = .candidate
    }

    mutating func becomeLeader() {
        precondition(role != .follower, "follower cannot become leader without an election")
        reset(term: term)
        lead = id
        role = .leader
        tracker.progress[id]?.becomeReplicate()
        // Only persisted entries count for this node's own match; `advance` raises it as writes finish.
        if let persisted = persistedLastIndex, persisted > .zero {
            _ = tracker.progress[id]?.maybeUpdate(persisted)
        }
        // Any conf change in the uncommitted tail may still be pending (thesis §4.1 and etcd #11496 safety fix).
        pendingConfIndex = raftLog.lastIndex
        // The no-op entry of the new term lets the leader commit earlier entries (Raft §8, figure 8).
        appendEntries([Entry(term: term, index: .zero)])
    }

    /// The last index known to be on this node's stable storage.
    var persistedLastIndex: LogIndex? {
        if raftLog.unstable.snapshot != nil { return nil }
        return min(raftLog.storage.lastIndex(), raftLog.unstable.offset - 1)
    }

    // MARK: Ticks

    mutating func tick() {
        switch role {
        case .leader: tickHeartbeat()
        case .follower, .preCandidate, .candidate: tickElection()
        }
    }

    mutating func tickElection() {
        electionElapsed += 1
        if isPromotable && electionElapsed >= randomizedElectionTimeout {
            electionElapsed = 0
            step(Message(type: .hup, from: id))
        }
    }

    mutating func tickHeartbeat() {
        heartbeatElapsed += 1
        electionElapsed += 1
        if electionElapsed >= config.electionTicks {
            electionElapsed = 0
            if config.checkQuorum {
                step(Message(type: .checkQuorum, from: id))
            }
            // A transfer that did not finish within an election timeout is abandoned (thesis §3.10).
            if role == .leader && leadTransferee != .none {
                leadTransferee = .none
            }
        }
        guard role == .leader else { return }
        if heartbeatElapsed >= config.heartbeatTicks {
            heartbeatElapsed = 0
            step(Message(type: .beat, from: id))
        }
    }

    // MARK: Sending

    mutating func send(_ message: Message) {
        var message = message
        // Forwarded messages keep their origin (a reader, a proposer, a transfer target).
        if message.from == .none { message.from = id }
        switch message.type {
        case .vote, .voteResponse, .preVote, .preVoteResponse:
            precondition(message.term != .zero, "\(message.type) must carry a term")
        case .propose, .readIndex:
            // Forwarded to the leader as if local: they carry no term (etcd does the same).
            message.term = .zero
        case .hup, .beat, .append, .appendResponse, .snapshot, .heartbeat, .heartbeatResponse, .unreachable,
            .snapshotStatus, .checkQuorum, .transferLeader, .timeoutNow, .readIndexResponse:
            message.term = term
        }
        switch message.type {
        case .appendResponse, .voteResponse, .preVoteResponse, .vote:
            // Ack only after fsync: an ack counts toward commit and a vote must survive a crash (thesis §3.8).
            // Vote requests wait too, so a candidate's own vote is durable before it can win.
            messagesAfterPersist.append(message)
        case .hup, .beat, .propose, .append, .snapshot, .heartbeat, .heartbeatResponse, .unreachable,
            .snapshotStatus, .checkQuorum, .transferLeader, .timeoutNow, .readIndex, .readIndexResponse, .preVote:
            messages.append(message)
        }
    }

    // MARK: Step

    /// Handles any input. Stale and irrelevant messages are dropped silently: protocol outcomes are not errors.
    mutating func step(_ message: Message) {
        guard stepTerm(message) else { return }
        switch message.type {
        case .hup:
            campaignIfAllowed(transfer: false)
        case .vote, .preVote:
            handleVoteRequest(message)
        case .beat, .propose, .append, .appendResponse, .voteResponse, .snapshot, .heartbeat, .heartbeatResponse,
            .unreachable, .snapshotStatus, .checkQuorum, .transferLeader, .timeoutNow, .readIndex,
            .readIndexResponse, .preVoteResponse:
            switch role {
            case .leader: stepLeader(message)
            case .preCandidate, .candidate: stepCandidate(message)
            case .follower: stepFollower(message)
            }
        }
    }

    /// Applies the term rules of Raft §5.1 and thesis §9.6; returns false when the message is to be dropped.
    private mutating func stepTerm(_ message: Message) -> Bool {
        if message.term == .zero { return true }
        if message.term > term {
            if message.type == .vote || message.type == .preVote {
                let forced = message.context == campaignTransferContext
                let inLease = config.checkQuorum && lead != .none && electionElapsed < config.electionTicks
                // A node that hears from a leader ignores disruptive candidates (thesis §4.2.3).
                if !forced && inLease { return false }
            }
            switch message.type {
            case .preVote:
                // Pre-votes never change our term.
                break
            case .preVoteResponse where !message.reject:
                // Granted pre-votes carry the future term; we bump it when the pre-vote wins.
                break
            case .append, .heartbeat, .snapshot:
                becomeFollower(term: message.term, lead: message.from)
            default:
                becomeFollower(term: message.term, lead: .none)
            }
            return true
        }
        if message.term < term {
            if (config.checkQuorum || config.preVote) && (message.type == .heartbeat || message.type == .append) {
                // Tell a stale leader about the newer term so it steps down; otherwise a node cut off by
                // check-quorum or pre-vote could never rejoin (etcd-io/raft `raft.go` comment on this case).
                send(Message(type: .appendResponse, to: message.from))
            } else if message.type == .preVote {
                send(Message(type: .preVoteResponse, to: message.from, term: term, reject: true))
            }
            return false
        }
        return true
    }
}
