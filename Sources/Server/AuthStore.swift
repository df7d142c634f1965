internal import CryptoExtras
internal import EtcdAPI
internal import Foundation
internal import Storage
internal import SwiftProtobuf

/// etcd's auth store (auth/store.go) as kvd keeps it: users, roles and whether authentication is
/// enabled, changed only through Raft and applied the same way on every member, with etcd's
/// rules and errors; and the checks that use them (passwords, key-range permissions, admin).
struct AuthStore: Sendable, Equatable {
    /// Users by name.
    private(set) var users: [String: Authpb_User] = [:]
    /// Roles by name.
    private(set) var roles: [String: Authpb_Role] = [:]
    /// Bumped by every change that succeeds; etcd's auth store starts at 1.
    private(set) var revision: UInt64 = 1
    /// `auth enable` applied (and not disabled since).
    private(set) var enabled = false

    static let rootUser = "root"
    static let rootRole = "root"

    /// Names in etcd's order (its backend's: byte order).
    var userNames: [String] { users.keys.sorted(by: Self.byteOrder) }
    var roleNames: [String] { roles.keys.sorted(by: Self.byteOrder) }

    static func byteOrder(_ a: String, _ b: String) -> Bool { a.utf8.lexicographicallyPrecedes(b.utf8) }

    /// Applies one committed change. A failed change leaves the store (and its revision) as it was.
    mutating func apply(_ request: Kvdpb_InternalRequest.OneOf_Request) throws(AuthError) {
        switch request {
        case .authEnable:
            // Enabling twice is ignored; enabling keeps the revision (etcd).
            guard !enabled else { return }
            guard let root = users[Self.rootUser] else { throw .rootUserNotExist }
            guard root.roles.contains(Self.rootRole) else { throw .rootRoleNotExist }
            enabled = true
            return
        case .authDisable:
            guard enabled else { return }
            enabled = false
        case .authUserAdd(let add):
            guard !add.name.isEmpty else { throw .userEmpty }
            guard users[add.name] == nil else { throw .userExists }
            var user = Authpb_User()
            user.name = Data(add.name.utf8)
            if !add.options.noPassword { user.password = Data(add.password.utf8) }
            user.options = add.options
            users[add.name] = user
        case .authUserDelete(let delete):
            guard !(enabled && delete.name == Self.rootUser) else { throw .invalidAuthManagement }
            guard users.removeValue(forKey: delete.name) != nil else { throw .userNotFound }
        case .authUserChangePassword(let change):
            guard var user = users[change.name] else { throw .userNotFound }
            user.password = Data(change.password.utf8)
            users[change.name] = user
        case .authUserGrantRole(let grant):
            guard var user = users[grant.user] else { throw .userNotFound }
            // The root role need not exist to be granted (etcd).
            guard grant.role == Self.rootRole || roles[grant.role] != nil else { throw .roleNotFound }
            // Granting a role the user already has succeeds and changes nothing, revision included.
            guard !user.roles.contains(grant.role) else { return }
            user.roles.append(grant.role)
            user.roles.sort(by: Self.byteOrder)
            users[grant.user] = user
        case .authUserRevokeRole(let revoke):
            guard !(enabled && revoke.name == Self.rootUser && revoke.role == Self.rootRole) else {
                throw .invalidAuthManagement
            }
            guard var user = users[revoke.name] else { throw .userNotFound }
            guard let index = user.roles.firstIndex(of: revoke.role) else { throw .roleNotGranted }
            user.roles.remove(at: index)
            users[revoke.name] = user
        case .authRoleAdd(let add):
            guard !add.name.isEmpty else { throw .roleEmpty }
            guard roles[add.name] == nil else { throw .roleExists }
            var role = Authpb_Role()
            role.name = Data(add.name.utf8)
            roles[add.name] = role
        case .authRoleDelete(let delete):
            guard roles.removeValue(forKey: delete.role) != nil else { throw .roleNotFound }
            for (name, var user) in users where user.roles.contains(delete.role) {
                user.roles.removeAll { $0 == delete.role }
                users[name] = user
            }
        case .authRoleGrantPermission(let grant):
            guard var role = roles[grant.name] else { throw .roleNotFound }
            let permission = grant.perm
            // One permission per (key, range end): granting again changes its type. The list
            // stays sorted by key, as etcd keeps it.
            if let index = role.keyPermission.firstIndex(where: { $0.key == permission.key && $0.rangeEnd == permission.rangeEnd }) {
                role.keyPermission[index].permType = permission.permType
            } else {
                var added = Authpb_Permission()
                added.key = permission.key
                added.rangeEnd = permission.rangeEnd
                added.permType = permission.permType
                let position = role.keyPermission.firstIndex { added.key.lexicographicallyPrecedes($0.key) }
                role.keyPermission.insert(added, at: position ?? role.keyPermission.endIndex)
            }
            roles[grant.name] = role
        case .authRoleRevokePermission(let revoke):
            guard var role = roles[revoke.role] else { throw .roleNotFound }
            let before = role.keyPermission.count
            role.keyPermission.removeAll { $0.key == revoke.key && $0.rangeEnd == revoke.rangeEnd }
            guard role.keyPermission.count < before else { throw .permissionNotGranted }
            roles[revoke.role] = role
        default:
            preconditionFailure("not an auth store change: \(request)")
        }
        revision += 1
    }

