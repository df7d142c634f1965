/// The key range a request covers, in etcd's three forms.
package enum KeyRange: Equatable, Sendable {
    /// Exactly one key (`range_end` empty).
    case key([UInt8])
    /// `[start, end)`.
    case range(start: [UInt8], end: [UInt8])
    /// Every key >= start (`range_end` is "\0").
    case from([UInt8])

    /// etcd's encoding: an empty `range_end` is one key, "\0" means "to the end of the key space".
    package init(key: [UInt8], rangeEnd: [UInt8]) {
        if rangeEnd.isEmpty {
            self = .key(key)
        } else if rangeEnd == [0] {
            self = .from(key)
        } else {
            self = .range(start: key, end: rangeEnd)
        }
    }

    package var start: [UInt8] {
        switch self {
        case .key(let key), .from(let key): key
        case .range(let start, _): start
        }
    }

    package func contains(_ key: [UInt8]) -> Bool {
        switch self {
        case .key(let only): key == only
        case .from(let start): !key.lexicographicallyPrecedes(start)
        case .range(let start, let end): !key.lexicographicallyPrecedes(start) && key.lexicographicallyPrecedes(end)
        }
    }
}

package enum SortOrder: Sendable { case none, ascend, descend }
package enum SortTarget: Sendable { case key, version, create, mod, value }

package struct RangeRequest: Sendable, Equatable {
    package var range: KeyRange
    package var limit: Int64 = 0
    /// 0 means the current revision.
    package var revision: Revision = Revision(0)
    package var sortOrder: SortOrder = .none
    package var sortTarget: SortTarget = .key
    package var keysOnly = false
    package var countOnly = false
    package var minModRevision = Revision(0)
    package var maxModRevision = Revision(0)
    package var minCreateRevision = Revision(0)
    package var maxCreateRevision = Revision(0)

    package init(range: KeyRange) { self.range = range }
}

package struct RangeResult: Sendable, Equatable {
    package var keyValues: [KeyValue]
    /// Keys in the range at the read revision, ignoring `limit` and the revision filters (as etcd).
    package var count: Int64
    package var more: Bool
    /// The store's current revision when the read was served (etcd reports this, not the read revision).
    package var headerRevision: Revision
}

package struct PutRequest: Sendable, Equatable {
    package var key: [UInt8]
    package var value: [UInt8]
    package var lease = LeaseID.none
    package var prevKV = false
    package var ignoreValue = false
    package var ignoreLease = false

    package init(key: [UInt8], value: [UInt8]) {
        self.key = key
        self.value = value
    }
}

package struct PutResult: Sendable, Equatable {
    package var headerRevision: Revision
    package var prevKV: KeyValue?
}

package struct DeleteRangeRequest: Sendable, Equatable {
    package var range: KeyRange
    package var prevKV = false
    package init(range: KeyRange) { self.range = range }
}

package struct DeleteRangeResult: Sendable, Equatable {
    package var headerRevision: Revision
    package var deleted: Int64
    package var prevKVs: [KeyValue]
}

package struct Compare: Sendable, Equatable {
    /// `unrecognized`: a result outside etcd's enum, which etcd 3.4 evaluates as true.
    package enum Result: Sendable { case equal, greater, less, notEqual, unrecognized }
    package enum Target: Sendable, Equatable {
        case version(Int64)
        case create(Revision)
        case mod(Revision)
        case value([UInt8])
        case lease(LeaseID)
        /// A target outside etcd's enum: etcd 3.4 compares nothing and takes the key as equal.
        case unrecognized
    }

    package var result: Result
    package var target: Target
    package var range: KeyRange

    package init(range: KeyRange, target: Target, result: Result) {
        self.range = range
        self.target = target
        self.result = result
    }
}

package indirect enum RequestOp: Sendable, Equatable {
    case range(RangeRequest)
    case put(PutRequest)
    case deleteRange(DeleteRangeRequest)
    case txn(TxnRequest)
}

package enum ResponseOp: Sendable, Equatable {
    case range(RangeResult)
    case put(PutResult)
    case deleteRange(DeleteRangeResult)
    case txn(TxnResult)
}

package struct TxnRequest: Sendable, Equatable {
    package var compares: [Compare]
    package var success: [RequestOp]
    package var failure: [RequestOp]

    package init(compares: [Compare], success: [RequestOp], failure: [RequestOp]) {
        self.compares = compares
        self.success = success
        self.failure = failure
    }

    /// A txn with no write in any branch (at any depth) never takes a revision.
    package var isReadOnly: Bool {
        (success + failure).allSatisfy { op in
            switch op {
            case .range: true
            case .put, .deleteRange: false
            case .txn(let nested): nested.isReadOnly
            }
        }
    }
}

package struct TxnResult: Sendable, Equatable {
    package var succeeded: Bool
    package var responses: [ResponseOp]
    package var headerRevision: Revision
}

package struct CompactResult: Sendable, Equatable {
    package var headerRevision: Revision
    package init(headerRevision: Revision) { self.headerRevision = headerRevision }
}

/// A request that goes through the write path (later: through Raft), in apply order.
package enum WriteRequest: Sendable, Equatable {
    case put(PutRequest)
    case deleteRange(DeleteRangeRequest)
    case txn(TxnRequest)
    case compact(Revision, physical: Bool)
    case leaseGrant(LeaseID, ttlSeconds: Int64)
    /// Revokes the lease and deletes every key attached to it, in one revision.
    case leaseRevoke(LeaseID)
}

extension WriteRequest {
    /// Whether the request may grow the database (etcd's quota cost > 0): a Put, a Txn with a
    /// Put in either branch, a lease grant.
    package var addsData: Bool {
        func puts(_ txn: TxnRequest) -> Bool {
            (txn.success + txn.failure).contains { op in
                switch op {
                case .put: true
                case .txn(let nested): puts(nested)
                case .range, .deleteRange: false
                }
            }
        }
        switch self {
        case .put, .leaseGrant: return true
        case .txn(let txn): return puts(txn)
        case .deleteRange, .compact, .leaseRevoke: return false
        }
    }
}

package enum WriteResult: Sendable, Equatable {
    case put(PutResult)
    case deleteRange(DeleteRangeResult)
    case txn(TxnResult)
    case compact(CompactResult)
    case leaseGrant(LeaseGrantResult)
    case leaseRevoke(headerRevision: Revision)
}

package struct LeaseGrantResult: Sendable, Equatable {
    package var id: LeaseID
    package var ttlSeconds: Int64
    package var headerRevision: Revision
}

/// One change to the key space, in revision order: what watchers will consume.
package struct Event: Sendable, Equatable {
    package enum Kind: Sendable { case put, delete }
    package var kind: Kind
    /// For a delete: the key and the delete's mod revision, other fields zero (as etcd).
    package var keyValue: KeyValue
    package var prevKV: KeyValue?
}
