internal import CryptoExtras
internal import EtcdAPI
internal import Foundation
internal import Storage
internal import SwiftProtobuf

/// etcd's auth store (auth/store.go) as kvd keeps it: users and roles, changed only through
/// Raft and applied the same way on every member, with etcd's rules and errors. Authentication
/// itself stays disabled (clients are identified by their mTLS certificates), so nothing here
/// checks a password or a permission; the store exists because etcd keeps users and roles with
/// auth disabled and tools expect them back.
struct AuthStore: Sendable, Equatable {
    /// Users by name.
    private(set) var users: [String: Authpb_User] = [:]
    /// Roles by name.
    private(set) var roles: [String: Authpb_Role] = [:]
    /// Bumped by every change that succeeds; etcd's auth store starts at 1.
    private(set) var revision: UInt64 = 1

    static let rootUser = "root"
    static let rootRole = "root"

    /// Names in etcd's order (its backend's: byte order).
    var userNames: [String] { users.keys.sorted(by: Self.byteOrder) }
    var roleNames: [String] { roles.keys.sorted(by: Self.byteOrder) }

    static func byteOrder(_ a: String, _ b: String) -> Bool { a.utf8.lexicographicallyPrecedes(b.utf8) }

    /// etcd's AuthEnable checks, which are as far as kvd goes: it never turns authentication on.
    func checkRootForEnable() -> AuthError {
        guard let root = users[Self.rootUser] else { return .rootUserNotExist }
        guard root.roles.contains(Self.rootRole) else { return .rootRoleNotExist }
        return .enableUnsupported
    }

    /// Applies one committed change. A failed change leaves the store (and its revision) as it was.
    mutating func apply(_ request: Kvdpb_InternalRequest.OneOf_Request) throws(AuthError) {
        switch request {
        case .authUserAdd(let add):
            guard !add.name.isEmpty else { throw .userEmpty }
            guard users[add.name] == nil else { throw .userExists }
            var user = Authpb_User()
            user.name = Data(add.name.utf8)
            if !add.options.noPassword { user.password = Data(add.password.utf8) }
            user.options = add.options
            users[add.name] = user
        case .authUserDelete(let delete):
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
    /// base64. Never checked, since authentication stays off; stored so that a password given to
    /// kvd is not kept in the clear.
    static func hashPassword(_ password: String) -> String {
        let rounds = 210_000  // swift-crypto's floor, OWASP's advice for PBKDF2-HMAC-SHA512 and above SHA256's cost
        let salt = (0..<16).map { _ in UInt8.random(in: 0...255) }
        let hash: Data
        do {
            let key = try KDF.Insecure.PBKDF2.deriveKey(
                from: Array(password.utf8), salt: salt, using: .sha256, outputByteCount: 32, rounds: rounds)
            hash = key.withUnsafeBytes { Data($0) }
        } catch {
            preconditionFailure("PBKDF2 with fixed valid parameters failed: \(error)")
        }
        return "pbkdf2-sha256$\(rounds)$\(Data(salt).base64EncodedString())$\(hash.base64EncodedString())"
    }

    // MARK: persistence

    static let key = Array("auth".utf8)

    static func load(from database: Database) throws -> AuthStore {
        guard let bytes = try database.get(database.columnFamily(Membership.family), key) else { return AuthStore() }
        let state = try Kvdpb_AuthState(serializedBytes: bytes)
        var store = AuthStore()
        store.revision = state.revision
        for user in state.users { store.users[String(decoding: user.name, as: UTF8.self)] = user }
        for role in state.roles { store.roles[String(decoding: role.name, as: UTF8.self)] = role }
        return store
    }

    func save(into batch: WriteBatch, database: Database) {
        var state = Kvdpb_AuthState()
        state.revision = revision
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
    /// The root user and role exist, so etcd would enable authentication; kvd does not.
    case enableUnsupported
}
