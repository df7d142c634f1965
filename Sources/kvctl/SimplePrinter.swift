// `-w simple` (etcdctl printer_simple.go): "OK" for put, the deleted count for del, SUCCESS/FAILURE for txn, and
// each key and value on its own line as raw bytes (or `\x`-escaped hex with `--hex`).

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

    private func printKV(_ kv: Mvccpb_KeyValue) {
        if !valueOnly { Console.out(bytes: render(kv.key) + [0x0A]) }
        Console.out(bytes: render(kv.value) + [0x0A])
    }

    private func render(_ data: Data) -> [UInt8] {
        guard isHex else { return Array(data) }
        return Array(data.map { "\\x" + GoFormat.hex2($0) }.joined().utf8)
    }
}
