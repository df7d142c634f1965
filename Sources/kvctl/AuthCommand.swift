// `auth enable|disable`, `user add|delete|get|list|passwd|grant-role|revoke-role` and `role add|delete|get|list|
// grant-permission|revoke-permission` (etcdctl auth_command.go, user_command.go, role_command.go) and their output
// in each format (printer_simple.go, printer_fields.go; json and protobuf print the response itself).
//
// NB: etcdctl sends user and role requests without a deadline (context.TODO); kvctl bounds them by
// --command-timeout like every other command, so that an unreachable cluster cannot hang it.

import EtcdAPI
import Foundation
import KVClient
import SwiftProtobuf

enum AuthCommand {
    static func enable(_ flags: ParsedFlags) async {
        guard flags.positional.isEmpty else { exitWithError(.badArgs, "auth enable command does not accept any arguments") }
        let session = Session.make(flags)
        let firstEndpoint = session.firstEndpoint
        // clientv3's loop: with a root user lacking the root role, create the role, grant it, and try again.
        _ = await session.callOrExit(timeout: session.commandTimeout) { client, timeout in
            while true {
                do {
                    return try await client.authEnable(Etcdserverpb_AuthEnableRequest(), timeout: timeout)
                } catch let error as EtcdClientError where EtcdErrors.message(for: error) == "etcdserver: root user does not have root role" {
                    Console.err(EtcdErrors.retryWarning(error, firstEndpoint: firstEndpoint))
                    _ = try await client.roleAdd(.with { $0.name = "root" }, timeout: timeout)
                    _ = try await client.userGrantRole(
                        .with {
                            $0.user = "root"
                            $0.role = "root"
                        }, timeout: timeout)
                }
            }
        }
        Console.out("Authentication Enabled\n")
    }

    static func disable(_ flags: ParsedFlags) async {
        guard flags.positional.isEmpty else { exitWithError(.badArgs, "auth disable command does not accept any arguments") }
        let session = Session.make(flags)
        _ = await session.callOrExit(timeout: session.commandTimeout) { client, timeout in
            try await client.authDisable(Etcdserverpb_AuthDisableRequest(), timeout: timeout)
        }
        Console.out("Authentication Disabled\n")
    }
}

// MARK: user

enum UserCommand {
    static let addFlags = [
        FlagSpec(name: "interactive", kind: .bool, defaultValue: "true"),
        FlagSpec(name: "new-user-password", kind: .string, defaultValue: ""),
        FlagSpec(name: "no-password", kind: .bool, defaultValue: "false"),
    ]
    static let getFlags = [FlagSpec(name: "detail", kind: .bool, defaultValue: "false")]
    static let passwdFlags = [FlagSpec(name: "interactive", kind: .bool, defaultValue: "true")]

    static func add(_ flags: ParsedFlags) async {
        guard flags.positional.count == 1 else { exitWithError(.badArgs, "user add command requires user name as its argument") }
        let argument = flags.positional[0]
        var request = Etcdserverpb_AuthUserAddRequest()
        if flags.bool("no-password") {
            request.name = argument
            request.options.noPassword = true
        } else if !flags.string("new-user-password").isEmpty {
            request.name = argument
            request.password = flags.string("new-user-password")
            request.options.noPassword = false
        } else if let colon = argument.firstIndex(of: ":") {
            request.name = String(argument[..<colon])
            request.password = String(argument[argument.index(after: colon)...])
            if request.name.isEmpty { exitWithError(.badArgs, "empty user name is not allowed") }
            request.options.noPassword = false
        } else {
            request.name = argument
            request.password = flags.bool("interactive") ? Password.askTwice(for: argument) : Password.scanWord()
            request.options.noPassword = false
        }
        let session = Session.make(flags)
        let response = await session.callOrExit(timeout: session.commandTimeout) { [request] client, timeout in
            try await client.userAdd(request, timeout: timeout)
        }
        session.write { style throws(CommandExit) in
            try AuthOutput.render(response, style, simple: "User \(request.name) created\n")
        }
    }

