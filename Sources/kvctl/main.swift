// kvctl: etcdctl 3.4's command line over KVClient. Finds the command as cobra does (first non-flag word, unique
// prefixes allowed), parses flags as pflag does, and fails with etcdctl's messages and exit codes.

import Foundation

/// The commands etcdctl 3.4 has, in the order it registers them (cobra suggests in this order; `completion` is
/// cobra's own); only some are implemented here.
let etcdctlCommands = [
    "get", "put", "del", "txn", "compaction", "alarm", "defrag", "endpoint", "move-leader", "watch", "version",
    "lease", "member", "snapshot", "make-mirror", "migrate", "lock", "elect", "auth", "user", "role", "check",
    "completion",
]

/// Flags, usage and entry point of each implemented command.
let implemented: [String: (flags: [FlagSpec], usage: String, run: (ParsedFlags) async -> Void)] = [
    "get": (GetCommand.flags, UsageText.get, GetCommand.run),
    "put": (PutCommand.flags, UsageText.put, PutCommand.run),
    "del": (DelCommand.flags, UsageText.del, DelCommand.run),
    "txn": (TxnCommand.flags, UsageText.txn, TxnCommand.run),
    "compaction": (CompactionCommand.flags, UsageText.compaction, CompactionCommand.run),
]

let arguments = Array(CommandLine.arguments.dropFirst())
let rootFlags = GlobalFlags.specs + [GlobalFlags.help]
guard let (typed, typedIndex) = CommandFinder.firstWord(arguments, flags: rootFlags) else {
    Console.out(UsageText.root)
    exit(ExitCode.success.rawValue)
}
guard let name = CommandFinder.match(typed, among: etcdctlCommands) else {
    let message = "unknown command \(GoFormat.quote(typed)) for \"etcdctl\"" + CommandFinder.suggestions(for: typed)
    Console.err("Error: \(message)\nRun 'etcdctl --help' for usage.\n")
    exitWithError(.error, message)
}
guard let command = implemented[name] else {
    exitWithError(.error, "kvctl does not implement \"\(name)\" yet")
}
var rest = arguments
rest.remove(at: typedIndex)
let parsed: ParsedFlags
do {
    parsed = try FlagParser(specs: command.flags + [GlobalFlags.help] + GlobalFlags.specs).parse(rest)
} catch {
    // Cobra prints the error, then etcdctl's usage function writes the usage to stdout and returns an empty
    // string that cobra prints as an empty line; then etcdctl prints the error again.
    Console.err("Error: \(error.message)\n")
    Console.out(command.usage)
    Console.err("\n")
    exitWithError(.error, error.message)
}
if parsed.bool("help") {
    Console.out(command.usage)
    exit(ExitCode.success.rawValue)
}
await command.run(parsed)
exit(ExitCode.success.rawValue)
