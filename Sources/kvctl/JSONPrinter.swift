// `-w json`: Go's encoding/json over etcd's gogo-generated structs, which is not proto3 JSON. Field names are the
// snake_case `json:` tags, every field is `omitempty` (zero numbers, false, empty bytes and empty lists vanish; an
// absent message vanishes, a present empty one is `{}`), bytes are standard base64, 64-bit integers are bare numbers,
// and a oneof is `"Response":{"ResponsePut":{...}}` (the Go field names: the oneof wrappers carry no json tag).
// The endpoint commands print lists of etcdctl's own structs (epHealth, epStatus, epHashKV) with their tags.

import EtcdAPI
import Foundation

struct JSONPrinter: Printer {
    func put(_ response: Etcdserverpb_PutResponse) { Console.out(Self.encode(response) + "\n") }
    func get(_ response: Etcdserverpb_RangeResponse) { Console.out(Self.encode(response) + "\n") }
    func del(_ response: Etcdserverpb_DeleteRangeResponse) { Console.out(Self.encode(response) + "\n") }
    func txn(_ response: Etcdserverpb_TxnResponse) { Console.out(Self.encode(response) + "\n") }
    func memberList(_ response: Etcdserverpb_MemberListResponse) {
        Console.out(Self.encode(header: response.hasHeader ? response.header : nil, members: response.members) + "\n")
    }
    func memberAdd(_ response: Etcdserverpb_MemberAddResponse) { Console.out(Self.encode(response) + "\n") }
    func memberRemove(id: UInt64, _ response: Etcdserverpb_MemberRemoveResponse) {
        Console.out(Self.encode(header: response.hasHeader ? response.header : nil, members: response.members) + "\n")
    }
    func memberUpdate(id: UInt64, _ response: Etcdserverpb_MemberUpdateResponse) {
        Console.out(Self.encode(header: response.hasHeader ? response.header : nil, members: response.members) + "\n")
    }
    func memberPromote(id: UInt64, _ response: Etcdserverpb_MemberPromoteResponse) {
        Console.out(Self.encode(header: response.hasHeader ? response.header : nil, members: response.members) + "\n")
    }
    func endpointHealth(_ list: [EndpointHealth]) { Console.out(Self.encode(list) + "\n") }
    func endpointStatus(_ list: [EndpointStatus]) { Console.out(Self.encode(list) + "\n") }
    func endpointHashKV(_ list: [EndpointHashKV]) { Console.out(Self.encode(list) + "\n") }
    func moveLeader(from leaderID: UInt64, to targetID: UInt64, _ response: Etcdserverpb_MoveLeaderResponse) {
        var object = JSONObject()
        if response.hasHeader { object.raw("header", Self.encode(response.header)) }
        Console.out(object.text + "\n")
    }

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

extension JSONPrinter {
    /// MemberList/Remove/Update/Promote responses: the same two fields.
    static func encode(header: Etcdserverpb_ResponseHeader?, members: [Etcdserverpb_Member]) -> String {
        var object = JSONObject()
        if let header { object.raw("header", encode(header)) }
        object.list("members", members.map(encode))
        return object.text
    }

    static func encode(_ response: Etcdserverpb_MemberAddResponse) -> String {
        var object = JSONObject()
        if response.hasHeader { object.raw("header", encode(response.header)) }
        if response.hasMember { object.raw("member", encode(response.member)) }
        object.list("members", response.members.map(encode))
        return object.text
    }

    static func encode(_ member: Etcdserverpb_Member) -> String {
        var object = JSONObject()
        object.number("ID", member.id)
        object.string("name", member.name)
        object.list("peerURLs", member.peerUrls.map(EtcdErrors.goJSONString))
        object.list("clientURLs", member.clientUrls.map(EtcdErrors.goJSONString))
        object.bool("isLearner", member.isLearner)
        return object.text
    }

    /// epHealth's tags: only `error` is omitempty, so a failed check shows `"health":false` and maybe `"took":""`.
    static func encode(_ list: [EndpointHealth]) -> String {
        "["
            + list.map { health in
                var object = JSONObject()
                object.raw("endpoint", EtcdErrors.goJSONString(health.endpoint))
                object.raw("health", "\(health.isHealthy)")
                object.raw("took", EtcdErrors.goJSONString(health.took))
                object.string("error", health.error)
                return object.text
            }.joined(separator: ",") + "]"
    }

    static func encode(_ list: [EndpointStatus]) -> String {
        "["
            + list.map { status in
                var object = JSONObject()
                object.raw("Endpoint", EtcdErrors.goJSONString(status.endpoint))
                object.raw("Status", encode(status.response))
                return object.text
            }.joined(separator: ",") + "]"
    }

    static func encode(_ response: Etcdserverpb_StatusResponse) -> String {
        var object = JSONObject()
        if response.hasHeader { object.raw("header", encode(response.header)) }
        object.string("version", response.version)
        object.number("dbSize", response.dbSize)
        object.number("leader", response.leader)
        object.number("raftIndex", response.raftIndex)
        object.number("raftTerm", response.raftTerm)
        object.number("raftAppliedIndex", response.raftAppliedIndex)
        object.list("errors", response.errors.map(EtcdErrors.goJSONString))
        object.number("dbSizeInUse", response.dbSizeInUse)
        object.bool("isLearner", response.isLearner)
        return object.text
    }

    static func encode(_ list: [EndpointHashKV]) -> String {
        "["
            + list.map { hash in
                var object = JSONObject()
                object.raw("Endpoint", EtcdErrors.goJSONString(hash.endpoint))
                var inner = JSONObject()
                if hash.response.hasHeader { inner.raw("header", encode(hash.response.header)) }
                inner.number("hash", hash.response.hash)
                inner.number("compact_revision", hash.response.compactRevision)
                object.raw("HashKV", inner.text)
                return object.text
            }.joined(separator: ",") + "]"
    }
}

/// Builds one JSON object with Go's `omitempty` rules.
struct JSONObject {
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

    mutating func string(_ name: String, _ value: String) {
        if !value.isEmpty { raw(name, EtcdErrors.goJSONString(value)) }
    }

    mutating func bytes(_ name: String, _ value: Data) {
        if !value.isEmpty { raw(name, "\"\(value.base64EncodedString())\"") }
    }

    mutating func list(_ name: String, _ values: [String]) {
        if !values.isEmpty { raw(name, "[" + values.joined(separator: ",") + "]") }
    }
}
