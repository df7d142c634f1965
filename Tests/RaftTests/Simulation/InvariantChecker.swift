// Raft's safety invariants, checked by the simulator after every step (Raft §5.2-§5.4, thesis §3.6.3, §6.4).
// Each check is incremental: global records are filled as nodes act, and every new fact is checked against them.

@testable import Raft

struct InvariantViolation: Error, CustomStringConvertible {
    /// What broke, with enough context to start debugging from the replayed seed.
    var description: String
}

struct InvariantChecker {
    /// Election safety: the leader of each term.
    private var leaderOfTerm: [Term: NodeID] = [:]
    /// Log matching: content and previous term of every (index, term) ever appended anywhere.
    private var entryRecord: [EntryKey: (type: EntryType, data: [UInt8], previousTerm: Term?)] = [:]
    /// State machine safety: the entry applied at each index, with the smallest term of an applier at that time
    /// (the commit happened in that term or earlier, so every leader of a later term must hold it).
    private(set) var appliedRecord: [LogIndex: (term: Term, data: [UInt8], observedTerm: Term)] = [:]
    /// The highest applied index seen anywhere, with its term.
    private(set) var highestApplied: (index: LogIndex, term: Term)?
    /// The highest commit index any node has ever had; every read must return at least the value at request time.
    private(set) var maxCommit: LogIndex = .zero
    /// Per node incarnation, the last commit index seen (commit never decreases while a node lives).
    private var lastCommit: [NodeID: LogIndex] = [:]
    /// The read floor recorded when each read was requested.
    private var readFloor: [[UInt8]: LogIndex] = [:]
    /// How many read states were checked (to prove the check ran).
    private(set) var readsChecked = 0

    struct EntryKey: Hashable {
        var index: LogIndex
        var term: Term
    }

    mutating func nodeRestarted(_ id: NodeID) { lastCommit[id] = nil }

    mutating func recordReadRequest(context: [UInt8]) { readFloor[context] = maxCommit }

    mutating func checkReadState(_ state: ReadState, node: NodeID) throws(InvariantViolation) {
        guard let floor = readFloor[state.requestContext] else { return }
        readsChecked += 1
        if state.index < floor {
            throw InvariantViolation(description:
                "read index \(state.index) on node \(node) below commit \(floor) at request time")
        }
    }

    /// Log matching (Raft §5.3) through induction: an (index, term) pair always names the same content and
    /// the same previous term.
    mutating func checkAppended(_ entries: [Entry], node: RawNode) throws(InvariantViolation) {
        for entry in entries {
            let previousTerm = try? node.raft.raftLog.term(at: entry.index - 1)
            let key = EntryKey(index: entry.index, term: entry.term)
            if let known = entryRecord[key] {
                if known.data != entry.data || known.type != entry.type {
                    throw InvariantViolation(description:
                        "log matching: node \(node.id) has different content at index \(entry.index) term \(entry.term)")
                }
                if let previousTerm, let knownPrevious = known.previousTerm, previousTerm != knownPrevious {
                    throw InvariantViolation(description:
                        "log matching: node \(node.id) index \(entry.index) term \(entry.term) follows term "
                        + "\(previousTerm), elsewhere \(knownPrevious)")
                }
                if known.previousTerm == nil && previousTerm != nil {
                    entryRecord[key]?.previousTerm = previousTerm
                }
            } else {
                entryRecord[key] = (entry.type, entry.data, previousTerm)
            }
        }
    }

    /// State machine safety: no two nodes apply different entries at one index.
    mutating func checkApplied(_ entry: Entry, node: NodeID, nodeTerm: Term) throws(InvariantViolation) {
        if let known = appliedRecord[entry.index] {
            if known.term != entry.term || known.data != entry.data {
                throw InvariantViolation(description:
                    "applied divergence at index \(entry.index): node \(node) applied term \(entry.term), "
                    + "another node applied term \(known.term)")
            }
            if nodeTerm < known.observedTerm { appliedRecord[entry.index]?.observedTerm = nodeTerm }
        } else {
            appliedRecord[entry.index] = (entry.term, entry.data, nodeTerm)
        }
        if entry.index > (highestApplied?.index ?? .zero) { highestApplied = (entry.index, entry.term) }
    }

    mutating func checkSnapshot(_ metadata: SnapshotMetadata, node: NodeID) throws(InvariantViolation) {
        if let known = appliedRecord[metadata.index], known.term != metadata.term {
            throw InvariantViolation(description:
                "snapshot at \(metadata.index) on node \(node) has term \(metadata.term), applied term \(known.term)")
        }
    }

    /// Checks after any change to a node: election safety, commit monotonicity, leader completeness.
    mutating func checkNode(_ node: RawNode) throws(InvariantViolation) {
        let commit = node.commitIndex
        if let last = lastCommit[node.id], commit < last {
            throw InvariantViolation(description: "commit on node \(node.id) went back from \(last) to \(commit)")
        }
        lastCommit[node.id] = commit
        maxCommit = max(maxCommit, commit)
        guard node.role == .leader else { return }
        if let known = leaderOfTerm[node.term] {
            if known != node.id {
                throw InvariantViolation(description: "two leaders in term \(node.term): \(known) and \(node.id)")
            }
            return
        }
        leaderOfTerm[node.term] = node.id
        try checkLeaderCompleteness(node)
    }

    /// Leader completeness (Raft §5.4): a new leader holds every entry committed in an earlier term.
    private func checkLeaderCompleteness(_ node: RawNode) throws(InvariantViolation) {
        let log = node.raft.raftLog
        for (index, record) in appliedRecord where record.observedTerm < node.term && index >= log.firstIndex {
            let term = try? log.term(at: index)
            if term != record.term {
                throw InvariantViolation(description:
                    "leader completeness: leader \(node.id) of term \(node.term) has term \(term.map { "\($0)" } ?? "none") "
                    + "at committed index \(index) (term \(record.term))")
            }
        }
    }
}