    // MARK: passwords

    /// What a member proposes instead of a password: PBKDF2-HMAC-SHA256 with a fresh salt
    /// (etcd uses bcrypt, which swift-crypto lacks), as `pbkdf2-sha256$rounds$salt$hash` in
    /// base64, so that a password given to kvd is never kept in the clear.
    static func hashPassword(_ password: String) -> String {
        let rounds = passwordRounds
        let salt = (0..<16).map { _ in UInt8.random(in: 0...255) }
        guard let hash = derive(password, salt: salt, rounds: rounds) else {
            preconditionFailure("PBKDF2 with kvd's own parameters failed")
        }
        return "pbkdf2-sha256$\(rounds)$\(Data(salt).base64EncodedString())$\(hash.base64EncodedString())"
    }

    /// swift-crypto's floor, OWASP's advice for PBKDF2-HMAC-SHA512 and above SHA256's cost.
    static let passwordRounds = 210_000

    /// Nil when the parameters are refused (a stored hash that kvd did not make).
    private static func derive(_ password: String, salt: [UInt8], rounds: Int) -> Data? {
        guard let key = try? KDF.Insecure.PBKDF2.deriveKey(
            from: Array(password.utf8), salt: salt, using: .sha256, outputByteCount: 32, rounds: rounds)
        else { return nil }
        return key.withUnsafeBytes { Data($0) }
    }

