// The log as the core sees it: persisted entries (through `LogStorage`) followed by unstable ones.
// Modeled on etcd-io/raft `log.go`.

struct RaftLog {
    /// Persisted entries and snapshot, read-only from here.
    let storage: any LogStorage
    /// Accepted but not yet persisted.
    var unstable: UnstableLog
    /// The highest index known to be stored on a quorum.
    /// Invariant: applied <= committed <= lastIndex.
    var committed: LogIndex
    /// The highest index handed to the application and acknowledged through `advance`.
    var applied: LogIndex
    /// Upper bound of bytes per batch of committed entries handed out in one `Ready`.
    let committedBytesMax: Int

    init(storage: any LogStorage, committedBytesMax: Int) {
        self.storage = storage
        let first = storage.firstIndex()
        let last = storage.lastIndex()
        unstable = UnstableLog(offset: last + 1)
        committed = first - 1
        applied = first - 1
        self.committedBytesMax = committedBytesMax
    }

    var firstIndex: LogIndex { unstable.maybeFirstIndex ?? storage.firstIndex() }
    var lastIndex: LogIndex { unstable.maybeLastIndex ?? storage.lastIndex() }
    var lastTerm: Term {
        // The last index is always readable (it is the snapshot's if the log is empty).
        guard let term = try? term(at: lastIndex) else { preconditionFailure("last term unreadable at \(lastIndex)") }
        return term
    }

    func term(at index: LogIndex) throws(LogStorageError) -> Term {
        // Index first-1 is the snapshot point and still has a known term.
        let dummy = firstIndex - 1
        if index < dummy { throw .compacted }
        if index > lastIndex { throw .unavailable }
        if let term = unstable.maybeTerm(at: index) { return term }
        return try storage.term(at: index)
    }

    func matchTerm(index: LogIndex, term: Term) -> Bool {
        // A compacted or missing index cannot be matched: the caller falls back to a slower path.
        guard let found = try? self.term(at: index) else { return false }
        return found == term
    }

    /// The candidate's log is at least as up to date as ours (Raft §5.4.1).
    func isUpToDate(lastIndex candidateIndex: LogIndex, term candidateTerm: Term) -> Bool {
        candidateTerm > lastTerm || (candidateTerm == lastTerm && candidateIndex >= lastIndex)
    }

    /// Appends a leader's entries after checking the consistency point; returns the last new index.
    mutating func maybeAppend(
        index: LogIndex, logTerm: Term, commit: LogIndex, entries: [Entry]
    ) -> LogIndex? {
        guard matchTerm(index: index, term: logTerm) else { return nil }
        let lastNew = index + UInt64(entries.count)
        let conflict = findConflict(entries)
        if conflict != .zero {
            precondition(conflict > committed, "conflict at \(conflict) with committed entry (committed \(committed))")
            append(entries[conflict.distance(from: index + 1)...])
        }
        commitTo(min(commit, lastNew))
        return lastNew
    }

    /// Appends entries after the last index or over an uncommitted suffix.
    @discardableResult
    mutating func append(_ entries: ArraySlice<Entry>) -> LogIndex {
        guard let first = entries.first else { return lastIndex }
        precondition(first.index - 1 >= committed, "append at \(first.index) rewrites committed \(committed)")
        precondition(first.index <= lastIndex + 1, "append at \(first.index) leaves a gap after \(lastIndex)")
        unstable.truncateAndAppend(entries)
        return lastIndex
    }

    /// The index of the first entry that is new or disagrees with ours, or zero if all are present.
    func findConflict(_ entries: [Entry]) -> LogIndex {
        for entry in entries where !matchTerm(index: entry.index, term: entry.term) {
            return entry.index
        }
        return .zero
    }

    /// The largest index at or below `index` whose term is at most `term`, with that term (fast back-off).
    func findConflictByTerm(index: LogIndex, term: Term) -> (index: LogIndex, term: Term) {
        var position = index
        while true {
            guard let found = try? self.term(at: position) else { return (position, .zero) }
            if found <= term || position == .zero { return (position, found) }
            position = position - 1
        }
    }

    mutating func commitTo(_ index: LogIndex) {
        // Never decrease commit: a stale leader message may carry a lower one.
        guard committed < index else { return }
        precondition(index <= lastIndex, "commit \(index) beyond last index \(lastIndex)")
        committed = index
    }

    /// Commits `index` only if its entry is from `term` (Raft §5.4.2: never by counting older-term replicas).
    mutating func maybeCommit(index: LogIndex, term: Term) -> Bool {
        guard index > committed, matchTerm(index: index, term: term) else { return false }
        commitTo(index)
        return true
    }

    mutating func appliedTo(_ index: LogIndex) {
        guard index > applied else { return }
        precondition(index <= committed, "applied \(index) beyond committed \(committed)")
        applied = index
    }

    mutating func stableTo(index: LogIndex, term: Term) { unstable.stableTo(index: index, term: term) }
    mutating func stableSnapshotTo(index: LogIndex) { unstable.stableSnapshotTo(index: index) }

    func snapshot() throws(LogStorageError) -> Snapshot {
        if let snapshot = unstable.snapshot { return snapshot }
        return try storage.snapshot()
    }

    mutating func restore(_ snapshot: Snapshot) {
        committed = snapshot.metadata.index
        unstable.restore(snapshot)
    }

    var hasNextCommittedEntries: Bool {
        let low = max(applied + 1, firstIndex)
        return committed + 1 > low
    }

    func nextCommittedEntries() -> [Entry] {
        let low = max(applied + 1, firstIndex)
        guard committed + 1 > low else { return [] }
        // Committed entries are in storage or unstable; a compaction race would be a caller bug.
        do {
            return try slice(from: low, to: committed + 1, bytesMax: committedBytesMax)
        } catch {
            preconditionFailure("committed entries [\(low), \(committed)] unreadable: \(error)")
        }
    }

    /// Entries from `index` to the end, limited by `bytesMax` (at least one).
    func entries(from index: LogIndex, bytesMax: Int) throws(LogStorageError) -> [Entry] {
        if index > lastIndex { return [] }
        return try slice(from: index, to: lastIndex + 1, bytesMax: bytesMax)
    }

    func slice(from low: LogIndex, to high: LogIndex, bytesMax: Int) throws(LogStorageError) -> [Entry] {
        if low >= high { return [] }
        if low < firstIndex { throw .compacted }
        precondition(high <= lastIndex + 1, "slice [\(low), \(high)) beyond last index \(lastIndex)")
        var result: [Entry] = []
        if low < unstable.offset {
            result = try storage.entries(from: low, to: min(high, unstable.offset), bytesMax: bytesMax)
            // Storage stopped early because of the byte limit: do not add unstable entries past the gap.
            if result.count < min(high, unstable.offset).distance(from: low) { return result }
        }
        if high > unstable.offset {
            let unstablePart = unstable.slice(from: max(low, unstable.offset), to: high)
            if result.isEmpty {
                return limitBytes(unstablePart, bytesMax: bytesMax)
            }
            var total = result.reduce(0) { $0 + $1.byteCount }
            for entry in unstablePart {
                total += entry.byteCount
                if total > bytesMax { break }
                result.append(entry)
            }
        }
        return result
    }
}
