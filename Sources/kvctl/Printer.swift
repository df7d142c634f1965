// Output of command results, one type per `--write-out` format, as etcdctl's printer.go arranges it.

import EtcdAPI
import SwiftProtobuf

/// Renders KV responses in one output format.
protocol Printer {
    func put(_ response: Etcdserverpb_PutResponse) throws(CommandExit)
    func get(_ response: Etcdserverpb_RangeResponse) throws(CommandExit)
    func del(_ response: Etcdserverpb_DeleteRangeResponse) throws(CommandExit)
    func txn(_ response: Etcdserverpb_TxnResponse) throws(CommandExit)
}

/// The `--write-out` formats etcdctl 3.4 knows.
enum OutputFormat: String {
    case simple, json, fields, protobuf, table

    /// The printer, or nil for a name etcdctl does not know ("unsupported output format").
    static func printer(named name: String, isHex: Bool, valueOnly: Bool) -> (any Printer)? {
        switch OutputFormat(rawValue: name) {
        case .simple: SimplePrinter(isHex: isHex, valueOnly: valueOnly)
        case .json: JSONPrinter()
        case .fields: FieldsPrinter()
        case .protobuf: ProtobufPrinter()
        case .table: UnsupportedPrinter(format: "table")
        case nil: nil
        }
    }
}

/// etcdctl's `table` printer has no KV output: it fails after the call, with exit code 4.
struct UnsupportedPrinter: Printer {
    /// The format name in the message.
    let format: String

    private func fail() throws(CommandExit) {
        throw CommandExit(.badFeature, "\(format) not supported as output format")
    }
    func put(_ response: Etcdserverpb_PutResponse) throws(CommandExit) { try fail() }
    func get(_ response: Etcdserverpb_RangeResponse) throws(CommandExit) { try fail() }
    func del(_ response: Etcdserverpb_DeleteRangeResponse) throws(CommandExit) { try fail() }
    func txn(_ response: Etcdserverpb_TxnResponse) throws(CommandExit) { try fail() }
}

/// `-w protobuf`: the response's wire encoding, nothing else (etcdctl's `fmt.Print(string(b))`).
struct ProtobufPrinter: Printer {
    private func emit(_ message: some SwiftProtobuf.Message) {
        // Serialising an in-memory message cannot fail for the proto3 types here (no required fields).
        let bytes: [UInt8] = (try? message.serializedBytes()) ?? []
        Console.out(bytes: bytes)
    }

    func put(_ response: Etcdserverpb_PutResponse) { emit(response) }
    func get(_ response: Etcdserverpb_RangeResponse) { emit(response) }
    func del(_ response: Etcdserverpb_DeleteRangeResponse) { emit(response) }
    func txn(_ response: Etcdserverpb_TxnResponse) { emit(response) }
}
