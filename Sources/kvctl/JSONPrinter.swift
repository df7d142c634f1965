// `-w json`: Go's encoding/json over etcd's gogo-generated structs, which is not proto3 JSON. Field names are the
// snake_case `json:` tags, every field is `omitempty` (zero numbers, false, empty bytes and empty lists vanish; an
// absent message vanishes, a present empty one is `{}`), bytes are standard base64, 64-bit integers are bare numbers,
// and a oneof is `"Response":{"ResponsePut":{...}}` (the Go field names: the oneof wrappers carry no json tag).

import EtcdAPI
import Foundation

struct JSONPrinter: Printer {
    func put(_ response: Etcdserverpb_PutResponse) { Console.out(Self.encode(response) + "\n") }
    func get(_ response: Etcdserverpb_RangeResponse) { Console.out(Self.encode(response) + "\n") }
    func del(_ response: Etcdserverpb_DeleteRangeResponse) { Console.out(Self.encode(response) + "\n") }
    func txn(_ response: Etcdserverpb_TxnResponse) { Console.out(Self.encode(response) + "\n") }

    static func encode(_ response: Etcdserverpb_PutResponse) -> String {
        var object = JSONObject()
        if response.hasHeader { object.raw("header", encode(response.header)) }
        if response.hasPrevKv { object.raw("prev_kv", encode(response.prevKv)) }
        return object.text
    }

    static func encode(_ response: Etcdserverpb_RangeResponse) -> String {
        var object = JSONObject()
        if response.hasHeader { object.raw("header", encode(response.header)) }
        object.list("kvs", response.kvs.map(encode))
        object.bool("more", response.more)
        object.number("count", response.count)
        return object.text
    }

    static func encode(_ response: Etcdserverpb_DeleteRangeResponse) -> String {
        var object = JSONObject()
        if response.hasHeader { object.raw("header", encode(response.header)) }
        object.number("deleted", response.deleted)
        object.list("prev_kvs", response.prevKvs.map(encode))
        return object.text
    }

    static func encode(_ response: Etcdserverpb_TxnResponse) -> String {
        var object = JSONObject()
        if response.hasHeader { object.raw("header", encode(response.header)) }
        object.bool("succeeded", response.succeeded)
        object.list("responses", response.responses.map(encode))
        return object.text
    }

    static func encode(_ op: Etcdserverpb_ResponseOp) -> String {
        let inner: String =
            switch op.response {
            case .responseRange(let value)?: "{\"ResponseRange\":\(encode(value))}"
            case .responsePut(let value)?: "{\"ResponsePut\":\(encode(value))}"
            case .responseDeleteRange(let value)?: "{\"ResponseDeleteRange\":\(encode(value))}"
            case .responseTxn(let value)?: "{\"ResponseTxn\":\(encode(value))}"
            case nil: "null"
            }
        return "{\"Response\":\(inner)}"
    }

    static func encode(_ header: Etcdserverpb_ResponseHeader) -> String {
        var object = JSONObject()
        object.number("cluster_id", header.clusterID)
        object.number("member_id", header.memberID)
        object.number("revision", header.revision)
        object.number("raft_term", header.raftTerm)
        return object.text
    }

    static func encode(_ kv: Mvccpb_KeyValue) -> String {
        var object = JSONObject()
        object.bytes("key", kv.key)
        object.number("create_revision", kv.createRevision)
        object.number("mod_revision", kv.modRevision)
        object.number("version", kv.version)
        object.bytes("value", kv.value)
        object.number("lease", kv.lease)
        return object.text
    }
}

/// Builds one JSON object with Go's `omitempty` rules.
private struct JSONObject {
    /// Members so far, already encoded as `"name":value`.
    private var members: [String] = []

    var text: String { "{" + members.joined(separator: ",") + "}" }

    mutating func raw(_ name: String, _ value: String) { members.append("\"\(name)\":\(value)") }

    mutating func number(_ name: String, _ value: some BinaryInteger) {
        if value != 0 { raw(name, "\(value)") }
    }

    mutating func bool(_ name: String, _ value: Bool) {
        if value { raw(name, "true") }
    }

    mutating func bytes(_ name: String, _ value: Data) {
        if !value.isEmpty { raw(name, "\"\(value.base64EncodedString())\"") }
    }

    mutating func list(_ name: String, _ values: [String]) {
        if !values.isEmpty { raw(name, "[" + values.joined(separator: ",") + "]") }
    }
}
