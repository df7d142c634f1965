// `txn [options]` (etcdctl txn_command.go): compares, success requests and failure requests from stdin, each
// block ended by an empty line; `-i` prints a prompt before each block. The commit has no timeout, as in etcdctl
// (it uses context.Background()).

import EtcdAPI
import KVClient
import Foundation

enum TxnCommand {
    static let flags: [FlagSpec] = [
        FlagSpec(name: "interactive", shorthand: "i", kind: .bool, defaultValue: "false")
    ]

    static func run(_ flags: ParsedFlags) async {
        guard flags.positional.isEmpty else { exitWithError(.badArgs, "txn command does not accept argument") }
        let session = Session.make(flags)
        let interactive = flags.bool("interactive")
        var request = Etcdserverpb_TxnRequest()
        do {
            if interactive { Console.out("compares:\n") }
            request.compare = try readBlock(TxnParser.parseCompare)
            if interactive { Console.out("success requests (get, put, del):\n") }
            request.success = try readBlock(TxnParser.parseRequest)
            if interactive { Console.out("failure requests (get, put, del):\n") }
            request.failure = try readBlock(TxnParser.parseRequest)
        } catch {
            exitWithError(error.code, error.message)
        }
        let txn = request
        let response = await session.call(timeout: nil) { client, timeout in
            try await client.txn(txn, timeout: timeout)
        }
        session.display { printer throws(CommandExit) in try printer.txn(response) }
    }

    /// Reads trimmed lines up to an empty one; end of input before it is an error ("Error: EOF", exit 3).
    private static func readBlock<Item>(_ parse: (String) throws(CommandExit) -> Item) throws(CommandExit) -> [Item] {
        var items: [Item] = []
        while true {
            guard let line = readLine(strippingNewline: false), line.hasSuffix("\n") else {
                throw CommandExit(.invalidInput, "EOF")
            }
            let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.isEmpty { return items }
            items.append(try parse(trimmed))
        }
    }
}
