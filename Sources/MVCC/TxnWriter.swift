internal import Storage

/// Executes one write request (Put, DeleteRange or Txn) as etcd's `storeTxnWrite` does: every
/// change shares one main revision with increasing sub revisions, reads inside the request see
/// its own earlier writes, and the changes go into one write batch so the request is atomic.
/// With a `view` it runs read-only (a read-only Txn served off the write path).
final class TxnWriter {
    let store: MVCCStore
    let reader: KeySpaceReader
    /// The store's revision before this request.
    let beginRevision: Revision
    let compacted: Revision
    let leaseExists: (LeaseID) -> Bool
    /// Where the changes go: the request's own batch, or the apply round's shared one.
    let batch: WriteBatch
    /// The latest state of each key this request changed (nil: deleted).
    private var overlay: [[UInt8]: KeyValue?] = [:]
    private var sub: Int64 = 0
    private(set) var events: [Event] = []
    /// Each key this request wrote, in order, with its new revision (nil: deleted).
    private(set) var written: [([UInt8], RevisionKey?)] = []
    /// The operations this request ran (etcd's mvcc metrics count them).
    private(set) var ranges = 0
    private(set) var puts = 0
    private(set) var deletes = 0

    init(
        store: MVCCStore, view: ConsistentView? = nil, beginRevision: Revision, compacted: Revision,
        batch: WriteBatch = WriteBatch(), leaseExists: @escaping (LeaseID) -> Bool
    ) {
        self.store = store
        self.batch = batch
        self.reader = KeySpaceReader(store: store, view: view)
        self.beginRevision = beginRevision
        self.compacted = compacted
        self.leaseExists = leaseExists
    }

    var hasChanges: Bool { sub > 0 }
    /// The revision this request's changes take.
    var revision: Revision { beginRevision.next }
    /// What a read inside the request sees (etcd: beginRev+1 once the txn has changed something).
    private var readRevision: Revision { hasChanges ? revision : beginRevision }

    // MARK: reads that see this request's own writes

    func latest(_ key: [UInt8]) throws -> KeyValue? {
        if let state = overlay[key] { return state }
        return try stored(key)
    }

    /// `key` as of `beginRevision`, before this request's writes. The writer (no view) reads at
    /// the store's latest revision, which the store's index of live keys answers without a seek.
    private func stored(_ key: [UInt8]) throws -> KeyValue? {
        guard reader.view == nil else { return try reader.get(key, at: beginRevision) }
        guard let revision = store.liveRevision(of: key) else { return nil }
        return try reader.change(at: revision).keyValue
    }

    /// Live keys in `range` as of `beginRevision`, before this request's writes.
    private func storedRange(_ range: KeyRange, limit: Int) throws -> (keyValues: [KeyValue], count: Int) {
        guard case .key(let key) = range else { return try reader.range(range, at: beginRevision, limit: limit) }
        guard let keyValue = try stored(key) else { return ([], 0) }
        return (limit < 0 ? [] : [keyValue], 1)
    }

    /// Live keys in `range` at the request's read revision, merged with its own writes.
    func latestRange(_ range: KeyRange, limit: Int) throws -> (keyValues: [KeyValue], count: Int) {
        let touched = overlay.keys.filter { range.contains($0) }
        if touched.isEmpty {
            return try storedRange(range, limit: limit)
        }
        var merged: [[UInt8]: KeyValue] = [:]
        for keyValue in try storedRange(range, limit: 0).keyValues {
            merged[keyValue.key] = keyValue
        }
        for key in touched { merged[key] = overlay[key]! }
        let sorted = merged.values.sorted { $0.key.lexicographicallyPrecedes($1.key) }
        let count = sorted.count
        if limit < 0 { return ([], count) }
        return (limit == 0 ? sorted : Array(sorted.prefix(limit)), count)
    }

    func range(_ request: RangeRequest) throws -> RangeResult {
        ranges += 1
        return try RangeExecution.run(request, headerRevision: readRevision) { range, revision, limit in
            if revision == readRevision || revision == beginRevision && !hasChanges {
                return try latestRange(range, limit: limit)
            }
            return try reader.range(range, at: revision, limit: limit)
        }
    }

    // MARK: checks made before anything is written (etcd `checkPut`, `checkRange`)

    func checkPut(_ put: PutRequest) throws {
        if put.lease != .none && !leaseExists(put.lease) {
            throw MVCCError.leaseNotFound(put.lease)
        }
        if put.ignoreValue || put.ignoreLease {
            if try latest(put.key) == nil { throw MVCCError.keyNotFound }
        }
    }

    func checkRange(_ range: RangeRequest) throws {
        if range.revision > beginRevision { throw MVCCError.futureRevision }
        if range.revision.value > 0 && range.revision < compacted { throw MVCCError.compacted }
    }

    // MARK: writes

    func put(_ put: PutRequest) throws -> PutResult {
        puts += 1
        // etcd reads the previous version through its counted Range when it needs it.
        if put.prevKV || put.ignoreValue || put.ignoreLease { ranges += 1 }
        let previous = try latest(put.key)
        var value = put.value
        var lease = put.lease
        if put.ignoreValue || put.ignoreLease {
            guard let previous else { throw MVCCError.keyNotFound }
            if put.ignoreValue { value = previous.value }
            if put.ignoreLease { lease = previous.lease }
        }
        let keyValue = KeyValue(
            key: put.key,
            createRevision: previous?.createRevision ?? revision,
            modRevision: revision,
            version: (previous?.version ?? 0) + 1,
            value: value,
            lease: lease
        )
        record(StoredChange(keyValue: keyValue, isTombstone: false))
        overlay[put.key] = .some(keyValue)
        events.append(Event(kind: .put, keyValue: keyValue, prevKV: previous))
        return PutResult(headerRevision: revision, prevKV: put.prevKV ? previous : nil)
    }

