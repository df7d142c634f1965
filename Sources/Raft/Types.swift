// The value types that cross the Raft boundary: identifiers, entries, hard state, messages.
// Distinct integers get distinct types so a term can never be passed where an index belongs.

/// A Raft term (Raft §5.1). Zero means "no term yet".
package struct Term: Hashable, Comparable, Sendable, CustomStringConvertible, ExpressibleByIntegerLiteral {
    /// The raw counter; persisted as a big-endian UInt64.
    package var rawValue: UInt64

    package init(_ rawValue: UInt64) { self.rawValue = rawValue }
    package init(integerLiteral value: UInt64) { self.rawValue = value }

    package static let zero = Term(0)
    package static func < (lhs: Term, rhs: Term) -> Bool { lhs.rawValue < rhs.rawValue }
    package var description: String { "\(rawValue)" }
    package var next: Term { Term(rawValue + 1) }
}

/// A position in the replicated log (Raft §5.3). Index 0 is the empty-log sentinel.
package struct LogIndex: Hashable, Comparable, Sendable, CustomStringConvertible, ExpressibleByIntegerLiteral {
    /// The raw position; entries start at 1.
    package var rawValue: UInt64

    package init(_ rawValue: UInt64) { self.rawValue = rawValue }
    package init(integerLiteral value: UInt64) { self.rawValue = value }

    package static let zero = LogIndex(0)
    package static func < (lhs: LogIndex, rhs: LogIndex) -> Bool { lhs.rawValue < rhs.rawValue }
    package static func + (lhs: LogIndex, rhs: UInt64) -> LogIndex { LogIndex(lhs.rawValue + rhs) }
    package static func - (lhs: LogIndex, rhs: UInt64) -> LogIndex { LogIndex(lhs.rawValue - rhs) }
    /// The number of positions from `base` up to `self`; `self` must not be below `base`.
    package func distance(from base: LogIndex) -> Int { Int(rawValue - base.rawValue) }
    package var description: String { "\(rawValue)" }
}

/// A member's identity. Zero is reserved for "nobody" (no leader, no vote).
package struct NodeID: Hashable, Comparable, Sendable, CustomStringConvertible, ExpressibleByIntegerLiteral {
    /// The raw identifier, derived by the server from the cluster configuration.
    package var rawValue: UInt64

    package init(_ rawValue: UInt64) { self.rawValue = rawValue }
    package init(integerLiteral value: UInt64) { self.rawValue = value }

    package static let none = NodeID(0)
    package static func < (lhs: NodeID, rhs: NodeID) -> Bool { lhs.rawValue < rhs.rawValue }
    package var description: String { "\(rawValue)" }
}

/// What an entry carries: application data, or a membership change applied one server at a time.
package enum EntryType: UInt8, Sendable, Hashable {
    case normal = 0
    case confChange = 1
}

/// One log entry.
package struct Entry: Sendable, Hashable {
    /// The leader's term when the entry was created.
    package var term: Term
    /// The entry's position in the log.
    package var index: LogIndex
    /// Normal data, or an encoded `ConfChange`.
    package var type: EntryType
    /// Opaque payload. An empty normal entry is the leader's no-op on election (Raft §8).
    package var data: [UInt8]

    package init(term: Term, index: LogIndex, type: EntryType = .normal, data: [UInt8] = []) {
        self.term = term
        self.index = index
        self.type = type
        self.data = data
    }

    /// Approximate wire size, used for the inflight byte window and message size limits.
    package var byteCount: Int { data.count + 24 }
}

/// The state that must be on stable storage before any message depending on it is sent (Raft §5, figure 2).
package struct HardState: Sendable, Hashable {
    /// The latest term this node has seen.
    package var term: Term
    /// Whom this node voted for in `term`, or `.none`.
    package var vote: NodeID
    /// The highest index known committed. Persisting it is an optimization, not a safety need.
    package var commit: LogIndex

    package init(term: Term = .zero, vote: NodeID = .none, commit: LogIndex = .zero) {
        self.term = term
        self.vote = vote
        self.commit = commit
    }

    package var isEmpty: Bool { self == HardState() }
}

/// The membership at some point of the log: voters decide elections and commit, learners only receive the log.
package struct ConfState: Sendable, Hashable {
    /// Members that vote and count toward quorum. Sorted, no duplicates.
    package var voters: [NodeID]
    /// Members that receive the log but do not vote. Sorted, disjoint from `voters`.
    package var learners: [NodeID]

    package init(voters: [NodeID] = [], learners: [NodeID] = []) {
        self.voters = voters.sorted()
        self.learners = learners.sorted()
    }
}

/// A single-server membership change (Raft thesis §4.1). At most one is pending at a time.
package enum ConfChange: Sendable, Hashable {
    case addVoter(NodeID)
    case addLearner(NodeID)
    /// Turns a learner into a voter.
    case promote(NodeID)
    case remove(NodeID)

    /// The member the change is about.
    package var nodeID: NodeID {
        switch self {
        case .addVoter(let id), .addLearner(let id), .promote(let id), .remove(let id): id
        }
    }
}