    static func delete(_ flags: ParsedFlags) async {
        guard flags.positional.count == 1 else { exitWithError(.badArgs, "user delete command requires user name as its argument") }
        let name = flags.positional[0]
        let session = Session.make(flags)
        let response = await session.callOrExit(timeout: session.commandTimeout) { client, timeout in
            try await client.userDelete(.with { $0.name = name }, timeout: timeout)
        }
        session.write { style throws(CommandExit) in try AuthOutput.render(response, style, simple: "User \(name) deleted\n") }
    }

    static func get(_ flags: ParsedFlags) async {
        guard flags.positional.count == 1 else { exitWithError(.badArgs, "user get command requires user name as its argument") }
        let name = flags.positional[0]
        let session = Session.make(flags)
        let response = await session.callOrExit(timeout: session.commandTimeout) { client, timeout in
            try await client.userGet(.with { $0.name = name }, timeout: timeout)
        }
        guard flags.bool("detail") else {
            session.write { style throws(CommandExit) in try AuthOutput.userGet(name, response, style) }
            return
        }
        // --detail: the user's name, then each role as `role get` prints it, in any format.
        Console.out("User: \(name)\n")
        for role in response.roles {
            Console.out("\n")
            let roleResponse = await session.callOrExit(timeout: session.commandTimeout) { client, timeout in
                try await client.roleGet(.with { $0.role = role }, timeout: timeout)
            }
            session.write { style throws(CommandExit) in try AuthOutput.roleGet(role, roleResponse, style) }
        }
    }

    static func list(_ flags: ParsedFlags) async {
        guard flags.positional.isEmpty else { exitWithError(.badArgs, "user list command requires no arguments") }
        let session = Session.make(flags)
        let response = await session.callOrExit(timeout: session.commandTimeout) { client, timeout in
            try await client.userList(Etcdserverpb_AuthUserListRequest(), timeout: timeout)
        }
        session.write { style throws(CommandExit) in try AuthOutput.names(response, response.users, "Users", style) }
    }

    static func passwd(_ flags: ParsedFlags) async {
        guard flags.positional.count == 1 else { exitWithError(.badArgs, "user passwd command requires user name as its argument") }
        let name = flags.positional[0]
        let password = flags.bool("interactive") ? Password.askTwice(for: name) : Password.scanWord()
        let session = Session.make(flags)
        let response = await session.callOrExit(timeout: session.commandTimeout) { client, timeout in
            try await client.userChangePassword(
                .with {
                    $0.name = name
                    $0.password = password
                }, timeout: timeout)
        }
        session.write { style throws(CommandExit) in try AuthOutput.render(response, style, simple: "Password updated\n") }
    }

    static func grantRole(_ flags: ParsedFlags) async {
        guard flags.positional.count == 2 else {
            exitWithError(.badArgs, "user grant command requires user name and role name as its argument")
        }
        let (user, role) = (flags.positional[0], flags.positional[1])
        let session = Session.make(flags)
        let response = await session.callOrExit(timeout: session.commandTimeout) { client, timeout in
            try await client.userGrantRole(
                .with {
                    $0.user = user
                    $0.role = role
                }, timeout: timeout)
        }
        session.write { style throws(CommandExit) in
            try AuthOutput.render(response, style, simple: "Role \(role) is granted to user \(user)\n")
        }
    }

    static func revokeRole(_ flags: ParsedFlags) async {
        guard flags.positional.count == 2 else {
            exitWithError(.badArgs, "user revoke-role requires user name and role name as its argument")
        }
        let (user, role) = (flags.positional[0], flags.positional[1])
        let session = Session.make(flags)
        let response = await session.callOrExit(timeout: session.commandTimeout) { client, timeout in
            try await client.userRevokeRole(
                .with {
                    $0.name = user
                    $0.role = role
                }, timeout: timeout)
        }
        session.write { style throws(CommandExit) in
            try AuthOutput.render(response, style, simple: "Role \(role) is revoked from user \(user)\n")
        }
    }
}

// MARK: role

enum RoleCommand {
    static let permissionFlags = [
        FlagSpec(name: "prefix", kind: .bool, defaultValue: "false"),
        FlagSpec(name: "from-key", kind: .bool, defaultValue: "false"),
    ]

