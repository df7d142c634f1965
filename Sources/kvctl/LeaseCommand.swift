// `lease grant|revoke|timetolive|list|keep-alive` (etcdctl lease_command.go) and their output in each format
// (printer_simple.go, printer_json.go over clientv3's lease structs, printer_fields.go).

import EtcdAPI
import Foundation
import KVClient
import SwiftProtobuf

enum LeaseCommand {
    static let timeToLiveFlags = [FlagSpec(name: "keys", kind: .bool, defaultValue: "false")]
    static let keepAliveFlags = [FlagSpec(name: "once", kind: .bool, defaultValue: "false")]

    static func grant(_ flags: ParsedFlags) async {
        guard flags.positional.count == 1 else { exitWithError(.badArgs, "lease grant command needs TTL argument") }
        let ttl: Int64
        do {
            ttl = try GoParse.int64(flags.positional[0], base: 10)
        } catch {
            exitWithError(.badArgs, "bad TTL (\(error.message))")
        }
        let session = Session.make(flags)
        let response = await session.callOrExit(timeout: session.commandTimeout, prefix: "failed to grant lease") {
            client, timeout in try await client.leaseGrant(ttlSeconds: ttl, timeout: timeout)
        }
        session.write { format throws(CommandExit) in try LeaseOutput.grant(response, format) }
    }

    static func revoke(_ flags: ParsedFlags) async {
        guard flags.positional.count == 1 else { exitWithError(.badArgs, "lease revoke command needs 1 argument") }
        let id = leaseID(flags.positional[0])
        let session = Session.make(flags)
        let response = await session.callOrExit(timeout: session.commandTimeout, prefix: "failed to revoke lease") {
            client, timeout in try await client.leaseRevoke(id: id, timeout: timeout)
        }
        session.write { format throws(CommandExit) in try LeaseOutput.revoke(id: id, response, format) }
    }

    static func timeToLive(_ flags: ParsedFlags) async {
        guard flags.positional.count == 1 else {
            exitWithError(.badArgs, "lease timetolive command needs lease ID as argument")
        }
        let id = leaseID(flags.positional[0])
        let keys = flags.bool("keys")
        let session = Session.make(flags)
        // etcdctl passes context.TODO(): no command timeout, and a failure is a connection failure (exit 2).
        let response = await session.callOrExit(timeout: nil, code: .badConnection) { client, timeout in
            try await client.leaseTimeToLive(id: id, keys: keys, timeout: timeout)
        }
        session.write { format throws(CommandExit) in try LeaseOutput.timeToLive(response, keys: keys, format) }
    }

    static func list(_ flags: ParsedFlags) async {
        let session = Session.make(flags)
        let response = await session.callOrExit(timeout: nil, code: .badConnection) { client, timeout in
            try await client.leaseLeases(timeout: timeout)
        }
        session.write { format throws(CommandExit) in try LeaseOutput.leases(response, format) }
    }

    static func keepAlive(_ flags: ParsedFlags) async {
        guard flags.positional.count == 1 else {
            exitWithError(.badArgs, "lease keep-alive command needs lease ID as argument")
        }
        let id = leaseID(flags.positional[0])
        let session = Session.make(flags)
        if flags.bool("once") {
            let response = await session.callOrExit(timeout: nil, code: .badConnection, warn: false) { client, timeout in
                let response = try await client.leaseKeepAliveOnce(id: id, timeout: timeout)
                // clientv3's KeepAliveOnce turns a TTL of 0 or less into ErrLeaseNotFound.
                if response.ttl <= 0 {
                    throw EtcdClientError(code: .notFound, message: "etcdserver: requested lease not found")
                }
                return response
            }
            session.write { format throws(CommandExit) in try LeaseOutput.keepAlive(response, format) }
            return
        }
        let format = session.outputFormat
        let isHex = session.isHex
        _ = await session.callOrExit(timeout: nil, code: .badConnection, warn: false) { client, timeout in
            try await client.leaseKeepAlive(id: id, timeout: timeout) { response in
                // The response that reports the lease gone ends clientv3's channel without being delivered.
                guard response.ttl > 0 else { return }
                do throws(CommandExit) {
                    Console.out(bytes: try LeaseOutput.keepAlive(response, OutputStyle(format, isHex: isHex)))
                } catch {
                    exitWithError(error.code, error.message)
                }
            }
        }
        if format == "simple" { Console.out("lease \(hex16(id)) expired or revoked.\n") }
    }