    func deleteRange(_ delete: DeleteRangeRequest) throws -> DeleteRangeResult {
        deletes += 1
        if delete.prevKV { ranges += 1 }
        let victims = try latestRange(delete.range, limit: 0).keyValues
        for victim in victims {
            let tombstone = KeyValue(
                key: victim.key, createRevision: Revision(0), modRevision: revision, version: 0, value: [],
                lease: .none
            )
            record(StoredChange(keyValue: tombstone, isTombstone: true))
            overlay[victim.key] = .some(nil)
            events.append(Event(kind: .delete, keyValue: tombstone, prevKV: victim))
        }
        return DeleteRangeResult(
            headerRevision: hasChanges ? revision : beginRevision,
            deleted: Int64(victims.count),
            prevKVs: delete.prevKV ? victims : []
        )
    }

    private func record(_ change: StoredChange) {
        let revisionKey = RevisionKey(main: revision, sub: sub)
        sub += 1
        batch.put(store.kv, revisionKey.bytes, change.encoded())
        var indexKey = KeyEncoding.encode(change.keyValue.key)
        indexKey.append(contentsOf: revisionKey.bytes)
        batch.put(store.keyIndex, indexKey, [change.isTombstone ? KeyIndexFlag.tombstone : KeyIndexFlag.live])
        written.append((change.keyValue.key, change.isTombstone ? nil : revisionKey))
    }

    // MARK: txn (etcd `applierV3backend.Txn`)

    func txn(_ request: TxnRequest) throws -> TxnResult {
        // Every compare, nested ones included, is evaluated against the state before the txn.
        let path = try comparePath(request)
        try check(request, path: path[...])
        var remaining = path[...]
        var result = try execute(request, path: &remaining)
        // etcd sets the revision on the outermost header only; nested txn headers stay zero.
        result.headerRevision = readRevision
        return result
    }

    private func comparePath(_ request: TxnRequest) throws -> [Bool] {
        let succeeded = try request.compares.allSatisfy(evaluate)
        var path = [succeeded]
        for op in succeeded ? request.success : request.failure {
            if case .txn(let nested) = op { path += try comparePath(nested) }
        }
        return path
    }

    private func evaluate(_ compare: Compare) throws -> Bool {
        ranges += 1  // etcd evaluates each compare with a counted Range
        let keyValues = try storedRange(compare.range, limit: 0).keyValues
        if keyValues.isEmpty {
            // etcd: a value compare on a missing key always fails (no way to tell nil from "").
            if case .value = compare.target { return false }
            return Self.compare(compare, KeyValue(key: [], createRevision: Revision(0), modRevision: Revision(0), version: 0, value: [], lease: .none))
        }
        return keyValues.allSatisfy { Self.compare(compare, $0) }
    }

    private static func compare(_ compare: Compare, _ keyValue: KeyValue) -> Bool {
        let ordering: Int
        switch compare.target {
        case .value(let value):
            ordering = keyValue.value == value ? 0 : (keyValue.value.lexicographicallyPrecedes(value) ? -1 : 1)
        case .version(let version): ordering = threeWay(keyValue.version, version)
        case .create(let revision): ordering = threeWay(keyValue.createRevision.value, revision.value)
        case .mod(let revision): ordering = threeWay(keyValue.modRevision.value, revision.value)
        case .lease(let lease): ordering = threeWay(keyValue.lease.value, lease.value)
        case .unrecognized: ordering = 0
        }
        switch compare.result {
        case .equal: return ordering == 0
        case .notEqual: return ordering != 0
        case .greater: return ordering > 0
        case .less: return ordering < 0
        case .unrecognized: return true
        }
    }

    private static func threeWay(_ a: Int64, _ b: Int64) -> Int { a == b ? 0 : (a < b ? -1 : 1) }

    /// etcd `checkRequests`: puts (leases, ignore_*) and ranges (revisions) on the chosen path,
    /// so that a txn that would fail midway fails before writing anything.
    private func check(_ request: TxnRequest, path: ArraySlice<Bool>) throws {
        var remaining = path
        try checkBranch(request, path: &remaining)
    }

    private func checkBranch(_ request: TxnRequest, path: inout ArraySlice<Bool>) throws {
        let succeeded = path.removeFirst()
        for op in succeeded ? request.success : request.failure {
            switch op {
            case .put(let put):
                if put.ignoreValue || put.ignoreLease { ranges += 1 }  // etcd's check reads with a counted Range
                try checkPut(put)
            case .range(let range): try checkRange(range)
            case .deleteRange: break
            case .txn(let nested): try checkBranch(nested, path: &path)
            }
        }
    }

    private func execute(_ request: TxnRequest, path: inout ArraySlice<Bool>) throws -> TxnResult {
        let succeeded = path.removeFirst()
        var responses: [ResponseOp] = []
        for op in succeeded ? request.success : request.failure {
            switch op {
            case .range(let range): responses.append(.range(try self.range(range)))
            case .put(let put): responses.append(.put(try self.put(put)))
            case .deleteRange(let delete): responses.append(.deleteRange(try deleteRange(delete)))
            case .txn(let nested): responses.append(.txn(try execute(nested, path: &path)))
            }
        }
        return TxnResult(succeeded: succeeded, responses: responses, headerRevision: Revision(0))
    }
}