    static func add(_ flags: ParsedFlags) async {
        guard flags.positional.count == 1 else { exitWithError(.badArgs, "role add command requires role name as its argument") }
        let name = flags.positional[0]
        let session = Session.make(flags)
        let response = await session.callOrExit(timeout: session.commandTimeout) { client, timeout in
            try await client.roleAdd(.with { $0.name = name }, timeout: timeout)
        }
        session.write { style throws(CommandExit) in try AuthOutput.render(response, style, simple: "Role \(name) created\n") }
    }

    static func delete(_ flags: ParsedFlags) async {
        guard flags.positional.count == 1 else { exitWithError(.badArgs, "role delete command requires role name as its argument") }
        let name = flags.positional[0]
        let session = Session.make(flags)
        let response = await session.callOrExit(timeout: session.commandTimeout) { client, timeout in
            try await client.roleDelete(.with { $0.role = name }, timeout: timeout)
        }
        session.write { style throws(CommandExit) in try AuthOutput.render(response, style, simple: "Role \(name) deleted\n") }
    }

    static func get(_ flags: ParsedFlags) async {
        guard flags.positional.count == 1 else { exitWithError(.badArgs, "role get command requires role name as its argument") }
        let name = flags.positional[0]
        let session = Session.make(flags)
        let response = await session.callOrExit(timeout: session.commandTimeout) { client, timeout in
            try await client.roleGet(.with { $0.role = name }, timeout: timeout)
        }
        session.write { style throws(CommandExit) in try AuthOutput.roleGet(name, response, style) }
    }

    static func list(_ flags: ParsedFlags) async {
        guard flags.positional.isEmpty else { exitWithError(.badArgs, "role list command requires no arguments") }
        let session = Session.make(flags)
        let response = await session.callOrExit(timeout: session.commandTimeout) { client, timeout in
            try await client.roleList(Etcdserverpb_AuthRoleListRequest(), timeout: timeout)
        }
        session.write { style throws(CommandExit) in try AuthOutput.names(response, response.roles, "Roles", style) }
    }

    static func grantPermission(_ flags: ParsedFlags) async {
        let arguments = flags.positional
        guard arguments.count >= 3 else {
            exitWithError(.badArgs, "role grant command requires role name, permission type, and key [endkey] as its argument")
        }
        guard let type = Authpb_Permission.TypeEnum(goName: arguments[1].uppercased()) else {
            exitWithError(.badArgs, "invalid permission type: \(arguments[1])")
        }
        let (key, end) = permissionRange(Array(arguments[2...]), flags)
        let role = arguments[0]
        let session = Session.make(flags)
        let response = await session.callOrExit(timeout: session.commandTimeout) { client, timeout in
            try await client.roleGrantPermission(
                .with {
                    $0.name = role
                    $0.perm.key = Data(key.utf8)
                    $0.perm.rangeEnd = Data(end.utf8)
                    $0.perm.permType = type
                }, timeout: timeout)
        }
        session.write { style throws(CommandExit) in try AuthOutput.render(response, style, simple: "Role \(role) updated\n") }
    }

    static func revokePermission(_ flags: ParsedFlags) async {
        let arguments = flags.positional
        guard arguments.count >= 2 else {
            exitWithError(.badArgs, "role revoke-permission command requires role name and key [endkey] as its argument")
        }
        let (key, end) = permissionRange(Array(arguments[1...]), flags)
        let role = arguments[0]
        let session = Session.make(flags)
        let response = await session.callOrExit(timeout: session.commandTimeout) { client, timeout in
            try await client.roleRevokePermission(
                .with {
                    $0.role = role
                    $0.key = Data(key.utf8)
                    $0.rangeEnd = Data(end.utf8)
                }, timeout: timeout)
        }
        // etcdctl names the key as typed (not the "\0" an empty key becomes).
        let typed = arguments[1]
        let simple =
            end.isEmpty
            ? "Permission of key \(typed) is revoked from role \(role)\n"
            : end != "\0"
                ? "Permission of range [\(typed), \(end)) is revoked from role \(role)\n"
                : "Permission of range [\(typed), <open ended> is revoked from role \(role)\n"
        session.write { style throws(CommandExit) in try AuthOutput.render(response, style, simple: simple) }
    }

