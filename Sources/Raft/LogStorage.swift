// The read side of persisted Raft state, and an in-memory implementation for tests and benchmarks.
// The caller writes to its storage while handling a `Ready`; the core only reads through this protocol.

/// Expected outcomes of reading the log.
package enum LogStorageError: Error, Sendable, Hashable {
    /// The requested index sits below the first available index: it was compacted into a snapshot.
    case compacted
    /// The requested index is beyond the last index.
    case unavailable
    /// The snapshot is being prepared; the leader retries later.
    case snapshotTemporarilyUnavailable
}

/// What the core needs to read from stable storage. Implementations are owned by the node's single owner.
///
/// Invariant: entries `firstIndex()...lastIndex()` are available; `term(at: firstIndex() - 1)` is also
/// available (it is the snapshot's term), which lets an append at the compaction point be checked.
package protocol LogStorage: AnyObject {
    /// The persisted hard state and membership at start.
    func initialState() -> (hardState: HardState, confState: ConfState)
    /// Entries in `[low, high)`, at least one if any exist, then stopping before `bytesMax` total.
    func entries(from low: LogIndex, to high: LogIndex, bytesMax: Int) throws(LogStorageError) -> [Entry]
    /// The term of the entry at `index`, for `firstIndex() - 1 ... lastIndex()`.
    func term(at index: LogIndex) throws(LogStorageError) -> Term
    /// The first index still in the log (snapshot index + 1).
    func firstIndex() -> LogIndex
    /// The last index in the log (the snapshot index when the log is empty).
    func lastIndex() -> LogIndex
    /// The most recent snapshot.
    func snapshot() throws(LogStorageError) -> Snapshot
}

/// A `LogStorage` kept in memory. Not thread-safe: it belongs to the same owner as the node.
package final class MemoryLogStorage: LogStorage {
    /// The persisted hard state.
    package private(set) var hardState = HardState()
    /// The latest snapshot; its metadata also carries the membership used at restart.
    package private(set) var latestSnapshot = Snapshot()
    /// `entries[0]` is a sentinel holding the snapshot's index and term; real entries follow.
    /// Invariant: `entries[i].index == entries[0].index + i`.
    private var storedEntries: [Entry] = [Entry(term: .zero, index: .zero)]
    /// The membership as of the last applied conf change, reported at restart.
    package var confState = ConfState()

    package init() {}

    package func initialState() -> (hardState: HardState, confState: ConfState) { (hardState, confState) }

    package func setHardState(_ state: HardState) { hardState = state }

    package func firstIndex() -> LogIndex { storedEntries[0].index + 1 }

    package func lastIndex() -> LogIndex { storedEntries[0].index + UInt64(storedEntries.count - 1) }

    package func term(at index: LogIndex) throws(LogStorageError) -> Term {
        let offset = storedEntries[0].index
        if index < offset { throw .compacted }
        let position = index.distance(from: offset)
        if position >= storedEntries.count { throw .unavailable }
        let entry = storedEntries[position]
        precondition(entry.index == index, "storage entry \(entry.index) read back at \(index)")
        return entry.term
    }

    package func entries(from low: LogIndex, to high: LogIndex, bytesMax: Int) throws(LogStorageError) -> [Entry] {
        let offset = storedEntries[0].index
        if low <= offset { throw .compacted }
        if high > lastIndex() + 1 { throw .unavailable }
        let lowPosition = low.distance(from: offset)
        let highPosition = high.distance(from: offset)
        return limitBytes(storedEntries[lowPosition..<highPosition], bytesMax: bytesMax)
    }

    package func snapshot() throws(LogStorageError) -> Snapshot { latestSnapshot }

    /// Replaces the whole log with a snapshot received from the leader.
    package func applySnapshot(_ snapshot: Snapshot) {
        if snapshot.metadata.index <= latestSnapshot.metadata.index { return }
        latestSnapshot = snapshot
        confState = snapshot.metadata.confState
        storedEntries = [Entry(term: snapshot.metadata.term, index: snapshot.metadata.index)]
    }

    /// Records a snapshot of the applied state at `index` (which must be in the log) and drops entries
    /// before it. `index` must not exceed what the caller has applied.
    package func createSnapshot(at index: LogIndex, confState: ConfState, data: [UInt8]) throws(LogStorageError) {
        if index <= latestSnapshot.metadata.index { return }
        precondition(index <= lastIndex(), "snapshot index \(index) beyond last index \(lastIndex())")
        let term = try term(at: index)
        latestSnapshot = Snapshot(metadata: SnapshotMetadata(index: index, term: term, confState: confState), data: data)
        compact(upTo: index)
    }

    /// Drops entries up to and including `index`, keeping `index` as the sentinel.
    package func compact(upTo index: LogIndex) {
        let offset = storedEntries[0].index
        if index <= offset { return }
        precondition(index <= lastIndex(), "compact \(index) beyond last index \(lastIndex())")
        let position = index.distance(from: offset)
        let sentinel = Entry(term: storedEntries[position].term, index: index)
        storedEntries = [sentinel] + storedEntries[(position + 1)...]
    }

    /// Appends entries, truncating any conflicting suffix first (the caller passes `Ready.entries`).
    package func append(_ newEntries: [Entry]) {
        guard let first = newEntries.first else { return }
        let offset = storedEntries[0].index
        // Entries already compacted away are committed; skip them.
        let usable = newEntries.drop { $0.index <= offset }
        guard let usableFirst = usable.first else { return }
        precondition(usableFirst.index <= lastIndex() + 1, "gap: append \(first.index) after \(lastIndex())")
        let keep = usableFirst.index.distance(from: offset)
        storedEntries.removeSubrange(keep...)
        storedEntries.append(contentsOf: usable)
    }
}

/// Returns a prefix of `entries` whose total size stays within `bytesMax`, but always at least one entry.
func limitBytes(_ entries: ArraySlice<Entry>, bytesMax: Int) -> [Entry] {
    var total = 0
    var count = 0
    for entry in entries {
        total += entry.byteCount
        if count > 0 && total > bytesMax { break }
        count += 1
    }
    return Array(entries.prefix(count))
}

/// The first log of a brand-new cluster: one committed conf-change entry per initial member, in term 1
/// (etcd-io/raft `bootstrap.go` does the same). Putting the initial membership in the log, not only in
/// storage metadata, lets a member added later learn it by replaying the log from index 1.
package func bootstrapLog(for confState: ConfState) -> (entries: [Entry], hardState: HardState) {
    let changes = confState.voters.map { ConfChange.addVoter($0) } + confState.learners.map { ConfChange.addLearner($0) }
    var entries: [Entry] = []
    for (offset, change) in changes.enumerated() {
        entries.append(Entry(term: Term(1), index: LogIndex(UInt64(offset + 1)), type: .confChange,
                             data: encodeConfChange(change)))
    }
    let hardState = HardState(term: Term(1), vote: .none, commit: LogIndex(UInt64(entries.count)))
    return (entries, hardState)
}

extension MemoryLogStorage {
    /// Writes the bootstrap log of a new cluster into an empty storage. The application must treat the
    /// bootstrap entries as applied (start with `Config.applied` = the returned index).
    @discardableResult
    package func bootstrap(_ confState: ConfState) -> LogIndex {
        precondition(lastIndex() == .zero, "bootstrap on a non-empty log")
        let (entries, hardState) = bootstrapLog(for: confState)
        append(entries)
        setHardState(hardState)
        self.confState = confState
        return hardState.commit
    }
}
