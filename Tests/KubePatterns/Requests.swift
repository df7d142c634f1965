// The request shapes of k8s.io/apiserver/pkg/storage/etcd3 (store.go and the etcd3 client's
// kubernetes.go): every write is a Txn guarded by the key's mod_revision, whose else-branch reads
// the key back so that a conflict costs no second round trip.

internal import EtcdAPI
internal import Foundation

extension Data {
    init(key: String) { self.init(key.utf8) }
    var text: String { String(decoding: self, as: UTF8.self) }
}

/// The end of the range holding every key that starts with `prefix` (clientv3.GetPrefixRangeEnd).
func prefixEnd(_ prefix: Data) -> Data {
    var end = [UInt8](prefix)
    while let last = end.last {
        if last < 0xff {
            end[end.count - 1] = last + 1
            return Data(end)
        }
        end.removeLast()
    }
    return Data([0])
}

enum Requests {
    static func compareModRevision(_ key: Data, _ revision: Int64) -> Etcdserverpb_Compare {
        var compare = Etcdserverpb_Compare()
        compare.key = key
        compare.target = .mod
        compare.result = .equal
        compare.modRevision = revision
        return compare
    }

    static func get(_ key: Data) -> Etcdserverpb_RequestOp {
        var range = Etcdserverpb_RangeRequest()
        range.key = key
        var op = Etcdserverpb_RequestOp()
        op.requestRange = range
        return op
    }

    static func put(_ key: Data, _ value: Data, lease: Int64 = 0) -> Etcdserverpb_RequestOp {
        var put = Etcdserverpb_PutRequest()
        put.key = key
        put.value = value
        put.lease = lease
        var op = Etcdserverpb_RequestOp()
        op.requestPut = put
        return op
    }

    /// store.Create (OptimisticPut with expected revision 0): the key must not exist.
    static func create(_ key: Data, _ value: Data, lease: Int64 = 0) -> Etcdserverpb_TxnRequest {
        optimisticPut(key, value, expectedModRevision: 0, lease: lease)
    }

    /// GuaranteedUpdate's write: succeeds only if nobody wrote the key since we read it.
    static func optimisticPut(_ key: Data, _ value: Data, expectedModRevision: Int64, lease: Int64 = 0)
        -> Etcdserverpb_TxnRequest
    {
        var txn = Etcdserverpb_TxnRequest()
        txn.compare = [compareModRevision(key, expectedModRevision)]
        txn.success = [put(key, value, lease: lease)]
        txn.failure = [get(key)]
        return txn
    }

    /// store.Delete's conditional delete (OptimisticDelete): prev_kv tells what was deleted.
    static func optimisticDelete(_ key: Data, expectedModRevision: Int64) -> Etcdserverpb_TxnRequest {
        var delete = Etcdserverpb_DeleteRangeRequest()
        delete.key = key
        delete.prevKv = true
        var op = Etcdserverpb_RequestOp()
        op.requestDeleteRange = delete
        var txn = Etcdserverpb_TxnRequest()
        txn.compare = [compareModRevision(key, expectedModRevision)]
        txn.success = [op]
        txn.failure = [get(key)]
        return txn
    }

    /// A list page: `limit` keys of [key, end) at `revision` (0: the latest, linearizable).
    static func list(from key: Data, to end: Data, limit: Int64, revision: Int64) -> Etcdserverpb_RangeRequest {
        var range = Etcdserverpb_RangeRequest()
        range.key = key
        range.rangeEnd = end
        range.limit = limit
        range.revision = revision
        return range
    }
}

extension Etcdserverpb_TxnResponse {
    /// The object the else-branch read back (nil if the key does not exist).
    var readBack: Mvccpb_KeyValue? {
        guard case .responseRange(let range)? = responses.first?.response else { return nil }
        return range.kvs.first
    }

    var deleted: Etcdserverpb_DeleteRangeResponse? {
        guard case .responseDeleteRange(let delete)? = responses.first?.response else { return nil }
        return delete
    }
}
