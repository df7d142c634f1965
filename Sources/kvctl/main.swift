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
typealias Command = (flags: [FlagSpec], usage: String, run: (ParsedFlags) async -> Void)
let implemented: [String: Command] = [
    "get": (GetCommand.flags, UsageText.get, GetCommand.run),
    "put": (PutCommand.flags, UsageText.put, PutCommand.run),
    "del": (DelCommand.flags, UsageText.del, DelCommand.run),
    "txn": (TxnCommand.flags, UsageText.txn, TxnCommand.run),
    "compaction": (CompactionCommand.flags, UsageText.compaction, CompactionCommand.run),
    "move-leader": (MoveLeaderCommand.flags, UsageText.moveLeader, MoveLeaderCommand.run),
    "watch": (WatchCommand.flags, UsageText.watch, WatchCommand.run),
    "defrag": (DefragCommand.flags, UsageText.defrag, DefragCommand.run),
    "lock": (LockCommand.flags, UsageText.lock, LockCommand.run),
    "make-mirror": (MakeMirrorCommand.flags, UsageText.makeMirror, MakeMirrorCommand.run),
    "elect": (ElectCommand.flags, UsageText.elect, ElectCommand.run),
    // etcdctl's version command: kvctl speaks for etcdctl 3.4.23 (its usage texts, output and exit codes).
    "version": ([], UsageText.version, { _ in Console.out("etcdctl version: 3.4.23\nAPI version: 3.4\n") }),
]

/// Commands made of subcommands: the parent's usage (printed when no subcommand is found, as cobra prints the help
/// of a command that cannot run) and each subcommand, in etcdctl's order.
let groups: [String: (usage: String, subcommands: KeyValuePairs<String, Command>)] = [
    "endpoint": (
        UsageText.endpoint,
        [
            "health": (EndpointCommand.healthFlags, UsageText.endpointHealth, EndpointCommand.health),
            "status": (EndpointCommand.statusFlags, UsageText.endpointStatus, EndpointCommand.status),
            "hashkv": (EndpointCommand.hashKVFlags, UsageText.endpointHashKV, EndpointCommand.hashKV),
        ]
    ),
    "member": (
        UsageText.member,
        [
            "add": (MemberCommand.addFlags, UsageText.memberAdd, MemberCommand.add),
            "remove": ([], UsageText.memberRemove, MemberCommand.remove),
            "update": (MemberCommand.updateFlags, UsageText.memberUpdate, MemberCommand.update),
            "list": ([], UsageText.memberList, MemberCommand.list),
            "promote": ([], UsageText.memberPromote, MemberCommand.promote),
        ]
    ),
    "lease": (
        UsageText.lease,
        [
            "grant": ([], UsageText.leaseGrant, LeaseCommand.grant),
            "revoke": ([], UsageText.leaseRevoke, LeaseCommand.revoke),
            "timetolive": (LeaseCommand.timeToLiveFlags, UsageText.leaseTimeToLive, LeaseCommand.timeToLive),
            "list": ([], UsageText.leaseList, LeaseCommand.list),
            "keep-alive": (LeaseCommand.keepAliveFlags, UsageText.leaseKeepAlive, LeaseCommand.keepAlive),
        ]
    ),
    "alarm": (
        UsageText.alarm,
        [
            "disarm": ([], UsageText.alarmDisarm, AlarmCommand.disarm),
            "list": ([], UsageText.alarmList, AlarmCommand.list),
        ]
    ),
    "check": (
        UsageText.check,
        [
            "perf": (CheckCommand.perfFlags, UsageText.checkPerf, CheckCommand.perf),
        ]
    ),
    "auth": (
        UsageText.auth,
        [
            "enable": ([], UsageText.authEnable, AuthCommand.enable),
            "disable": ([], UsageText.authDisable, AuthCommand.disable),
        ]
    ),
    "user": (
        UsageText.user,
        [
            "add": (UserCommand.addFlags, UsageText.userAdd, UserCommand.add),
            "delete": ([], UsageText.userDelete, UserCommand.delete),
            "get": (UserCommand.getFlags, UsageText.userGet, UserCommand.get),
            "list": ([], UsageText.userList, UserCommand.list),
            "passwd": (UserCommand.passwdFlags, UsageText.userPasswd, UserCommand.passwd),
            "grant-role": ([], UsageText.userGrantRole, UserCommand.grantRole),
            "revoke-role": ([], UsageText.userRevokeRole, UserCommand.revokeRole),
        ]
    ),
    "role": (
        UsageText.role,
        [
            "add": ([], UsageText.roleAdd, RoleCommand.add),
            "delete": ([], UsageText.roleDelete, RoleCommand.delete),
            "get": ([], UsageText.roleGet, RoleCommand.get),
            "list": ([], UsageText.roleList, RoleCommand.list),
            "grant-permission": (RoleCommand.permissionFlags, UsageText.roleGrantPermission, RoleCommand.grantPermission),
            "revoke-permission": (RoleCommand.permissionFlags, UsageText.roleRevokePermission, RoleCommand.revokePermission),
        ]
    ),
    "snapshot": (
        UsageText.snapshot,
        [
            "save": ([], UsageText.snapshotSave, SnapshotCommand.save),
            "restore": (SnapshotCommand.restoreFlags, UsageText.snapshotRestore, SnapshotCommand.restore),
            "status": ([], UsageText.snapshotStatus, SnapshotCommand.status),
        ]
    ),
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
var rest = arguments
rest.remove(at: typedIndex)
let command: Command
if let group = groups[name] {
    // Cobra finds the subcommand the same way: the next word that is not a flag, a unique prefix allowed.
    let names = group.subcommands.map(\.key)
    let groupFlags = rootFlags + group.subcommands.flatMap(\.value.flags)
    guard let (typedSub, subIndex) = CommandFinder.firstWord(rest, flags: groupFlags),
        let subName = CommandFinder.match(typedSub, among: names),
        let found = group.subcommands.first(where: { $0.key == subName })
    else {
        Console.out(group.usage)
        exit(ExitCode.success.rawValue)
    }
    rest.remove(at: subIndex)
    command = found.value
} else if let found = implemented[name] {
    command = found
} else {
    exitWithError(.error, "kvctl does not implement \"\(name)\" yet")
}
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
