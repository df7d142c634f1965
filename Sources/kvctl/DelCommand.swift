// `del [options] <key> [range_end]` (etcdctl del_command.go).

import EtcdAPI
import KVClient
import Foundation

enum DelCommand {
    static let flags: [FlagSpec] = [
        FlagSpec(name: "prefix", kind: .bool, defaultValue: "false"),
        FlagSpec(name: "prev-kv", kind: .bool, defaultValue: "false"),
        FlagSpec(name: "from-key", kind: .bool, defaultValue: "false"),
    ]

    static func run(_ flags: ParsedFlags) async {
        let request = makeRequest(flags)
        let session = Session.make(flags)
        let response = await session.call(timeout: session.commandTimeout) { client, timeout in
            try await client.deleteRange(request, timeout: timeout)
        }
        session.display { printer throws(CommandExit) in try printer.del(response) }
    }

    /// etcdctl's getDelOp.
    static func makeRequest(_ flags: ParsedFlags) -> Etcdserverpb_DeleteRangeRequest {
        let arguments = flags.positional
        guard arguments.count == 1 || arguments.count == 2 else {
            exitWithError(.badArgs, "del command needs one argument as key and an optional argument as range_end")
        }
        let prefix = flags.bool("prefix")
        let fromKey = flags.bool("from-key")
        if prefix && fromKey {
            exitWithError(.badArgs, "`--prefix` and `--from-key` cannot be set at the same time, choose one")
        }
        if arguments.count > 1 && (prefix || fromKey) {
            exitWithError(
                .badArgs, "too many arguments, only accept one argument when `--prefix` or `--from-key` is set")
        }
        let range = KeyRanges.resolve(
            key: arguments[0], rangeEnd: arguments.count > 1 ? arguments[1] : nil, prefix: prefix, fromKey: fromKey)
        var request = Etcdserverpb_DeleteRangeRequest()
        request.key = range.key
        request.rangeEnd = range.end
        request.prevKv = flags.bool("prev-kv")
        return request
    }
}
