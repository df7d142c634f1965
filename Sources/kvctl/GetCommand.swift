// `get [options] <key> [range_end]` (etcdctl get_command.go).

import EtcdAPI
import KVClient
import Foundation

enum GetCommand {
    static let flags: [FlagSpec] = [
        FlagSpec(name: "consistency", kind: .string, defaultValue: "l"),
        FlagSpec(name: "order", kind: .string, defaultValue: ""),
        FlagSpec(name: "sort-by", kind: .string, defaultValue: ""),
        FlagSpec(name: "limit", kind: .int64, defaultValue: "0"),
        FlagSpec(name: "prefix", kind: .bool, defaultValue: "false"),
        FlagSpec(name: "from-key", kind: .bool, defaultValue: "false"),
        FlagSpec(name: "rev", kind: .int64, defaultValue: "0"),
        FlagSpec(name: "keys-only", kind: .bool, defaultValue: "false"),
        FlagSpec(name: "print-value-only", kind: .bool, defaultValue: "false"),
        // NB: not an etcdctl 3.4 flag (3.5 added it); kept out of the usage text, which is 3.4's.
        FlagSpec(name: "count-only", kind: .bool, defaultValue: "false"),
    ]

    static func run(_ flags: ParsedFlags) async {
        let request = makeRequest(flags)
        let valueOnly = flags.bool("print-value-only")
        let session = Session.make(flags, valueOnly: valueOnly)
        let response = await session.call(timeout: session.commandTimeout) { client, timeout in
            try await client.range(request, timeout: timeout)
        }
        if flags.bool("count-only") && session.outputFormat != "fields" {
            // etcdctl 3.5's check for its --count-only, after the call as there.
            exitWithError(.badArgs, "--count-only is only for `--write-out=fields`")
        }
        if valueOnly && session.outputFormat != "simple" {
            exitWithError(.badArgs, "print-value-only is only for `--write-out=simple`")
        }
        session.display { printer throws(CommandExit) in try printer.get(response) }
    }

    /// etcdctl's getGetOp: argument checks, in its order, and the request clientv3 builds from them.
    static func makeRequest(_ flags: ParsedFlags) -> Etcdserverpb_RangeRequest {
        let arguments = flags.positional
        guard let key = arguments.first else {
            exitWithError(.badArgs, "get command needs one argument as key and an optional argument as range_end")
        }
        let prefix = flags.bool("prefix")
        let fromKey = flags.bool("from-key")
        if prefix && fromKey {
            exitWithError(.badArgs, "`--prefix` and `--from-key` cannot be set at the same time, choose one")
        }
        if flags.bool("keys-only") && flags.bool("count-only") {
            // etcdctl 3.5's check for its --count-only.
            exitWithError(.badArgs, "`--keys-only` and `--count-only` cannot be set at the same time, choose one")
        }
        var request = Etcdserverpb_RangeRequest()
        switch flags.string("consistency") {
        case "s": request.serializable = true
        case "l": break
        case let other: exitWithError(.badFeature, "unknown consistency flag \(GoFormat.quote(other))")
        }
        if arguments.count > 1 && (prefix || fromKey) {
            exitWithError(
                .badArgs, "too many arguments, only accept one argument when `--prefix` or `--from-key` is set")
        }
        request.limit = flags.int64("limit")
        let revision = flags.int64("rev")
        if revision > 0 { request.revision = revision }
        let order = flags.string("order")
        let sortOrder: Etcdserverpb_RangeRequest.SortOrder =
            switch order.uppercased() {
            case "ASCEND": .ascend
            case "DESCEND": .descend
            case "": .none
            default: exitWithError(.badFeature, "bad sort order \(order)")
            }
        let target = flags.string("sort-by")
        let sortTarget: Etcdserverpb_RangeRequest.SortTarget =
            switch target.uppercased() {
            case "CREATE": .create
            case "KEY", "": .key
            case "MODIFY": .mod
            case "VALUE": .value
            case "VERSION": .version
            default: exitWithError(.badFeature, "bad sort target \(target)")
            }
        // clientv3.WithSort: ascending by key is the server's natural order, so it is sent as no sort.
        request.sortOrder = sortTarget == .key && sortOrder == .ascend ? .none : sortOrder
        request.sortTarget = sortTarget
        let range = KeyRanges.resolve(
            key: key, rangeEnd: arguments.count > 1 ? arguments[1] : nil, prefix: prefix, fromKey: fromKey)
        request.key = range.key
        request.rangeEnd = range.end
        request.keysOnly = flags.bool("keys-only")
        request.countOnly = flags.bool("count-only")
        return request
    }
}
