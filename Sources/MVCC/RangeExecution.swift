/// etcd's Range semantics on top of a source of live keys (etcd `applierV3backend.Range`):
/// the fetch limit, the revision filters, the sort, `more` and `count`.
enum RangeExecution {
    /// `fetch(range, revision, limit)` returns the live keys at `revision` (first `limit`, 0 = all)
    /// and the number of live keys in the whole range.
    static func run(
        _ request: RangeRequest,
        headerRevision: Revision,
        fetch: (KeyRange, Revision, Int) throws -> (keyValues: [KeyValue], count: Int)
    ) throws -> RangeResult {
        var limit = max(0, Int(request.limit))  // etcd treats a negative limit as no limit
        let filters = request.minModRevision.value != 0 || request.maxModRevision.value != 0
            || request.minCreateRevision.value != 0 || request.maxCreateRevision.value != 0
        if request.sortOrder != .none || filters {
            limit = 0  // fetch everything; sort and truncate afterwards
        }
        if limit > 0 {
            limit += 1  // one extra for `more`
        }
        let revision = request.revision.value > 0 ? request.revision : headerRevision
        var (keyValues, count) = request.countOnly ? ([], 0) : try fetch(request.range, revision, limit)
        if request.countOnly {
            count = try fetch(request.range, revision, -1).count
        }
        if request.maxModRevision.value != 0 { keyValues.removeAll { $0.modRevision > request.maxModRevision } }
        if request.minModRevision.value != 0 { keyValues.removeAll { $0.modRevision < request.minModRevision } }
        if request.maxCreateRevision.value != 0 { keyValues.removeAll { $0.createRevision > request.maxCreateRevision } }
        if request.minCreateRevision.value != 0 { keyValues.removeAll { $0.createRevision < request.minCreateRevision } }

        var order = request.sortOrder
        if request.sortTarget != .key && order == .none {
            order = .ascend  // etcd: results are already in key order, so only non-key targets sort by default
        }
        if order != .none {
            keyValues = stableSorted(keyValues, by: request.sortTarget, descending: order == .descend)
        }
        var more = false
        if request.limit > 0 && keyValues.count > Int(request.limit) {
            keyValues.removeLast(keyValues.count - Int(request.limit))
            more = true
        }
        if request.keysOnly {
            for i in keyValues.indices { keyValues[i].value = [] }
        }
        return RangeResult(keyValues: keyValues, count: Int64(count), more: more, headerRevision: headerRevision)
    }

    /// Stable, so ties keep key order: Go's sort.Sort is an insertion sort for the short slices
    /// that clients compare, and that is stable too.
    private static func stableSorted(_ keyValues: [KeyValue], by target: SortTarget, descending: Bool) -> [KeyValue] {
        func less(_ a: KeyValue, _ b: KeyValue) -> Bool {
            switch target {
            case .key: a.key.lexicographicallyPrecedes(b.key)
            case .version: a.version < b.version
            case .create: a.createRevision < b.createRevision
            case .mod: a.modRevision < b.modRevision
            case .value: a.value.lexicographicallyPrecedes(b.value)
            }
        }
        let indexed = keyValues.enumerated().map { ($0.offset, $0.element) }
        return indexed.sorted { x, y in
            let (a, b) = descending ? (y.1, x.1) : (x.1, y.1)
            if less(a, b) { return true }
            if less(b, a) { return false }
            return x.0 < y.0
        }.map(\.1)
    }
}
