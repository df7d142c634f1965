package import Storage
internal import Synchronization

/// etcd's revisioned key space on RocksDB:
/// - `kv`: revision key (main, sub) → the stored change (a key's version or a tombstone);
/// - `key_index`: encoded user key ‖ revision key → live/tombstone flag;
/// - `meta`: current and compacted revisions, and how far compacted history is removed.
///
/// Reads may come from any thread through `readView()`. Writes come from exactly one thread at a
/// time through `apply` (the write path serialises them): this is what makes the writer's state
/// (`writerRevision`) safe without a lock.
package final class MVCCStore: @unchecked Sendable {
    // @unchecked: `published` is behind a Mutex; the writer-only fields are touched only by the
    // single writer (the caller of `apply`), which the type's contract above requires.

    package static let columnFamilies = ["kv", "key_index", "meta", "lease"]

    let database: Database
    let kv: ColumnFamily
    let keyIndex: ColumnFamily
    let meta: ColumnFamily
    let lease: ColumnFamily
    /// Applied leases; written by the single writer, read by any thread.
    private let leases = Mutex(LeaseTable())

    /// What readers may see: only revisions whose writes are durable.
    private let published: Mutex<Revisions>
    /// The writer's view: includes requests applied in the current round but not yet synced.
    /// Invariant: published.current <= writer.current.
    private var writer: Revisions

    struct Revisions {
        /// The revision of the latest change (1 for an empty store, as etcd).
        var current: Revision
        /// The compaction point: reads below it fail (-1 before any compaction, as etcd).
        var compacted: Revision
        /// The compaction point whose history is removed (etcd's finished compaction): while it
        /// lags `compacted`, entries only reads below `compacted` could see are still stored.
        var historyRemoved: Revision
        /// The live keys at `current`, for counts (`liveKeys` has their revisions).
        var liveKeySet = LiveKeySet()
    }

    /// Where the removal of compacted history stands (writer-only): the compaction point it
    /// removes history below and the encoded key it resumes at.
    private var removal: (target: Revision, resumeAt: [UInt8])?

    /// The writer's index of the latest state: each live key's newest revision (writer-only),
    /// as etcd keeps its treeIndex in memory. A put or a single-key compare or delete asks it
    /// instead of seeking `key_index` in RocksDB (the seek was two thirds of a put's apply on the
    /// leader). Rebuilt from `key_index` when the store is opened or reloaded.
    /// Invariant: equals, for every key, the newest `key_index` entry when that entry is live.
    private var liveKeys: [[UInt8]: RevisionKey] = [:]

    /// The operations executed here, for etcd's mvcc metrics.
    package let operations = OperationCounts()

    static let currentRevisionKey = Array("current_revision".utf8)
    static let compactedRevisionKey = Array("compacted_revision".utf8)
    /// Absent in stores written before history was removed in the background, where every
    /// compaction removed its history when it was applied: then it equals the compacted revision.
    static let historyRemovedRevisionKey = Array("history_removed_revision".utf8)
    /// An opaque marker the caller stores atomically with each applied request (the Raft applied
    /// index), so that after a crash it re-applies exactly what is missing (etcd's consistent index).
    package static let appliedMarkerKey = Array("applied_marker".utf8)

    package init(database: Database) throws(MVCCError) {
        self.database = database
        kv = database.columnFamily("kv")
        keyIndex = database.columnFamily("key_index")
        meta = database.columnFamily("meta")
        lease = database.columnFamily("lease")
        var stored = try Self.readRevisions(database, meta)
        writer = stored
        published = Mutex(stored)
        try reloadLeases()
        (liveKeys, stored.liveKeySet) = try readLiveKeys()
        writer = stored
        published.withLock { $0 = stored }
    }

    /// Every live key's newest revision, from one pass over `key_index` (a member restarted on
    /// 300,000 keys was healthy as fast as before; the index costs it about 100 bytes a key),
    /// and the same keys in order.
    private func readLiveKeys() throws(MVCCError) -> ([[UInt8]: RevisionKey], LiveKeySet) {
        let (keys, _) = try mapStorage {
            try KeySpaceReader(store: self, view: nil).liveRevisions(in: .from([]), at: writer.current, limit: 0)
        }
        return (Dictionary(uniqueKeysWithValues: keys), LiveKeySet(sortedKeys: keys.lazy.map(\.0)))
    }

    /// The newest revision of `key` if it is live, as the writer sees it (writer-only).
    func liveRevision(of key: [UInt8]) -> RevisionKey? { liveKeys[key] }

    /// The writer's index of live keys, for tests that compare it with one rebuilt from storage.
    package var liveKeyRevisions: [[UInt8]: RevisionKey] { liveKeys }

    /// The lease table as of the writer's revision (what is being loaded).
    private func reloadLeases() throws(MVCCError) {
        let table = try mapStorage { try LeaseTable.load(store: self, at: writer.current) }
        leases.withLock { $0 = table }
    }

    /// Every granted lease with its attached keys.
    package func leaseRecords() -> [LeaseRecord] {
        leases.withLock { Array($0.records.values) }
    }

    package func leaseRecord(_ id: LeaseID) -> LeaseRecord? {
        leases.withLock { $0.records[id] }
    }

    func leaseExists(_ id: LeaseID) -> Bool {
        leases.withLock { $0.records[id] != nil }
    }

    private static func readRevisions(_ database: Database, _ meta: ColumnFamily) throws(MVCCError) -> Revisions {
        do {
            let compacted = try Self.readRevision(database, meta, Self.compactedRevisionKey) ?? Revision(-1)
            return Revisions(
                current: try Self.readRevision(database, meta, Self.currentRevisionKey) ?? Revision(1),
                compacted: compacted,
                historyRemoved: try Self.readRevision(database, meta, Self.historyRemovedRevisionKey) ?? compacted
            )
        } catch {
            throw .storage("\(error)")
        }
    }

    /// Re-reads the revisions after the caller replaced the state underneath (a snapshot install).
    /// Writer-only, like `apply`.
    package func reload() throws(MVCCError) {
        var stored = try Self.readRevisions(database, meta)
        writer = stored
        removal = nil
        try reloadLeases()
        (liveKeys, stored.liveKeySet) = try readLiveKeys()
        writer = stored
        published.withLock { $0 = stored }
    }

    /// The marker stored with the last applied request, if any.
    package func appliedMarker() throws -> [UInt8]? {
        try database.get(meta, Self.appliedMarkerKey)
    }

    private static func readRevision(_ database: Database, _ meta: ColumnFamily, _ key: [UInt8]) throws -> Revision? {
        guard let bytes = try database.get(meta, key) else { return nil }
        return Revision(Int64(bitPattern: readBigEndian(bytes, at: 0)))
    }

    package var currentRevision: Revision { published.withLock { $0.current } }
    package var compactedRevision: Revision { published.withLock { $0.compacted } }
    /// The compaction point whose history is removed; below `compactedRevision` while a removal runs.
    package var historyRemovedRevision: Revision { published.withLock { $0.historyRemoved } }

    /// A consistent read of the published state.
    package func readView() -> ReadView {
        // Take the RocksDB snapshot after reading the revisions: everything at or below
        // `current` is already written, and later writes have higher revisions, which reads ignore.
        let revisions = published.withLock { $0 }
        return ReadView(
            store: self, view: database.makeConsistentView(), current: revisions.current, compacted: revisions.compacted,
            historyRemoved: revisions.historyRemoved, liveKeys: revisions.liveKeySet)
    }

    /// Applies `requests` in order, each atomically; a failed request changes nothing. The round
    /// goes to RocksDB as one write batch; the applied marker and the current revision are written
    /// once per batch, as of its last request (every batch is atomic, so the marker in it always
    /// covers exactly the changes written with it); with `sync`,
    /// fsynced once before the round is published (group commit). Returns one result per
    /// request and the events of the round in revision order.
    ///
    /// Requests read committed state straight from RocksDB, not from the round's batch: a
    /// request that reads a key an earlier request of the round wrote has the batch written
    /// first (rare on the hot path, where a round's writes are to different keys).
    ///
    /// Must be called from one thread at a time (the write path's single writer).
    /// With `capped` (the NOSPACE alarm is active), requests that would add data fail with
    /// `noSpace` while deletes and compactions go on, as etcd's capped applier does; with
    /// `corrupt` (the CORRUPT alarm is active) every request fails, as etcd's corrupt applier does.
    package func apply(
        _ requests: [WriteRequest],
        markers: [[UInt8]]? = nil,
        sync: Bool,
        capped: Bool = false,
        corrupt: Bool = false
    ) -> (results: [Result<WriteResult, MVCCError>], events: [Event]) {
        precondition(markers == nil || markers!.count == requests.count, "one marker per request")
        var results: [Result<WriteResult, MVCCError>] = []
        results.reserveCapacity(requests.count)
        var events: [Event] = []
        let round = WriteBatch()
        // Keys written by the round's batch and not yet in RocksDB.
        var unwritten = Set<[UInt8]>()
        // The marker of the round's last request, and whether the revision moved since the last write.
        var marker: [UInt8]?
        var revisionMoved = false
        func writeRound() {
            if let marker { round.put(meta, Self.appliedMarkerKey, marker) }
            if revisionMoved { round.put(meta, Self.currentRevisionKey, writer.current.bytesBigEndian) }
            marker = nil
            revisionMoved = false
            guard round.count > 0 else { return }
            do {
                try database.write(round, sync: false)
            } catch {
                // A failed write to the state store is fail-stop: continuing would
                // acknowledge writes that may not exist.
                preconditionFailure("state store write failed: \(error)")
            }
            round.clear()
            unwritten.removeAll(keepingCapacity: true)
        }
        for (position, request) in requests.enumerated() {
            if case .compact = request {
                writeRound()
            } else if !unwritten.isEmpty && readRanges(of: request).contains(where: { range in
                // A single key (every put) is a hash lookup; only real ranges scan the round's keys.
                if case .key(let key) = range { return unwritten.contains(key) }
                return unwritten.contains(where: range.contains)
            }) {
                writeRound()
            }
            round.setSavePoint()
            do {
                if corrupt { throw MVCCError.corrupt }
                if capped && request.addsData { throw MVCCError.noSpace }
                let (result, requestEvents, moved) = try applyOne(request, marker: markers?[position], into: round)
                revisionMoved = revisionMoved || moved
                try round.popSavePoint()
                results.append(.success(result))
                for event in requestEvents { unwritten.insert(event.keyValue.key) }
                events.append(contentsOf: requestEvents)
            } catch let error as MVCCError {
                do {
                    try round.rollbackToSavePoint()
                } catch {
                    preconditionFailure("state store batch rollback failed: \(error)")
                }
                results.append(.failure(error))
            } catch {
                preconditionFailure("state store write failed: \(error)")
            }
            // A rejected request changes nothing but still moves the marker, so it is not re-applied.
            marker = markers?[position]
        }
        writeRound()
        if sync {
            do {
                try database.syncWAL()
            } catch {
                preconditionFailure("state store fsync failed: \(error)")
            }
        }
        let revisions = writer
        published.withLock { $0 = revisions }
        return (results, events)
    }

    /// Every key range `request` may read (a superset is fine): a put reads its key's previous
    /// version, a Txn its compares and all its branches, a revocation the lease's keys.
    private func readRanges(of request: WriteRequest) -> [KeyRange] {
        func ops(_ txn: TxnRequest) -> [KeyRange] {
            txn.compares.map(\.range) + (txn.success + txn.failure).flatMap { op -> [KeyRange] in
                switch op {
                case .range(let range): [range.range]
                case .put(let put): [.key(put.key)]
                case .deleteRange(let delete): [delete.range]
                case .txn(let nested): ops(nested)
                }
            }
        }
        switch request {
        case .put(let put): return [.key(put.key)]
        case .deleteRange(let delete): return [delete.range]
        case .txn(let txn): return ops(txn)
        case .leaseRevoke(let id): return leases.withLock { $0.records[id]?.keys.map { KeyRange.key($0) } ?? [] }
        case .leaseGrant, .compact: return []
        }
    }

    /// Applies one request into `round`; `revisionMoved` says whether it took a new revision.
    private func applyOne(
        _ request: WriteRequest, marker: [UInt8]?, into round: WriteBatch
    ) throws -> (result: WriteResult, events: [Event], revisionMoved: Bool) {
        if case .compact(let revision, _) = request {
            operations.record(ranges: 1, puts: 0, deletes: 0)  // etcd reads its header's revision with a Range
            return (.compact(try compact(to: revision, marker: marker)), [], false)
        }
        let txn = TxnWriter(
            store: self, beginRevision: writer.current, compacted: writer.compacted, batch: round,
            leaseExists: { [self] in leaseExists($0) })
        defer { operations.record(txn) }
        let result: WriteResult
        var grant: LeaseRecord?
        var revoked: LeaseID?
        switch request {
        case .leaseGrant(let id, let ttl):
            if leaseExists(id) { throw MVCCError.leaseExists(id) }
            txn.batch.put(lease, LeaseTable.key(id), Revision(ttl).bytesBigEndian)
            grant = LeaseRecord(id: id, ttlSeconds: ttl, keys: [])
            result = .leaseGrant(LeaseGrantResult(id: id, ttlSeconds: ttl, headerRevision: writer.current))
        case .leaseRevoke(let id):
            guard let record = leases.withLock({ $0.records[id] }) else { throw MVCCError.leaseNotFound(id) }
            for key in record.keys.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
                _ = try txn.deleteRange(DeleteRangeRequest(range: .key(key)))
            }
            txn.batch.delete(lease, LeaseTable.key(id))
            revoked = id
            result = .leaseRevoke(headerRevision: txn.hasChanges ? txn.revision : writer.current)
        case .put(let put):
            try txn.checkPut(put)
            result = .put(try txn.put(put))
        case .deleteRange(let delete):
            result = .deleteRange(try txn.deleteRange(delete))
        case .txn(let request):
            result = .txn(try txn.txn(request))
        case .compact:
            preconditionFailure("handled above")
        }
        if txn.hasChanges {
            writer.current = txn.revision
        }
        // Only now, with the request known to succeed: a rejected one changes nothing.
        for (key, revision) in txn.written {
            if let revision {
                if liveKeys.updateValue(revision, forKey: key) == nil { writer.liveKeySet.insert(key) }
            } else if liveKeys.removeValue(forKey: key) != nil {
                writer.liveKeySet.remove(key)
            }
        }
        let events = txn.events
        leases.withLock { table in
            if let grant { table.records[grant.id] = grant }
            for event in events {
                table.reattach(event.keyValue.key, from: event.prevKV?.lease, to: event.kind == .put ? event.keyValue.lease : nil)
            }
            if let revoked { table.records.removeValue(forKey: revoked) }
        }
        return (result, events, txn.hasChanges)
    }

    /// Moves the compaction point to `revision` (etcd's scheduled compaction): reads below it fail
    /// from now on. The history it hides is removed later, in small steps, by
    /// `removeCompactedHistory`, so that one compaction never holds up the writes behind it.
    private func compact(to revision: Revision, marker: [UInt8]?) throws -> CompactResult {
        if revision <= writer.compacted { throw MVCCError.compacted }
        if revision > writer.current { throw MVCCError.futureRevision }
        let batch = WriteBatch()
        if let marker { batch.put(meta, Self.appliedMarkerKey, marker) }
        batch.put(meta, Self.compactedRevisionKey, revision.bytesBigEndian)
        // Stored from the first compaction on, so that its absence keeps meaning "a store whose
        // compactions all removed their history at once".
        batch.put(meta, Self.historyRemovedRevisionKey, writer.historyRemoved.bytesBigEndian)
        try database.write(batch, sync: false)
        writer.compacted = revision
        return CompactResult(headerRevision: writer.current)
    }

    /// Whether compacted history is still stored (writer-only).
    package var removingHistory: Bool { writer.historyRemoved < writer.compacted }

    /// One step of removing the history below the compaction point (etcd's background
    /// compaction): scans about `limit` key index entries, whole keys only, and deletes every entry
    /// below the point but each key's version live at it, so reads at the point itself still
    /// succeed. Returns whether history is still stored. Writer-only, like `apply`: a step sees
    /// every write applied before it, and writes applied between steps only add revisions above
    /// the point, which no step touches. A crash between steps loses nothing: the removed history
    /// is recorded only with the last step, and a restarted member starts over.
    @discardableResult
    package func removeCompactedHistory(limit: Int) throws(MVCCError) -> Bool {
        guard removingHistory else { return false }
        // A compaction applied while one is being removed waits for the next pass.
        let (target, resumeAt) = removal ?? (writer.compacted, [])
        let next = try mapStorage { try removeHistory(below: target, from: resumeAt, limit: limit) }
        if let next {
            removal = (target, next)
        } else {
            removal = nil
            writer.historyRemoved = target
            published.withLock { $0.historyRemoved = target }
        }
        return removingHistory
    }

    /// Removes the history below `revision` of the keys from `start` (an encoded key, [] for the
    /// first) on, stopping at the first key boundary after `limit` entries; returns the key to
    /// resume at, or nil when the last key is done (then the batch also records the removal).
    private func removeHistory(below revision: Revision, from start: [UInt8], limit: Int) throws -> [UInt8]? {
        let batch = WriteBatch()
        let iterator = database.makeIterator(keyIndex, lowerBound: start.isEmpty ? nil : start)
        iterator.seekToFirst()
        var currentKey: [UInt8] = []
        var scanned = 0
        var resumeAt: [UInt8]?
        // Entries of the current key at or below the compaction point, oldest first.
        var old: [([UInt8], RevisionKey, Bool)] = []
        func flush() {
            guard let newest = old.last else { return }
            let keep = newest.2 ? 0 : 1  // a tombstone at or below the point ends the key's history
            for (indexKey, revisionKey, _) in old.dropLast(keep) {
                batch.delete(keyIndex, indexKey)
                batch.delete(kv, revisionKey.bytes)
            }
            old.removeAll(keepingCapacity: true)
        }
        while iterator.isValid {
            let indexKey = iterator.key
            let keyLength = indexKey.withUnsafeBytes { KeyEncoding.encodedLength(in: $0) }
            if !indexKey[0..<keyLength].elementsEqual(currentKey) {
                flush()
                currentKey = Array(indexKey[0..<keyLength])
                if scanned >= limit {
                    resumeAt = currentKey
                    break
                }
            }
            scanned += 1
            let revisionKey = RevisionKey(bytes: Array(indexKey[keyLength...]))
            if revisionKey.main <= revision {
                old.append((indexKey, revisionKey, iterator.value.first == KeyIndexFlag.tombstone))
            }
            iterator.next()
        }
        try iterator.checkError()
        if resumeAt == nil {
            flush()
            batch.put(meta, Self.historyRemovedRevisionKey, revision.bytesBigEndian)
        }
        if batch.count > 0 { try database.write(batch, sync: false) }
        return resumeAt
    }
}

extension Revision {
    var bytesBigEndian: [UInt8] {
        var out: [UInt8] = []
        appendBigEndian(UInt64(bitPattern: value), to: &out)
        return out
    }
}