    /// etcdctl's leaseFromArgs: a hexadecimal ID.
    static func leaseID(_ text: String) -> Int64 {
        do {
            return try GoParse.int64(text, base: 16)
        } catch {
            exitWithError(.badArgs, "bad lease ID arg (\(error.message)), expecting ID in Hex")
        }
    }

    /// Go's %016x of a lease ID.
    static func hex16(_ id: Int64) -> String {
        let digits = String(id.magnitude, radix: 16)
        return (id < 0 ? "-" : "") + String(repeating: "0", count: max(0, 16 - digits.count)) + digits
    }
}

/// The output format and the options of the simple one, for commands whose results the `Printer` protocol does not
/// cover (they render to bytes, so that tests can compare them).
struct OutputStyle {
    var format: OutputFormat
    var isHex: Bool

    init(_ name: String, isHex: Bool) {
        // Session.make has already refused a name etcdctl does not know.
        self.format = OutputFormat(rawValue: name) ?? .simple
        self.isHex = isHex
    }

    init(_ format: OutputFormat, isHex: Bool = false) {
        self.format = format
        self.isHex = isHex
    }
}


enum LeaseOutput {
    static func grant(_ response: Etcdserverpb_LeaseGrantResponse, _ style: OutputStyle) throws(CommandExit) -> [UInt8] {
        switch style.format {
        case .simple: return text("lease \(LeaseCommand.hex16(response.id)) granted with TTL(\(response.ttl)s)\n")
        case .json:
            // clientv3.LeaseGrantResponse embeds *pb.ResponseHeader, so its fields are promoted; the rest have no tags.
            var object = headerFields(response.hasHeader ? response.header : nil)
            object.raw("ID", "\(response.id)")
            object.raw("TTL", "\(response.ttl)")
            object.raw("Error", EtcdErrors.goJSONString(response.error))
            return text(object.text + "\n")
        case .fields:
            return text(FieldsPrinter.headerLines(response.header) + "\"ID\" : \(response.id)\n\"TTL\" : \(response.ttl)\n")
        case .protobuf: return headerBytes(response.hasHeader ? response.header : nil)
        case .table: throw unsupported(.table)
        }
    }

    static func revoke(
        id: Int64, _ response: Etcdserverpb_LeaseRevokeResponse, _ style: OutputStyle
    ) throws(CommandExit) -> [UInt8] {
        switch style.format {
        case .simple: return text("lease \(LeaseCommand.hex16(id)) revoked\n")
        case .json:
            var object = JSONObject()
            if response.hasHeader { object.raw("header", JSONPrinter.encode(response.header)) }
            return text(object.text + "\n")
        case .fields: return text(FieldsPrinter.headerLines(response.header))
        case .protobuf:
            // pb.LeaseRevokeResponse under another name loses its Marshal; Go's %v shows the header's String().
            let header = response.hasHeader ? "{" + compactText(response.header) + "}" : "{<nil>}"
            throw CommandExit(
                .badFeature, "marshal unsupported for type clientv3.LeaseRevokeResponse (\(header))")
        case .table: throw unsupported(.table)
        }
    }

    static func keepAlive(
        _ response: Etcdserverpb_LeaseKeepAliveResponse, _ style: OutputStyle
    ) throws(CommandExit) -> [UInt8] {
        switch style.format {
        case .simple: return text("lease \(LeaseCommand.hex16(response.id)) keepalived with TTL(\(response.ttl))\n")
        case .json:
            var object = headerFields(response.hasHeader ? response.header : nil)
            object.raw("ID", "\(response.id)")
            object.raw("TTL", "\(response.ttl)")
            return text(object.text + "\n")
        case .fields:
            return text(FieldsPrinter.headerLines(response.header) + "\"ID\" : \(response.id)\n\"TTL\" : \(response.ttl)\n")
        case .protobuf: return headerBytes(response.hasHeader ? response.header : nil)
        case .table: throw unsupported(.table)
        }
    }

