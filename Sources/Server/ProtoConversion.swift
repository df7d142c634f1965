internal import EtcdAPI
internal import Foundation
internal import MVCC

// Proto ↔ domain conversions. Generated types stop here: MVCC sees only its own types.

extension RangeRequest {
    init(_ proto: Etcdserverpb_RangeRequest) {
        self.init(range: KeyRange(key: Array(proto.key), rangeEnd: Array(proto.rangeEnd)))
        limit = proto.limit
        revision = Revision(proto.revision)
        sortOrder = switch proto.sortOrder {
        case .none, .UNRECOGNIZED: .none
        case .ascend: .ascend
        case .descend: .descend
        }
        sortTarget = switch proto.sortTarget {
        case .key, .UNRECOGNIZED: .key
        case .version: .version
        case .create: .create
        case .mod: .mod
        case .value: .value
        }
        keysOnly = proto.keysOnly
        countOnly = proto.countOnly
        minModRevision = Revision(proto.minModRevision)
        maxModRevision = Revision(proto.maxModRevision)
        minCreateRevision = Revision(proto.minCreateRevision)
        maxCreateRevision = Revision(proto.maxCreateRevision)
    }
}

extension PutRequest {
    init(_ proto: Etcdserverpb_PutRequest) {
        self.init(key: Array(proto.key), value: Array(proto.value))
        lease = LeaseID(proto.lease)
        prevKV = proto.prevKv
        ignoreValue = proto.ignoreValue
        ignoreLease = proto.ignoreLease
    }
}

extension DeleteRangeRequest {
    init(_ proto: Etcdserverpb_DeleteRangeRequest) {
        self.init(range: KeyRange(key: Array(proto.key), rangeEnd: Array(proto.rangeEnd)))
        prevKV = proto.prevKv
    }
}

extension TxnRequest {
    init(_ proto: Etcdserverpb_TxnRequest) {
        self.init(
            compares: proto.compare.map(Compare.init),
            success: proto.success.compactMap(RequestOp.init),
            failure: proto.failure.compactMap(RequestOp.init)
        )
    }
}

extension RequestOp {
    init?(_ proto: Etcdserverpb_RequestOp) {
        switch proto.request {
        case .requestRange(let range): self = .range(RangeRequest(range))
        case .requestPut(let put): self = .put(PutRequest(put))
        case .requestDeleteRange(let delete): self = .deleteRange(DeleteRangeRequest(delete))
        case .requestTxn(let txn): self = .txn(TxnRequest(txn))
        case nil: return nil  // refused earlier by RequestChecks
        }
    }
}

extension Compare {
    init(_ proto: Etcdserverpb_Compare) {
        let target: Target = switch proto.target {
        case .version: .version(proto.version)
        case .create: .create(Revision(proto.createRevision))
        case .mod: .mod(Revision(proto.modRevision))
        case .value: .value(Array(proto.value))
        case .lease: .lease(LeaseID(proto.lease))
        case .UNRECOGNIZED: .unrecognized
        }
        let result: Result = switch proto.result {
        case .equal: .equal
        case .UNRECOGNIZED: .unrecognized
        case .greater: .greater
        case .less: .less
        case .notEqual: .notEqual
        }
        self.init(range: KeyRange(key: Array(proto.key), rangeEnd: Array(proto.rangeEnd)), target: target, result: result)
    }
}

extension Mvccpb_KeyValue {
    /// `keysOnly` leaves the value out, as a Range with `keys_only` answers.
    init(_ keyValue: KeyValue, keysOnly: Bool = false) {
        self.init()
        key = Data(keyValue.key)
        createRevision = keyValue.createRevision.value
        modRevision = keyValue.modRevision.value
        version = keyValue.version
        if !keysOnly { value = Data(keyValue.value) }
        lease = keyValue.lease.value
    }
}

extension Etcdserverpb_ResponseHeader {
    /// A header carrying only a revision: what etcd puts on responses nested in a txn.
    init(revision: Revision) {
        self.init()
        self.revision = revision.value
    }
}

extension Etcdserverpb_RangeResponse {
    init(_ result: consuming RangeResult) {
        self.init()
        header = Etcdserverpb_ResponseHeader(revision: result.headerRevision)
        more = result.more
        count = result.count
        // Converted from the back, so that each stored key-value is freed as soon as its protobuf
        // copy exists: mapping held both copies of an unpaged range at once (a get of 1M keys
        // peaked 895 MiB above the member's resident size).
        var keyValues = (consume result).keyValues
        var converted: [Mvccpb_KeyValue] = []
        converted.reserveCapacity(keyValues.count)
        while let keyValue = keyValues.popLast() { converted.append(Mvccpb_KeyValue(keyValue)) }
        converted.reverse()
        kvs = converted
    }
}

extension Etcdserverpb_PutResponse {
    init(_ result: PutResult) {
        self.init()
        header = Etcdserverpb_ResponseHeader(revision: result.headerRevision)
        if let previous = result.prevKV { prevKv = Mvccpb_KeyValue(previous) }
    }
}

extension Etcdserverpb_DeleteRangeResponse {
    init(_ result: DeleteRangeResult) {
        self.init()
        header = Etcdserverpb_ResponseHeader(revision: result.headerRevision)
        deleted = result.deleted
        prevKvs = result.prevKVs.map { Mvccpb_KeyValue($0) }
    }
}

extension Etcdserverpb_TxnResponse {
    init(_ result: TxnResult) {
        self.init()
        header = Etcdserverpb_ResponseHeader(revision: result.headerRevision)
        succeeded = result.succeeded
        responses = result.responses.map { response in
            var op = Etcdserverpb_ResponseOp()
            switch response {
            case .range(let range): op.responseRange = Etcdserverpb_RangeResponse(range)
            case .put(let put): op.responsePut = Etcdserverpb_PutResponse(put)
            case .deleteRange(let delete): op.responseDeleteRange = Etcdserverpb_DeleteRangeResponse(delete)
            case .txn(let txn): op.responseTxn = Etcdserverpb_TxnResponse(txn)
            }
            return op
        }
    }
}

extension WriteRequest {
    /// The MVCC request a log entry carries, or nil for entries that are not key-space writes.
    init?(_ request: Kvdpb_InternalRequest) {
        switch request.request {
        case .put(let put): self = .put(PutRequest(put))
        case .deleteRange(let delete): self = .deleteRange(DeleteRangeRequest(delete))
        case .txn(let txn): self = .txn(TxnRequest(txn))
        case .compaction(let compaction): self = .compact(Revision(compaction.revision), physical: compaction.physical)
        case .leaseGrant(let grant): self = .leaseGrant(LeaseID(grant.id), ttlSeconds: grant.ttl)
        case .leaseRevoke(let revoke): self = .leaseRevoke(LeaseID(revoke.id))
        case .memberAttributes, .alarm, .authUserAdd, .authUserDelete, .authUserChangePassword, .authUserGrantRole,
            .authUserRevokeRole, .authRoleAdd, .authRoleDelete, .authRoleGrantPermission, .authRoleRevokePermission,
            .authEnable, .authDisable, .authenticate, nil:
            return nil
        }
    }
}