    /// etcdctl's permRange: key and range end from the arguments and --prefix / --from-key.
    static func permissionRange(_ arguments: [String], _ flags: ParsedFlags) -> (key: String, end: String) {
        let prefix = flags.bool("prefix"), fromKey = flags.bool("from-key")
        if prefix && fromKey && (arguments[0].isEmpty || arguments.count == 1) {
            exitWithError(.badArgs, "--from-key and --prefix flags are mutually exclusive")
        }
        // An empty key means the whole key space: "\0", open ended with either flag.
        if arguments[0].isEmpty { return ("\0", prefix || fromKey ? "\0" : "") }
        if arguments.count == 1 {
            if prefix { return (arguments[0], prefixEnd(arguments[0])) }
            return (arguments[0], fromKey ? "\0" : "")
        }
        if prefix { exitWithError(.badArgs, "unexpected endkey argument with --prefix flag") }
        if fromKey { exitWithError(.badArgs, "unexpected endkey argument with --from-key flag") }
        return (arguments[0], arguments[1])
    }

    /// clientv3.GetPrefixRangeEnd over Go strings (bytes).
    static func prefixEnd(_ key: String) -> String {
        String(decoding: KeyRanges.prefixEnd(Array(key.utf8)), as: UTF8.self)
    }
}

extension Authpb_Permission.TypeEnum {
    init?(goName: String) {
        switch goName {
        case "READ": self = .read
        case "WRITE": self = .write
        case "READWRITE": self = .readwrite
        default: return nil
        }
    }

    var goName: String {
        switch self {
        case .read: "READ"
        case .write: "WRITE"
        case .readwrite: "READWRITE"
        case .UNRECOGNIZED(let value): "\(value)"
        }
    }
}

/// Reading a password as etcdctl does.
enum Password {
    /// `--interactive=false`: Go's fmt.Scanf("%s"): the first word on stdin (empty at end of input).
    static func scanWord() -> String {
        guard let line = readLine(strippingNewline: true) else { return "" }
        return line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" }).first.map(String.init) ?? ""
    }

    /// The terminal prompt, twice, without echo.
    static func askTwice(for name: String) -> String {
        let first = ask("Password of \(name): ")
        if first.isEmpty { exitWithError(.badArgs, "empty password") }
        let second = ask("Type password of \(name) again for confirmation: ")
        if first != second { exitWithError(.badArgs, "given passwords are different") }
        return first
    }

    static func ask(_ prompt: String) -> String {
        Console.out(prompt)
        var saved = termios()
        let isTerminal = tcgetattr(0, &saved) == 0
        if isTerminal {
            var silent = saved
            silent.c_lflag &= ~tcflag_t(ECHO)
            tcsetattr(0, TCSANOW, &silent)
        }
        defer {
            if isTerminal {
                tcsetattr(0, TCSANOW, &saved)
                Console.out("\n")
            }
        }
        return readLine(strippingNewline: true) ?? ""
    }
}

/// The auth commands' output per format (printer_simple.go, printer_fields.go, printJSON and printPB over the
/// response). Table: etcdctl has none for these.
enum AuthOutput {
    /// A response that is only a header: `simple` in simple format.
    static func render(_ response: some AuthHeaderResponse, _ style: OutputStyle, simple: String) throws(CommandExit) -> [UInt8] {
        switch style.format {
        case .simple: return Array(simple.utf8)
        case .json: return json(response.header, [])
        case .fields: return Array(FieldsPrinter.headerLines(response.header).utf8)
        case .protobuf: return protobuf(response)
        case .table: throw unsupported(.table)
        }
    }

    static func userGet(_ name: String, _ response: Etcdserverpb_AuthUserGetResponse, _ style: OutputStyle) throws(CommandExit) -> [UInt8] {
        switch style.format {
        case .simple: return Array(("User: \(name)\nRoles:" + response.roles.map { " " + $0 }.joined() + "\n").utf8)
        case .json: return json(response.header, [("roles", response.roles.map(EtcdErrors.goJSONString))])
        case .protobuf: return protobuf(response)
        case .fields, .table: throw unsupported(style.format)
        }
    }

