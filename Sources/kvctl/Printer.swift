// Output of command results, one type per `--write-out` format, as etcdctl's printer.go arranges it.

import EtcdAPI
import SwiftProtobuf

/// Renders command results in one output format. A format etcdctl has no output for throws `unsupported(_:)`.
protocol Printer {
    func put(_ response: Etcdserverpb_PutResponse) throws(CommandExit)
    func get(_ response: Etcdserverpb_RangeResponse) throws(CommandExit)
    func del(_ response: Etcdserverpb_DeleteRangeResponse) throws(CommandExit)
    func txn(_ response: Etcdserverpb_TxnResponse) throws(CommandExit)

    func memberList(_ response: Etcdserverpb_MemberListResponse) throws(CommandExit)
    func memberAdd(_ response: Etcdserverpb_MemberAddResponse) throws(CommandExit)
    func memberRemove(id: UInt64, _ response: Etcdserverpb_MemberRemoveResponse) throws(CommandExit)
    func memberUpdate(id: UInt64, _ response: Etcdserverpb_MemberUpdateResponse) throws(CommandExit)
    func memberPromote(id: UInt64, _ response: Etcdserverpb_MemberPromoteResponse) throws(CommandExit)
    func endpointHealth(_ list: [EndpointHealth]) throws(CommandExit)
    func endpointStatus(_ list: [EndpointStatus]) throws(CommandExit)
    func endpointHashKV(_ list: [EndpointHashKV]) throws(CommandExit)
    func moveLeader(from leaderID: UInt64, to targetID: UInt64, _ response: Etcdserverpb_MoveLeaderResponse)
        throws(CommandExit)
}

/// etcdctl's printerUnsupported: the format has no output for this result (exit code 4, after the call was made).
func unsupported(_ format: OutputFormat) -> CommandExit {
    CommandExit(.badFeature, "\(format.rawValue) not supported as output format")
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
        case .table: TablePrinter()
        case nil: nil
        }
    }
}

/// `-w table` (etcdctl printer_table.go): member lists and endpoint results as ASCII tables; nothing else.
struct TablePrinter: Printer {
    func put(_ response: Etcdserverpb_PutResponse) throws(CommandExit) { throw unsupported(.table) }
    func get(_ response: Etcdserverpb_RangeResponse) throws(CommandExit) { throw unsupported(.table) }
    func del(_ response: Etcdserverpb_DeleteRangeResponse) throws(CommandExit) { throw unsupported(.table) }
    func txn(_ response: Etcdserverpb_TxnResponse) throws(CommandExit) { throw unsupported(.table) }

    func memberList(_ response: Etcdserverpb_MemberListResponse) { render(ClusterRows.memberList(response)) }
    func memberAdd(_ response: Etcdserverpb_MemberAddResponse) throws(CommandExit) { throw unsupported(.table) }
    func memberRemove(id: UInt64, _ response: Etcdserverpb_MemberRemoveResponse) throws(CommandExit) {
        throw unsupported(.table)
    }
    func memberUpdate(id: UInt64, _ response: Etcdserverpb_MemberUpdateResponse) throws(CommandExit) {
        throw unsupported(.table)
    }
    func memberPromote(id: UInt64, _ response: Etcdserverpb_MemberPromoteResponse) throws(CommandExit) {
        throw unsupported(.table)
    }
    func endpointHealth(_ list: [EndpointHealth]) { render(ClusterRows.endpointHealth(list)) }
    func endpointStatus(_ list: [EndpointStatus]) { render(ClusterRows.endpointStatus(list)) }
    func endpointHashKV(_ list: [EndpointHashKV]) { render(ClusterRows.endpointHashKV(list)) }
    func moveLeader(from leaderID: UInt64, to targetID: UInt64, _ response: Etcdserverpb_MoveLeaderResponse)
        throws(CommandExit)
    { throw unsupported(.table) }

    private func render(_ table: (header: [String], rows: [[String]])) {
        Console.out(TableWriter.render(header: table.header, rows: table.rows))
    }
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

    func memberList(_ response: Etcdserverpb_MemberListResponse) { emit(response) }
    func memberAdd(_ response: Etcdserverpb_MemberAddResponse) { emit(response) }
    func memberRemove(id: UInt64, _ response: Etcdserverpb_MemberRemoveResponse) { emit(response) }
    func memberUpdate(id: UInt64, _ response: Etcdserverpb_MemberUpdateResponse) { emit(response) }
    func memberPromote(id: UInt64, _ response: Etcdserverpb_MemberPromoteResponse) { emit(response) }
    // etcdctl's endpoint lists are not protobuf messages, so it has no protobuf output for them.
    func endpointHealth(_ list: [EndpointHealth]) throws(CommandExit) { throw unsupported(.protobuf) }
    func endpointStatus(_ list: [EndpointStatus]) throws(CommandExit) { throw unsupported(.protobuf) }
    func endpointHashKV(_ list: [EndpointHashKV]) throws(CommandExit) { throw unsupported(.protobuf) }
    func moveLeader(from leaderID: UInt64, to targetID: UInt64, _ response: Etcdserverpb_MoveLeaderResponse) {
        emit(response)
    }
}
