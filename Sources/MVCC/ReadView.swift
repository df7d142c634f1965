package import Storage

/// A consistent, read-only view of the store at the revision published when it was taken.
/// Serves Range and read-only Txn requests without touching the write path.
package struct ReadView: @unchecked Sendable {
    // @unchecked: the store is thread-safe for reads and the consistent view is immutable.
    let store: MVCCStore
    let view: ConsistentView
    /// The store's revision when the view was taken.
    package let current: Revision
    /// The compaction point when the view was taken.
    package let compacted: Revision
    /// The compaction point whose history the view no longer holds (see `MVCCStore.historyRemovedRevision`).
    package let historyRemoved: Revision
    /// The live keys at `current`: a count at `current` is taken from them, not by a scan.
    let liveKeys: LiveKeySet
    /// The view holds history below its compaction point that a removal has not reached yet.
    package var removingHistory: Bool { historyRemoved < compacted }
    /// The storage view this one reads, for state kept beside the key space (membership, auth).
    package var consistentView: ConsistentView { view }

    package func range(_ request: RangeRequest) throws(MVCCError) -> RangeResult {
        store.operations.record(ranges: 1, puts: 0, deletes: 0)
        try checkReadable(request.revision)
        let reader = KeySpaceReader(store: store, view: view)
        return try mapStorage {
            try RangeExecution.run(request, headerRevision: current) { range, revision, limit in
                if case .key = range { return try reader.range(range, at: revision, limit: limit) }
                guard revision == current, limit != 0 else { return try reader.range(range, at: revision, limit: limit) }
                // A page (or a count) of the latest revision: only the page is read.
                let count = liveKeys.count(in: range)
                guard limit > 0 else { return ([], count) }
                let (keys, _) = try reader.liveRevisions(in: range, at: revision, limit: limit, stopsAtLimit: true)
                return (try reader.keyValues(at: keys.map(\.1)), count)
            }
        }
    }

    /// Up to `limit` (> 0) live keys of `range` at `revision` in key order, and whether the range
    /// has more: one chunk of a streamed range, read without counting the rest of the range.
    package func rangeChunk(
        _ range: KeyRange, at revision: Revision, limit: Int
    ) throws(MVCCError) -> (keyValues: [KeyValue], more: Bool) {
        precondition(limit > 0, "a chunk holds at least one key")
        try checkReadable(revision)
        let reader = KeySpaceReader(store: store, view: view)
        return try mapStorage {
            let (keys, count) = try reader.liveRevisions(in: range, at: revision, limit: limit, stopsAtLimit: true)
            return (try reader.keyValues(at: keys.map(\.1)), count > limit)
        }
    }

    /// Counts one range in etcd's mvcc metrics, for a range read in chunks.
    package func recordRange() {
        store.operations.record(ranges: 1, puts: 0, deletes: 0)
    }

    /// The number of live keys of `range` at `revision`.
    package func count(_ range: KeyRange, at revision: Revision) throws(MVCCError) -> Int {
        try checkReadable(revision)
        if revision == current { return liveKeys.count(in: range) }
        let reader = KeySpaceReader(store: store, view: view)
        return try mapStorage { try reader.liveRevisions(in: range, at: revision, limit: -1).count }
    }

    /// A read-only txn (no writes in any branch): evaluated entirely on this view.
    package func txn(_ request: TxnRequest) throws(MVCCError) -> TxnResult {
        precondition(request.isReadOnly, "a txn with writes must go through the write path")
        let txn = TxnWriter(store: store, view: view, beginRevision: current, compacted: compacted, leaseExists: { _ in false })
        defer { store.operations.record(txn) }
        return try mapStorage { try txn.txn(request) }
    }

    /// etcd `rangeKeys`: a future revision is checked first, then compaction.
    func checkReadable(_ revision: Revision) throws(MVCCError) {
        if revision > current { throw .futureRevision }
        if revision.value > 0 && revision < compacted { throw .compacted }
    }
}

/// Runs `body`, passing MVCC errors through and turning storage failures into `.storage`.
func mapStorage<T>(_ body: () throws -> T) throws(MVCCError) -> T {
    do {
        return try body()
    } catch let error as MVCCError {
        throw error
    } catch {
        throw .storage("\(error)")
    }
}
