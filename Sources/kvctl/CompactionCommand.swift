// `compaction [options] <revision>` (etcdctl compaction_command.go). Prints the same line in every output format.

import EtcdAPI
import KVClient

enum CompactionCommand {
    static let flags: [FlagSpec] = [
        FlagSpec(name: "physical", kind: .bool, defaultValue: "false")
    ]

    static func run(_ flags: ParsedFlags) async {
        guard flags.positional.count == 1 else { exitWithError(.badArgs, "compaction command needs 1 argument") }
        let revision: Int64
        do {
            revision = try GoParse.int64(flags.positional[0], base: 10)
        } catch {
            exitWithError(.error, error.message)
        }
        var request = Etcdserverpb_CompactionRequest()
        request.revision = revision
        request.physical = flags.bool("physical")
        let session = Session.make(flags)
        let compaction = request
        _ = await session.call(timeout: session.commandTimeout) { client, timeout in
            try await client.compact(compaction, timeout: timeout)
        }
        Console.out("compacted revision \(revision)\n")
    }
}
