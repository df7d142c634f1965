// `put [options] <key> <value>` (etcdctl put_command.go).

import EtcdAPI
import KVClient
import Foundation

enum PutCommand {
    static let flags: [FlagSpec] = [
        FlagSpec(name: "lease", kind: .string, defaultValue: "0"),
        FlagSpec(name: "prev-kv", kind: .bool, defaultValue: "false"),
        FlagSpec(name: "ignore-value", kind: .bool, defaultValue: "false"),
        FlagSpec(name: "ignore-lease", kind: .bool, defaultValue: "false"),
    ]

    static func run(_ flags: ParsedFlags) async {
        let request = makeRequest(flags, readStdin: { FileHandle.standardInput.readDataToEndOfFile() })
        let session = Session.make(flags)
        let response = await session.call(timeout: session.commandTimeout) { client, timeout in
            try await client.put(request, timeout: timeout)
        }
        session.display { printer throws(CommandExit) in try printer.put(response) }
    }

    /// etcdctl's getPutOp: argument checks (exit 128) and the request.
    static func makeRequest(_ flags: ParsedFlags, readStdin: () -> Data) -> Etcdserverpb_PutRequest {
        let arguments = flags.positional
        let usage = "put command needs 1 argument and input from stdin or 2 arguments"
        guard let key = arguments.first else { exitWithError(.badArgs, usage) }
        let ignoreValue = flags.bool("ignore-value")
        if ignoreValue && arguments.count > 1 {
            exitWithError(.badArgs, "put command needs only 1 argument when 'ignore-value' is set")
        }
        var value = Data()
        if !ignoreValue {
            if arguments.count > 1 {
                value = Data(arguments[1].utf8)
            } else {
                value = readStdin()
                if value.isEmpty { exitWithError(.badArgs, usage) }
            }
        }
        let lease: Int64
        do {
            lease = try GoParse.int64(flags.string("lease"), base: 16)
        } catch {
            exitWithError(.badArgs, "bad lease ID (\(error.message)), expecting ID in Hex")
        }
        var request = Etcdserverpb_PutRequest()
        request.key = Data(key.utf8)
        request.value = value
        request.lease = lease
        request.prevKv = flags.bool("prev-kv")
        request.ignoreValue = ignoreValue
        request.ignoreLease = flags.bool("ignore-lease")
        return request
    }
}