    static func timeToLive(
        _ response: Etcdserverpb_LeaseTimeToLiveResponse, keys: Bool, _ style: OutputStyle
    ) throws(CommandExit) -> [UInt8] {
        switch style.format {
        case .simple:
            let id = LeaseCommand.hex16(response.id)
            if response.grantedTtl == 0 && response.ttl == -1 { return text("lease \(id) already expired\n") }
            var line = "lease \(id) granted with TTL(\(response.grantedTtl)s), remaining(\(response.ttl)s)"
            var bytes = Array(line.utf8)
            if keys {
                // Go's %v of a []string: "[a b]", the keys' bytes as they are.
                line = ", attached keys(["
                bytes += Array(line.utf8) + Array(response.keys.map { Array($0) }.joined(separator: [0x20])) + [0x5D, 0x29]
            }
            return bytes + [0x0A]
        case .json:
            var object = headerFields(response.hasHeader ? response.header : nil)
            object.raw("id", "\(response.id)")
            object.raw("ttl", "\(response.ttl)")
            object.raw("granted-ttl", "\(response.grantedTtl)")
            // A nil [][]byte is `null`; the server leaves the list empty (nil) without --keys.
            let keysJSON =
                response.keys.isEmpty
                ? "null" : "[" + response.keys.map { "\"\($0.base64EncodedString())\"" }.joined(separator: ",") + "]"
            object.raw("keys", keysJSON)
            return text(object.text + "\n")
        case .fields:
            return text(
                FieldsPrinter.headerLines(response.header) + "\"ID\" : \(response.id)\n\"TTL\" : \(response.ttl)\n"
                    + "\"GrantedTTL\" : \(response.grantedTtl)\n"
                    + response.keys.map { "\"Key\" : \(GoFormat.quote(Array($0)))\n" }.joined())
        case .protobuf: return headerBytes(response.hasHeader ? response.header : nil)
        case .table: throw unsupported(.table)
        }
    }

    static func leases(_ response: Etcdserverpb_LeaseLeasesResponse, _ style: OutputStyle) throws(CommandExit) -> [UInt8] {
        switch style.format {
        case .simple:
            return text(
                "found \(response.leases.count) leases\n"
                    + response.leases.map { LeaseCommand.hex16($0.id) + "\n" }.joined())
        case .json:
            var object = headerFields(response.hasHeader ? response.header : nil)
            object.raw("leases", "[" + response.leases.map { "{\"id\":\($0.id)}" }.joined(separator: ",") + "]")
            return text(object.text + "\n")
        case .fields:
            return text(
                FieldsPrinter.headerLines(response.header) + response.leases.map { "\"ID\" : \($0.id)\n" }.joined())
        case .protobuf: return headerBytes(response.hasHeader ? response.header : nil)
        case .table: throw unsupported(.table)
        }
    }

    /// clientv3's lease structs embed *pb.ResponseHeader, so etcdctl's protobuf writer finds the header's promoted
    /// Marshal and prints the header alone.
    private static func headerBytes(_ header: Etcdserverpb_ResponseHeader?) -> [UInt8] {
        // Serialising an in-memory proto3 message cannot fail.
        header.map { (try? $0.serializedBytes()) ?? [] } ?? []
    }

    /// golang/protobuf's CompactTextString of a header: each set field as `name:value `.
    static func compactText(_ header: Etcdserverpb_ResponseHeader) -> String {
        [("cluster_id", header.clusterID), ("member_id", header.memberID)].filter { $0.1 != 0 }
            .map { "\($0.0):\($0.1) " }.joined()
            + [("revision", header.revision), ("raft_term", Int64(bitPattern: header.raftTerm))].filter { $0.1 != 0 }
            .map { "\($0.0):\($0.1) " }.joined()
    }

    /// The promoted fields of an embedded *pb.ResponseHeader (all omitempty; none for a nil header).
    private static func headerFields(_ header: Etcdserverpb_ResponseHeader?) -> JSONObject {
        var object = JSONObject()
        guard let header else { return object }
        object.number("cluster_id", header.clusterID)
        object.number("member_id", header.memberID)
        object.number("revision", header.revision)
        object.number("raft_term", header.raftTerm)
        return object
    }

    static func text(_ string: String) -> [UInt8] { Array(string.utf8) }
}
