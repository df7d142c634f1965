internal import EtcdAPI

/// etcd's request validation at the API edge (etcd `api/v3rpc/key.go`): bad requests are refused
/// before they reach the write path, so they change nothing.
enum RequestChecks {
    static func check(_ request: Etcdserverpb_RangeRequest) throws(APIError) {
        if request.key.isEmpty { throw .emptyKey }
        // etcd 3.5's check: 3.4 answers a sort order outside the enum as if unsorted, and panics
        // on a sort target outside it.
        if case .UNRECOGNIZED = request.sortOrder { throw .invalidSortOption }
        if case .UNRECOGNIZED = request.sortTarget { throw .invalidSortOption }
    }

    static func check(_ request: Etcdserverpb_PutRequest) throws(APIError) {
        if request.key.isEmpty { throw .emptyKey }
        if request.ignoreValue && !request.value.isEmpty { throw .valueProvided }
        if request.ignoreLease && request.lease != 0 { throw .leaseProvided }
    }

    static func check(_ request: Etcdserverpb_DeleteRangeRequest) throws(APIError) {
        if request.key.isEmpty { throw .emptyKey }
    }

    static func check(_ request: Etcdserverpb_TxnRequest, maxTxnOps: Int) throws(APIError) {
        try checkOps(request, maxTxnOps: maxTxnOps)
        // Overlap checks come after the size checks to avoid quadratic work on huge txns (as etcd).
        _ = try intervals(of: request.success)
        _ = try intervals(of: request.failure)
    }

    private static func checkOps(_ request: Etcdserverpb_TxnRequest, maxTxnOps: Int) throws(APIError) {
        let opCount = max(request.compare.count, request.success.count, request.failure.count)
        if opCount > maxTxnOps { throw .tooManyOps }
        for compare in request.compare where compare.key.isEmpty { throw .emptyKey }
        for op in request.success + request.failure {
            switch op.request {
            case .requestRange(let range): try check(range)
            case .requestPut(let put): try check(put)
            case .requestDeleteRange(let delete): try check(delete)
            case .requestTxn(let nested): try checkOps(nested, maxTxnOps: maxTxnOps - opCount)
            case nil: throw .keyNotFound  // an empty op: etcd answers "key not found"
            }
        }
    }

    /// A half-open interval of keys where "" as the end means +infinity (etcd's string-affine
    /// intervals). NB: a delete with range_end "\0" becomes [key, "\0"), which contains nothing;
    /// etcd 3.4 behaves the same way, so from-key deletes never conflict with puts.
    private struct Interval {
        var start: [UInt8]
        var end: [UInt8]?  // nil: the single point `start`

        func contains(_ key: [UInt8]) -> Bool {
            guard let end else { return key == start }
            if key.lexicographicallyPrecedes(start) { return false }
            return end.isEmpty || key.lexicographicallyPrecedes(end)
        }
    }

    /// etcd `checkIntervals`: within one branch (and its nested txns) no key may be put twice or
    /// be both put and deleted. Returns the branch's puts and deletes for the parent's check.
    private static func intervals(of ops: [Etcdserverpb_RequestOp]) throws(APIError) -> (puts: Set<[UInt8]>, deletes: [Interval]) {
        var deletes: [Interval] = []
        for op in ops {
            if case .requestDeleteRange(let delete) = op.request {
                let end = delete.rangeEnd
                deletes.append(Interval(start: Array(delete.key), end: end.isEmpty ? nil : Array(end)))
            }
        }
        var puts = Set<[UInt8]>()
        for op in ops {
            guard case .requestTxn(let nested) = op.request else { continue }
            let then = try intervals(of: nested.success)
            let otherwise = try intervals(of: nested.failure)
            for key in then.puts {
                if puts.contains(key) || deletes.contains(where: { $0.contains(key) }) { throw .duplicateKey }
                puts.insert(key)
            }
            for key in otherwise.puts {
                // The same key in both branches of one nested txn is fine: only one runs.
                if puts.contains(key) && !then.puts.contains(key) { throw .duplicateKey }
                if deletes.contains(where: { $0.contains(key) }) { throw .duplicateKey }
                puts.insert(key)
            }
            deletes += then.deletes + otherwise.deletes
        }
        for op in ops {
            guard case .requestPut(let put) = op.request else { continue }
            let key = Array(put.key)
            if puts.contains(key) || deletes.contains(where: { $0.contains(key) }) { throw .duplicateKey }
            puts.insert(key)
        }
        return (puts, deletes)
    }
}
