// Entries and a snapshot that the core has accepted but the caller has not yet persisted.
// Modeled on etcd-io/raft `log_unstable.go`, without its asynchronous-write bookkeeping: our Ready contract
// persists a whole Ready before `advance`, so "in progress" and "unstable" coincide.

struct UnstableLog {
    /// A snapshot received from the leader, waiting to be persisted.
    var snapshot: Snapshot?
    /// Entries waiting to be persisted.
    /// Invariant: `entries[i].index == offset + i`.
    var entries: [Entry] = []
    /// The index of `entries[0]`, or where the next entry would go.
    /// Invariant: if `snapshot` is set, `offset == snapshot.metadata.index + 1` or later.
    var offset: LogIndex

    init(offset: LogIndex) { self.offset = offset }

    /// The first index, known only when an unstable snapshot exists.
    var maybeFirstIndex: LogIndex? { snapshot.map { $0.metadata.index + 1 } }

    /// The last index, known if there are unstable entries or an unstable snapshot.
    var maybeLastIndex: LogIndex? {
        if !entries.isEmpty { return offset + UInt64(entries.count - 1) }
        return snapshot?.metadata.index
    }

    func maybeTerm(at index: LogIndex) -> Term? {
        if index < offset {
            if let snapshot, snapshot.metadata.index == index { return snapshot.metadata.term }
            return nil
        }
        guard let last = maybeLastIndex, index <= last else { return nil }
        if entries.isEmpty { return nil }
        let entry = entries[index.distance(from: offset)]
        precondition(entry.index == index, "unstable entry \(entry.index) read back at \(index)")
        return entry.term
    }

    /// Drops entries up to `index` once persisted, unless they were replaced by a later conflicting append.
    mutating func stableTo(index: LogIndex, term: Term) {
        guard let currentTerm = maybeTerm(at: index), currentTerm == term, index >= offset else { return }
        entries.removeFirst(index.distance(from: offset) + 1)
        offset = index + 1
    }

    mutating func stableSnapshotTo(index: LogIndex) {
        if let snapshot, snapshot.metadata.index == index { self.snapshot = nil }
    }

    mutating func restore(_ snapshot: Snapshot) {
        offset = snapshot.metadata.index + 1
        entries = []
        self.snapshot = snapshot
    }

    mutating func truncateAndAppend(_ newEntries: ArraySlice<Entry>) {
        guard let first = newEntries.first?.index else { return }
        if first == offset + UInt64(entries.count) {
            entries.append(contentsOf: newEntries)
        } else if first <= offset {
            // Replaces everything unstable; the storage below `first` stays.
            offset = first
            entries = Array(newEntries)
        } else {
            entries.removeSubrange(first.distance(from: offset)...)
            entries.append(contentsOf: newEntries)
        }
    }

    func slice(from low: LogIndex, to high: LogIndex) -> ArraySlice<Entry> {
        precondition(low >= offset && high <= offset + UInt64(entries.count) && low <= high,
                     "unstable slice [\(low), \(high)) outside [\(offset), \(offset + UInt64(entries.count)))")
        return entries[low.distance(from: offset)..<high.distance(from: offset)]
    }
}
