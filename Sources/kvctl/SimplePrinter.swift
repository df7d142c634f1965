// `-w simple` (etcdctl printer_simple.go): "OK" for put, the deleted count for del, SUCCESS/FAILURE for txn, and
// each key and value on its own line as raw bytes (or `\x`-escaped hex with `--hex`); member lists and endpoint
// results as comma-separated rows, membership changes and leader moves as one sentence, endpoint health on stderr.

import EtcdAPI
import Foundation

struct SimplePrinter: Printer {
    /// `--hex`: print keys and values as `\x61\x62`.
    let isHex: Bool
    /// `--print-value-only`: omit the key lines.
    let valueOnly: Bool

    func put(_ response: Etcdserverpb_PutResponse) {
        Console.out("OK\n")
        if response.hasPrevKv { printKV(response.prevKv) }
    }

    func get(_ response: Etcdserverpb_RangeResponse) {
        for kv in response.kvs { printKV(kv) }
    }

    func del(_ response: Etcdserverpb_DeleteRangeResponse) {
        Console.out("\(response.deleted)\n")
        for kv in response.prevKvs { printKV(kv) }
    }

    func txn(_ response: Etcdserverpb_TxnResponse) {
        Console.out(response.succeeded ? "SUCCESS\n" : "FAILURE\n")
        for op in response.responses {
            Console.out("\n")
            switch op.response {
            case .responseDeleteRange(let inner)?: del(inner)
            case .responsePut(let inner)?: put(inner)
            case .responseRange(let inner)?: get(inner)
            // NB: etcdctl prints Go's %+v of the op here; etcdctl itself never sends a nested txn.
            case .responseTxn?, nil: Console.out("unexpected response \(op)\n")
            }
        }
    }

    func memberList(_ response: Etcdserverpb_MemberListResponse) {
        Console.out(Self.rows(ClusterRows.memberList(response).rows))
    }

    func memberAdd(_ response: Etcdserverpb_MemberAddResponse) {
        Console.out(Self.memberChange(response.member.id, "added to", response.header))
    }

    func memberRemove(id: UInt64, _ response: Etcdserverpb_MemberRemoveResponse) {
        Console.out(Self.memberChange(id, "removed from", response.header))
    }

    func memberUpdate(id: UInt64, _ response: Etcdserverpb_MemberUpdateResponse) {
        Console.out(Self.memberChange(id, "updated in", response.header))
    }

    func memberPromote(id: UInt64, _ response: Etcdserverpb_MemberPromoteResponse) {
        Console.out(Self.memberChange(id, "promoted in", response.header))
    }

    /// etcdctl writes these lines to stderr (fmt.Fprintf(os.Stderr, ...)), not stdout.
    func endpointHealth(_ list: [EndpointHealth]) {
        Console.err(Self.healthLines(list))
    }

    func endpointStatus(_ list: [EndpointStatus]) {
        Console.out(Self.rows(ClusterRows.endpointStatus(list).rows))
    }

    func endpointHashKV(_ list: [EndpointHashKV]) {
        Console.out(Self.rows(ClusterRows.endpointHashKV(list).rows))
    }

    func moveLeader(from leaderID: UInt64, to targetID: UInt64, _ response: Etcdserverpb_MoveLeaderResponse) {
        // types.ID's String: hex without padding.
        let from = String(leaderID, radix: 16), to = String(targetID, radix: 16)
        Console.out("Leadership transferred from \(from) to \(to)\n")
    }

    static func rows(_ rows: [[String]]) -> String {
        rows.map { $0.joined(separator: ", ") + "\n" }.joined()
    }

    /// "Member %16x added to cluster %16x".
    static func memberChange(_ id: UInt64, _ verb: String, _ header: Etcdserverpb_ResponseHeader) -> String {
        "Member \(GoFormat.hexPadded16(id)) \(verb) cluster \(GoFormat.hexPadded16(header.clusterID))\n"
    }

    static func healthLines(_ list: [EndpointHealth]) -> String {
        list.map { health in
            health.error.isEmpty
                ? "\(health.endpoint) is healthy: successfully committed proposal: took = \(health.took)\n"
                : "\(health.endpoint) is unhealthy: failed to commit proposal: \(health.error)\n"
        }.joined()
    }

    private func printKV(_ kv: Mvccpb_KeyValue) {
        Console.out(bytes: Self.kvBytes(kv, isHex: isHex, valueOnly: valueOnly))
    }

    /// etcdctl's printKV: the key line (unless value-only), then the value line.
    static func kvBytes(_ kv: Mvccpb_KeyValue, isHex: Bool, valueOnly: Bool) -> [UInt8] {
        (valueOnly ? [] : render(kv.key, isHex: isHex) + [0x0A]) + render(kv.value, isHex: isHex) + [0x0A]
    }

    private static func render(_ data: Data, isHex: Bool) -> [UInt8] {
        guard isHex else { return Array(data) }
        return Array(data.map { "\\x" + GoFormat.hex2($0) }.joined().utf8)
    }
}