    /// Whether `password` hashes to `stored` (a `hashPassword` result); in constant time.
    static func verifyPassword(_ password: String, stored: Data) -> Bool {
        let parts = String(decoding: stored, as: UTF8.self).split(separator: "$", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "pbkdf2-sha256", let rounds = Int(parts[1]), rounds > 0, rounds <= 10_000_000,
              let salt = Data(base64Encoded: String(parts[2])), let expected = Data(base64Encoded: String(parts[3]))
        else { return false }
        guard let actual = derive(password, salt: Array(salt), rounds: rounds), actual.count == expected.count else { return false }
        return zip(actual, expected).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }

    /// etcd's CheckPassword: the auth revision the password was checked at.
    func checkPassword(user name: String, password: String) throws(AuthError) -> UInt64 {
        guard enabled else { throw .authNotEnabled }
        guard let user = users[name] else { throw .authFailed }
        if user.options.noPassword { throw .noPasswordUser }
        guard Self.verifyPassword(password, stored: user.password) else { throw .authFailed }
        return revision
    }

    /// etcd's Authenticate as applied: who may get a token.
    func checkAuthenticate(user name: String) throws(AuthError) {
        guard enabled else { throw .authNotEnabled }
        guard let user = users[name], !user.options.noPassword else { throw .authFailed }
    }

    // MARK: permissions

    enum Access { case read, write }

    /// etcd's IsAdminPermitted: anyone while authentication is off, else a user with the root role.
    func checkAdmin(_ caller: AuthInfo?) throws(AuthError) {
        guard enabled else { return }
        guard let caller, !caller.user.isEmpty else { throw .userEmpty }
        guard let user = users[caller.user], user.roles.contains(Self.rootRole) else { throw .permissionDenied }
    }

    /// etcd's isOpPermitted: `caller` may read or write every key of [key, rangeEnd) (one key when
    /// `rangeEnd` is empty, every key from `key` on when it is "\0"), through the union of its roles'
    /// permissions; the root role may do anything.
    func check(_ caller: AuthInfo?, key: Data, rangeEnd: Data, _ access: Access) throws(AuthError) {
        guard enabled else { return }
        guard let caller, caller.revision != 0 else { throw .userEmpty }
        guard caller.revision >= revision else { throw .oldRevision }
        guard let user = users[caller.user] else { throw .permissionDenied }
        if user.roles.contains(Self.rootRole) { return }
        guard permits(user, key: key, rangeEnd: rangeEnd, access) else { throw .permissionDenied }
    }

    /// etcd's checkTxnAuth: the compares' keys are read, each op as its own request would be
    /// (nested txns too, as etcd 3.5 checks them).
    func check(_ caller: AuthInfo?, txn: Etcdserverpb_TxnRequest) throws(AuthError) {
        guard enabled else { return }
        for compare in txn.compare { try check(caller, key: compare.key, rangeEnd: compare.rangeEnd, .read) }
        for op in txn.success + txn.failure {
            switch op.request {
            case .requestRange(let range):
                try check(caller, key: range.key, rangeEnd: range.rangeEnd, .read)
            case .requestPut(let put):
                try check(caller, key: put.key, rangeEnd: Data(), .write)
            case .requestDeleteRange(let delete):
                if delete.prevKv { try check(caller, key: delete.key, rangeEnd: delete.rangeEnd, .read) }
                try check(caller, key: delete.key, rangeEnd: delete.rangeEnd, .write)
            case .requestTxn(let nested):
                try check(caller, txn: nested)
            case nil:
                break
            }
        }
    }

    private func permits(_ user: Authpb_User, key: Data, rangeEnd: Data, _ access: Access) -> Bool {
        // Each granted permission as [begin, end); nil: no end.
        var granted: [(begin: Data, end: Data?)] = []
        for name in user.roles {
            for permission in roles[name]?.keyPermission ?? [] {
                switch (permission.permType, access) {
                case (.readwrite, _), (.read, .read), (.write, .write): break
                default: continue
                }
                let end: Data? = permission.rangeEnd.isEmpty
                    ? permission.key + [0] : (permission.rangeEnd == Data([0]) ? nil : permission.rangeEnd)
                granted.append((permission.key, end))
            }
        }
        func below(_ a: Data, _ b: Data?) -> Bool { b.map { a.lexicographicallyPrecedes($0) } ?? true }
        if rangeEnd.isEmpty {
            return granted.contains { !key.lexicographicallyPrecedes($0.begin) && below(key, $0.end) }
        }
        // The range must be covered by the union: walk from its start through the permissions
        // that begin at or before the point reached.
        let end: Data? = rangeEnd == Data([0]) ? nil : rangeEnd
        granted.sort { $0.begin.lexicographicallyPrecedes($1.begin) }
        var reached = key
        for permission in granted {
            guard !reached.lexicographicallyPrecedes(permission.begin) else { break }
            guard below(reached, permission.end) else { continue }
            guard let permissionEnd = permission.end else { return true }
            reached = permissionEnd
            if let end, !reached.lexicographicallyPrecedes(end) { return true }
        }
        return false
    }

    // MARK: persistence

    static let key = Array("auth".utf8)

    /// Users, roles, revision and enablement as another store had them (a restored snapshot).
    init(users: [Authpb_User], roles: [Authpb_Role], revision: UInt64, enabled: Bool) {
        for user in users { self.users[String(decoding: user.name, as: UTF8.self)] = user }
        for role in roles { self.roles[String(decoding: role.name, as: UTF8.self)] = role }
        self.revision = revision
        self.enabled = enabled
    }

    init() {}

    static func load(from database: Database, in view: ConsistentView? = nil) throws -> AuthStore {
        guard let bytes = try database.get(database.columnFamily(Membership.family), key, in: view) else { return AuthStore() }
        let state = try Kvdpb_AuthState(serializedBytes: bytes)
        return AuthStore(users: state.users, roles: state.roles, revision: state.revision, enabled: state.enabled)
    }

    func save(into batch: WriteBatch, database: Database) {
        var state = Kvdpb_AuthState()
        state.revision = revision
        state.enabled = enabled
        state.users = userNames.compactMap { users[$0] }
        state.roles = roleNames.compactMap { roles[$0] }
        // Serializing a message we built cannot fail.
        let bytes: [UInt8] = (try? state.serializedBytes()) ?? []
        batch.put(database.columnFamily(Membership.family), Self.key, bytes)
    }
}

/// Why the auth store refused a change or a lookup; etcd's errors (auth/store.go).
package enum AuthError: Error, Equatable, Sendable {
    case userEmpty
    case userExists
    case userNotFound
    case roleEmpty
    case roleExists
    case roleNotFound
    case roleNotGranted
    case permissionNotGranted
    case rootUserNotExist
    case rootRoleNotExist
    case authNotEnabled
    case authFailed
    case noPasswordUser
    case permissionDenied
    case invalidToken
    case oldRevision
    case invalidAuthManagement
    /// `Authenticate` on a member that has only the JWT public key.
    case verifyOnly
}

/// Who a request comes from once authentication is on (etcd's AuthInfo): the user, and the auth
/// revision its permissions were looked up at.
struct AuthInfo: Sendable, Equatable {
    var user: String
    var revision: UInt64
}