/// Describes where a snapshot sits in the log and which membership it carries.
package struct SnapshotMetadata: Sendable, Hashable {
    /// The last index the snapshot covers.
    package var index: LogIndex
    /// The term of the entry at `index`.
    package var term: Term
    /// The membership as of `index`.
    package var confState: ConfState

    package init(index: LogIndex = .zero, term: Term = .zero, confState: ConfState = ConfState()) {
        self.index = index
        self.term = term
        self.confState = confState
    }
}

/// A point-in-time image of the applied state machine, replacing the log up to `metadata.index`.
package struct Snapshot: Sendable, Hashable {
    /// Position and membership.
    package var metadata: SnapshotMetadata
    /// The application's image; opaque to Raft.
    package var data: [UInt8]

    package init(metadata: SnapshotMetadata = SnapshotMetadata(), data: [UInt8] = []) {
        self.metadata = metadata
        self.data = data
    }

    package var isEmpty: Bool { metadata.index == .zero }
}

/// Every message kind. Local kinds (`hup`, `beat`, `checkQuorum`) never cross the network.
package enum MessageType: UInt8, Sendable, Hashable, CaseIterable {
    case hup = 0
    case beat = 1
    case propose = 2
    case append = 3
    case appendResponse = 4
    case vote = 5
    case voteResponse = 6
    case snapshot = 7
    case heartbeat = 8
    case heartbeatResponse = 9
    case unreachable = 10
    case snapshotStatus = 11
    case checkQuorum = 12
    case transferLeader = 13
    case timeoutNow = 14
    case readIndex = 15
    case readIndexResponse = 16
    case preVote = 17
    case preVoteResponse = 18
}

/// One Raft message. Fields that a kind does not use stay at their zero value.
package struct Message: Sendable, Hashable {
    /// What the message is.
    package var type: MessageType
    /// Recipient.
    package var to: NodeID
    /// Sender.
    package var from: NodeID
    /// The sender's term; zero for local messages and forwarded proposals.
    package var term: Term
    /// The term of the entry at `index` (append), of the candidate's last entry (vote), or the conflict hint term.
    package var logTerm: Term
    /// Append: the index before `entries`. Response: the acknowledged or rejected index. Vote: last index.
    package var index: LogIndex
    /// Entries to append, or proposals being forwarded.
    package var entries: [Entry]
    /// The sender's commit index.
    package var commit: LogIndex
    /// Carried by `.snapshot` messages only.
    package var snapshot: Snapshot?
    /// A rejected append or a denied vote.
    package var reject: Bool
    /// On a rejected append: the follower's guess of the last index that may match (fast back-off, thesis §5.3).
    package var rejectHint: LogIndex
    /// Opaque bytes: read-index request contexts, or `campaignTransfer` on a forced election.
    package var context: [UInt8]

    package init(
        type: MessageType, to: NodeID = .none, from: NodeID = .none, term: Term = .zero, logTerm: Term = .zero,
        index: LogIndex = .zero, entries: [Entry] = [], commit: LogIndex = .zero, snapshot: Snapshot? = nil,
        reject: Bool = false, rejectHint: LogIndex = .zero, context: [UInt8] = []
    ) {
        self.type = type
        self.to = to
        self.from = from
        self.term = term
        self.logTerm = logTerm
        self.index = index
        self.entries = entries
        self.commit = commit
        self.snapshot = snapshot
        self.reject = reject
        self.rejectHint = rejectHint
        self.context = context
    }
}

/// The role a node plays in its current term.
package enum Role: UInt8, Sendable, Hashable {
    case follower
    case preCandidate
    case candidate
    case leader
}

/// Volatile state worth reporting to the caller (leader changes feed metrics and request routing).
package struct SoftState: Sendable, Hashable {
    /// The leader this node follows, or `.none`.
    package var leader: NodeID
    /// This node's role.
    package var role: Role

    package init(leader: NodeID, role: Role) {
        self.leader = leader
        self.role = role
    }
}

/// A linearizable read point: once `applied >= index`, a read tagged `requestContext` may be served locally.
package struct ReadState: Sendable, Hashable {
    /// The commit index the leader confirmed while still being leader.
    package var index: LogIndex
    /// The caller's tag for the request.
    package var requestContext: [UInt8]

    package init(index: LogIndex, requestContext: [UInt8]) {
        self.index = index
        self.requestContext = requestContext
    }
}

/// Why a proposal was not accepted. Thrown by `RawNode.propose` so the caller can fail the request at once.
package enum ProposalDropped: Error, Sendable, Hashable {
    /// No leader is known; retry after an election.
    case noLeader
    /// The leader is handing over; retry on the new leader.
    case leaderTransferInProgress
    /// This node is not in the configuration (removed, or not yet added).
    case notVoterOrLearner
    /// A membership change is already pending; only one may be in flight (thesis §4.1).
    case confChangePending
    /// The proposal carried no entries.
    case empty
}
