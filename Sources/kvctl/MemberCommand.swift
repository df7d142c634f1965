// `member add|remove|update|list|promote` (etcdctl member_command.go): argument checks in etcdctl's order and with
// its exit codes, one Cluster call through any endpoint, and the printer's rendering of the response.

import EtcdAPI
import KVClient

enum MemberCommand {
    static let addFlags: [FlagSpec] = [
        FlagSpec(name: "peer-urls", kind: .string, defaultValue: ""),
        FlagSpec(name: "learner", kind: .bool, defaultValue: "false"),
    ]
    static let updateFlags: [FlagSpec] = [
        FlagSpec(name: "peer-urls", kind: .string, defaultValue: "")
    ]

    static func add(_ flags: ParsedFlags) async {
        let arguments = flags.positional
        guard let name = arguments.first else { exitWithError(.badArgs, "member name not provided") }
        if arguments.count > 1 {
            // etcdctl's hint for peer URLs given as arguments.
            let hints = arguments.filter { $0.lowercased().hasPrefix("http") }.map { ", did you mean --peer-urls=\($0)" }
            exitWithError(.badArgs, "too many arguments" + hints.joined())
        }
        let peerURLsText = flags.string("peer-urls")
        guard !peerURLsText.isEmpty else { exitWithError(.badArgs, "member peer urls not provided") }
        let peerURLs = peerURLsText.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        let isLearner = flags.bool("learner")
        let session = Session.make(flags)
        let response = await session.call(timeout: session.commandTimeout) { client, timeout in
            try await client.memberAdd(peerURLs: peerURLs, isLearner: isLearner, timeout: timeout)
        }
        session.display { printer throws(CommandExit) in try printer.memberAdd(response) }
        if session.outputFormat == OutputFormat.simple.rawValue {
            Console.out(newMemberEnvironment(response, name: name, peerURLs: peerURLsText))
        }
    }

    /// The settings for starting the new member, which etcdctl prints after the simple output only: the new member
    /// takes `name`; members not started yet have no name and appear as `=<peer URL>`.
    static func newMemberEnvironment(_ response: Etcdserverpb_MemberAddResponse, name: String, peerURLs: String)
        -> String
    {
        let newID = response.member.id
        let initialCluster = response.members.flatMap { member in
            member.peerUrls.map { "\(member.id == newID ? name : member.name)=\($0)" }
        }
        return "\nETCD_NAME=\(GoFormat.quote(name))\n"
            + "ETCD_INITIAL_CLUSTER=\(GoFormat.quote(initialCluster.joined(separator: ",")))\n"
            + "ETCD_INITIAL_ADVERTISE_PEER_URLS=\(GoFormat.quote(peerURLs))\n"
            + "ETCD_INITIAL_CLUSTER_STATE=\"existing\"\n"
    }

    static func remove(_ flags: ParsedFlags) async {
        let id = memberID(flags)
        let session = Session.make(flags)
        let response = await session.call(timeout: session.commandTimeout) { client, timeout in
            try await client.memberRemove(id: id, timeout: timeout)
        }
        session.display { printer throws(CommandExit) in try printer.memberRemove(id: id, response) }
    }

    static func update(_ flags: ParsedFlags) async {
        let id = memberID(flags)
        let peerURLsText = flags.string("peer-urls")
        guard !peerURLsText.isEmpty else { exitWithError(.badArgs, "member peer urls not provided") }
        let peerURLs = peerURLsText.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        let session = Session.make(flags)
        let response = await session.call(timeout: session.commandTimeout) { client, timeout in
            try await client.memberUpdate(id: id, peerURLs: peerURLs, timeout: timeout)
        }
        session.display { printer throws(CommandExit) in try printer.memberUpdate(id: id, response) }
    }

    static func list(_ flags: ParsedFlags) async {
        let session = Session.make(flags)
        let response = await session.call(timeout: session.commandTimeout) { client, timeout in
            try await client.memberList(timeout: timeout)
        }
        session.display { printer throws(CommandExit) in try printer.memberList(response) }
    }

    static func promote(_ flags: ParsedFlags) async {
        let id = memberID(flags)
        let session = Session.make(flags)
        let response = await session.call(timeout: session.commandTimeout) { client, timeout in
            try await client.memberPromote(id: id, timeout: timeout)
        }
        session.display { printer throws(CommandExit) in try printer.memberPromote(id: id, response) }
    }

    /// The one argument of remove, update and promote: a member ID in hex.
    private static func memberID(_ flags: ParsedFlags) -> UInt64 {
        guard flags.positional.count == 1 else { exitWithError(.badArgs, "member ID is not provided") }
        do {
            return try GoParse.uint64(flags.positional[0], base: 16)
        } catch {
            exitWithError(.badArgs, "bad member ID arg (\(error.message)), expecting ID in Hex")
        }
    }
}
