// `alarm list|disarm` (etcdctl alarm_command.go) and `defrag [--cluster]` (defrag_command.go).

import EtcdAPI
import Foundation
import KVClient
import SwiftProtobuf

enum AlarmCommand {
    static func list(_ flags: ParsedFlags) async {
        guard flags.positional.isEmpty else { exitWithError(.badArgs, "alarm list command accepts no arguments") }
        var request = Etcdserverpb_AlarmRequest()
        request.action = .get
        await run(flags, request)
    }

    /// Sends DEACTIVATE for member 0 and alarm NONE, which clientv3's AlarmDisarm first turns into one DEACTIVATE
    /// per listed alarm.
    static func disarm(_ flags: ParsedFlags) async {
        guard flags.positional.isEmpty else { exitWithError(.badArgs, "alarm disarm command accepts no arguments") }
        let session = Session.make(flags)
        let response = await session.callOrExit(timeout: session.commandTimeout) { client, timeout in
            try await disarmAll(client, timeout: timeout)
        }
        session.write { style throws(CommandExit) in try AlarmOutput.render(response, style) }
    }

    /// clientv3's AlarmDisarm with an empty AlarmMember: list the alarms, deactivate each, and answer with the
    /// deactivated alarms only (no header: clientv3 builds that response itself).
    private static func disarmAll(_ client: EtcdClient, timeout: Duration?) async throws -> Etcdserverpb_AlarmResponse {
        var get = Etcdserverpb_AlarmRequest()
        get.action = .get
        var result = Etcdserverpb_AlarmResponse()
        for alarm in try await client.alarm(get, timeout: timeout).alarms {
            var deactivate = Etcdserverpb_AlarmRequest()
            deactivate.action = .deactivate
            deactivate.memberID = alarm.memberID
            deactivate.alarm = alarm.alarm
            result.alarms += try await client.alarm(deactivate, timeout: timeout).alarms
        }
        return result
    }

    private static func run(_ flags: ParsedFlags, _ request: Etcdserverpb_AlarmRequest) async {
        let session = Session.make(flags)
        let response = await session.callOrExit(timeout: session.commandTimeout) { client, timeout in
            try await client.alarm(request, timeout: timeout)
        }
        session.write { style throws(CommandExit) in try AlarmOutput.render(response, style) }
    }
}

enum AlarmOutput {
    static func render(_ response: Etcdserverpb_AlarmResponse, _ style: OutputStyle) throws(CommandExit) -> [UInt8] {
        switch style.format {
        case .simple:
            // Go's %+v of *pb.AlarmMember is its String(): the compact text format, each field followed by a space
            // and zero fields left out.
            return Array(
                response.alarms.map { alarm in
                    (alarm.memberID == 0 ? "" : "memberID:\(alarm.memberID) ")
                        + (alarm.alarm == .none ? "" : "alarm:\(name(alarm.alarm)) ") + "\n"
                }.joined().utf8)
        case .json:
            var object = JSONObject()
            if response.hasHeader { object.raw("header", JSONPrinter.encode(response.header)) }
            object.list(
                "alarms",
                response.alarms.map { alarm in
                    var member = JSONObject()
                    member.number("memberID", alarm.memberID)
                    member.number("alarm", alarm.alarm.rawValue)
                    return member.text
                })
            return Array((object.text + "\n").utf8)
        case .fields:
            // etcdctl's fields printer dereferences the header, which disarm's response does not have.
            if !response.hasHeader { goPanic("runtime error: invalid memory address or nil pointer dereference") }
            return Array(
                (FieldsPrinter.headerLines(response.header)
                    + response.alarms.map { "\"MemberID\" : \($0.memberID)\n\"AlarmType\" : \(name($0.alarm))\n\n" }
                    .joined()).utf8)
        case .protobuf:
            // Serialising an in-memory proto3 message cannot fail.
            return (try? response.serializedBytes()) ?? []
        case .table: throw unsupported(.table)
        }
    }

    /// The AlarmType's proto name (Go's String of the enum).
    static func name(_ type: Etcdserverpb_AlarmType) -> String {
        switch type {
        case .none: "NONE"
        case .nospace: "NOSPACE"
        case .corrupt: "CORRUPT"
        case .UNRECOGNIZED(let value): "\(value)"
        }
    }
}

enum DefragCommand {
    static let flags: [FlagSpec] = [
        FlagSpec(name: "cluster", kind: .bool, defaultValue: "false"),
        FlagSpec(name: "data-dir", kind: .string, defaultValue: ""),
    ]

    static func run(_ flags: ParsedFlags) async {
        if !flags.string("data-dir").isEmpty {
            // NB: etcdctl defragments a stopped member's bbolt file here; kvd's data directory is RocksDB.
            exitWithError(.badFeature, "kvctl does not support defrag --data-dir")
        }
        let session = Session.make(flags)
        var failures = 0
        for endpoint in await EndpointCommand.endpointsToAsk(session, flags) {
            let result = await EndpointCommand.askMember(endpoint, session) { client, timeout in
                try await client.defragment(timeout: timeout)
            }
            switch result {
            case .success: Console.out("Finished defragmenting etcd member[\(endpoint)]\n")
            case .failure(let error):
                Console.err("Failed to defragment etcd member[\(endpoint)] (\(error.message))\n")
                failures += 1
            }
        }
        if failures != 0 { exit(ExitCode.error.rawValue) }
    }
}
