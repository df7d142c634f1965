internal import Storage

/// Reads the revisioned key space from RocksDB, either through a consistent view (API reads) or
/// at the latest written state (the single writer, which must see its own unsynced writes).
struct KeySpaceReader {
    let store: MVCCStore
    /// nil: read the latest state of the database.
    let view: ConsistentView?

    /// The revision of each key in `range` that is live at `revision`, in key order. Counts every
    /// live key but keeps only the first `limit` (0: all) of them.
    /// With `stopsAtLimit`, the scan ends at the first live key past `limit` instead (`count` is
    /// then at most `limit + 1`: more than `limit` means there are more).
    func liveRevisions(
        in range: KeyRange, at revision: Revision, limit: Int, stopsAtLimit: Bool = false
    ) throws -> (keys: [([UInt8], RevisionKey)], count: Int) {
        if case .key(let key) = range {
            guard let found = try latestEntry(of: key, atOrBelow: revision), !found.isTombstone else {
                return ([], 0)
            }
            return ([(key, found.revision)], 1)
        }
        let lower = KeyEncoding.encode(range.start)
        var upper: [UInt8]? = nil
        if case .range(_, let end) = range { upper = KeyEncoding.encode(end) }
        let iterator = store.database.makeIterator(store.keyIndex, lowerBound: lower, upperBound: upper, in: view)
        iterator.seek(lower)
        var keys: [([UInt8], RevisionKey)] = []
        var count = 0
        // The encoded key being scanned, its buffer reused from key to key: a count visits every
        // entry of the range (a million for a paginated list of a large prefix), so the loop
        // copies nothing out of RocksDB but the keys it returns.
        var currentKey: [UInt8] = []
        // The newest entry at or below `revision` of the key being scanned: (revision, tombstone).
        var candidate: (RevisionKey, Bool)?
        func flush() {
            if let (revisionKey, tombstone) = candidate, !tombstone {
                count += 1
                if limit == 0 || keys.count < limit {  // limit < 0: count only
                    keys.append((KeyEncoding.decode(currentKey), revisionKey))
                }
            }
            candidate = nil
        }
        while iterator.isValid && !(stopsAtLimit && count > limit) {
            let revisionKey = iterator.withKey { raw in
                let keyLength = KeyEncoding.encodedLength(in: raw)
                let encodedKey = UnsafeRawBufferPointer(rebasing: raw[0..<keyLength])
                if !encodedKey.elementsEqual(currentKey) {
                    flush()
                    currentKey.removeAll(keepingCapacity: true)
                    currentKey.append(contentsOf: encodedKey)
                }
                return RevisionKey(bytes: UnsafeRawBufferPointer(rebasing: raw[keyLength...]))
            }
            if revisionKey.main <= revision {
                candidate = (revisionKey, iterator.withValue { $0.first == KeyIndexFlag.tombstone })
            }
            iterator.next()
        }
        flush()
        try iterator.checkError()
        return (keys, count)
    }

    /// The newest key_index entry of `key` at or below `revision`.
    func latestEntry(of key: [UInt8], atOrBelow revision: Revision) throws -> (revision: RevisionKey, isTombstone: Bool)? {
        let encoded = KeyEncoding.encode(key)
        var upper = encoded
        upper.append(contentsOf: RevisionKey(main: revision.next, sub: 0).bytes)
        let iterator = store.database.makeIterator(store.keyIndex, lowerBound: encoded, upperBound: upper, in: view)
        iterator.seekForPrev(upper)
        if iterator.isValid, iterator.key == upper { iterator.previous() }
        guard iterator.isValid else {
            try iterator.checkError()
            return nil
        }
        let raw = iterator.key
        precondition(raw.count == encoded.count + 16 && raw.starts(with: encoded), "key_index bound violated")
        return (RevisionKey(bytes: Array(raw[encoded.count...])), iterator.value.first == KeyIndexFlag.tombstone)
    }

    func change(at revision: RevisionKey) throws -> StoredChange {
        guard let bytes = try store.database.get(store.kv, revision.bytes, in: view) else {
            preconditionFailure("key_index names revision \(revision.main).\(revision.sub) missing from kv")
        }
        return StoredChange(decoding: bytes)
    }

    /// The key-values stored at `revisions`, in their order. Read in batches of `batchMax`
    /// revisions, each sorted and looked up at once: a page's revisions lie anywhere in `kv`, and
    /// one lookup per key was most of a 10,000-key page's time.
    func keyValues(at revisions: [RevisionKey]) throws -> [KeyValue] {
        guard revisions.count > 1 else { return try revisions.map { try change(at: $0).keyValue } }
        var keyValues: [KeyValue] = []
        keyValues.reserveCapacity(revisions.count)
        for start in stride(from: 0, to: revisions.count, by: Self.batchMax) {
            let batch = revisions[start..<min(start + Self.batchMax, revisions.count)]
            let order = batch.indices.sorted { batch[$0] < batch[$1] }
            let values = try store.database.get(store.kv, sortedKeys: order.map { batch[$0].bytes }, in: view)
            var decoded = [KeyValue?](repeating: nil, count: batch.count)
            for (index, value) in zip(order, values) {
                guard let value else {
                    preconditionFailure("key_index names revision \(batch[index].main).\(batch[index].sub) missing from kv")
                }
                decoded[index - start] = StoredChange(decoding: value).keyValue
            }
            keyValues.append(contentsOf: decoded.lazy.map { $0! })
        }
        return keyValues
    }

    /// Revisions read per batch: large enough for RocksDB to share its index and block lookups
    /// among them, small enough that a get of every key holds only one batch twice.
    static let batchMax = 1024

    /// The live version of `key` at `revision`, or nil if absent or deleted.
    func get(_ key: [UInt8], at revision: Revision) throws -> KeyValue? {
        guard let entry = try latestEntry(of: key, atOrBelow: revision), !entry.isTombstone else { return nil }
        return try change(at: entry.revision).keyValue
    }

    func range(_ range: KeyRange, at revision: Revision, limit: Int) throws -> (keyValues: [KeyValue], count: Int) {
        let (keys, count) = try liveRevisions(in: range, at: revision, limit: limit)
        return (try keyValues(at: keys.map(\.1)), count)
    }
}

/// The one-byte value of a key_index entry.
enum KeyIndexFlag {
    static let live: UInt8 = 0
    static let tombstone: UInt8 = 1
}