    /// `user list` and `role list`: one name per line.
    static func names(
        _ response: some AuthHeaderResponse, _ names: [String], _ field: String, _ style: OutputStyle
    ) throws(CommandExit) -> [UInt8] {
        switch style.format {
        case .simple: return Array(names.map { $0 + "\n" }.joined().utf8)
        case .json: return json(response.header, [(field.lowercased(), names.map(EtcdErrors.goJSONString))])
        case .protobuf: return protobuf(response)
        case .fields where field == "Roles":
            let line = "\"Roles\" :" + names.map { " " + GoFormat.quote($0) }.joined() + "\n"
            return Array((FieldsPrinter.headerLines(response.header) + line).utf8)
        case .fields, .table: throw unsupported(style.format)
        }
    }

    static func roleGet(_ name: String, _ response: Etcdserverpb_AuthRoleGetResponse, _ style: OutputStyle) throws(CommandExit) -> [UInt8] {
        switch style.format {
        case .simple:
            func lines(_ types: Set<Authpb_Permission.TypeEnum>) -> String {
                response.perm.filter { types.contains($0.permType) }.map { permission in
                    let key = String(decoding: permission.key, as: UTF8.self)
                    let end = String(decoding: permission.rangeEnd, as: UTF8.self)
                    if end.isEmpty { return "\t\(key)\n" }
                    let range = end != "\0" ? "\t[\(key), \(end))" : "\t[\(key), <open ended>"
                    return range + (RoleCommand.prefixEnd(key) == end ? " (prefix \(key))" : "") + "\n"
                }.joined()
            }
            return Array(
                ("Role \(name)\nKV Read:\n" + lines([.read, .readwrite]) + "KV Write:\n" + lines([.write, .readwrite])).utf8)
        case .json:
            let permissions = response.perm.map { permission in
                var object = JSONObject()
                object.number("permType", permission.permType.rawValue)
                object.bytes("key", permission.key)
                object.bytes("range_end", permission.rangeEnd)
                return object.text
            }
            return json(response.header, [("perm", permissions)])
        case .fields:
            let permissions = response.perm.map { permission in
                "\"PermType\" :  \(permission.permType.goName)\n\"Key\" : \(GoFormat.quote(Array(permission.key)))\n"
                    + "\"RangeEnd\" : \(GoFormat.quote(Array(permission.rangeEnd)))\n"
            }
            return Array((FieldsPrinter.headerLines(response.header) + permissions.joined()).utf8)
        case .protobuf: return protobuf(response)
        case .table: throw unsupported(.table)
        }
    }

    /// Go's json.Marshal of an auth response: the header, then its lists (left out when empty).
    private static func json(_ header: Etcdserverpb_ResponseHeader, _ lists: [(String, [String])]) -> [UInt8] {
        var object = JSONObject()
        object.raw("header", JSONPrinter.encode(header))
        for (name, values) in lists { object.list(name, values) }
        return Array((object.text + "\n").utf8)
    }

    private static func protobuf(_ message: some SwiftProtobuf.Message) -> [UInt8] {
        // Serialising an in-memory proto3 message cannot fail.
        (try? message.serializedBytes()) ?? []
    }
}

/// The auth responses, which all carry a header.
protocol AuthHeaderResponse: SwiftProtobuf.Message {
    var header: Etcdserverpb_ResponseHeader { get }
}

extension Etcdserverpb_AuthUserAddResponse: AuthHeaderResponse {}
extension Etcdserverpb_AuthUserDeleteResponse: AuthHeaderResponse {}
extension Etcdserverpb_AuthUserChangePasswordResponse: AuthHeaderResponse {}
extension Etcdserverpb_AuthUserGrantRoleResponse: AuthHeaderResponse {}
extension Etcdserverpb_AuthUserRevokeRoleResponse: AuthHeaderResponse {}
extension Etcdserverpb_AuthUserListResponse: AuthHeaderResponse {}
extension Etcdserverpb_AuthRoleAddResponse: AuthHeaderResponse {}
extension Etcdserverpb_AuthRoleDeleteResponse: AuthHeaderResponse {}
extension Etcdserverpb_AuthRoleGrantPermissionResponse: AuthHeaderResponse {}
extension Etcdserverpb_AuthRoleRevokePermissionResponse: AuthHeaderResponse {}
extension Etcdserverpb_AuthRoleListResponse: AuthHeaderResponse {}
