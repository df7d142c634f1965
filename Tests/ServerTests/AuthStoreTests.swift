import EtcdAPI
import Foundation
@testable import Server
import Storage
import SwiftProtobuf
import Testing

/// etcd's auth store rules (auth/store.go), change by change.
@Suite struct AuthStoreTests {
    private func userAdd(_ name: String, password: String = "p", noPassword: Bool = false) -> Kvdpb_InternalRequest.OneOf_Request {
        .authUserAdd(.with {
            $0.name = name
            $0.password = password
            if noPassword { $0.options.noPassword = true }
        })
    }
    private func roleAdd(_ name: String) -> Kvdpb_InternalRequest.OneOf_Request { .authRoleAdd(.with { $0.name = name }) }
    private func grant(_ user: String, _ role: String) -> Kvdpb_InternalRequest.OneOf_Request {
        .authUserGrantRole(.with {
            $0.user = user
            $0.role = role
        })
    }
    private func permission(_ role: String, _ key: String, _ end: String, _ type: Authpb_Permission.TypeEnum) -> Kvdpb_InternalRequest.OneOf_Request {
        .authRoleGrantPermission(.with {
            $0.name = role
            $0.perm.key = Data(key.utf8)
            $0.perm.rangeEnd = Data(end.utf8)
            $0.perm.permType = type
        })
    }

    /// Applies `change` expecting `error`; the store must be left exactly as it was.
    private func expectRefused(_ store: inout AuthStore, _ change: Kvdpb_InternalRequest.OneOf_Request, _ error: AuthError) {
        let before = store
        #expect(throws: error) { try store.apply(change) }
        #expect(store == before)
    }

    @Test func usersAreAddedOnceAndEachSuccessBumpsTheRevision() throws {
        var store = AuthStore()
        #expect(store.revision == 1)
        try store.apply(userAdd("bob"))
        try store.apply(userAdd("alice", noPassword: true))
        #expect(store.revision == 3)
        #expect(store.userNames == ["alice", "bob"])
        #expect(store.users["alice"]?.password.isEmpty == true)
        #expect(store.users["bob"]?.password == Data("p".utf8))
        expectRefused(&store, userAdd("bob"), .userExists)
        expectRefused(&store, userAdd(""), .userEmpty)
        expectRefused(&store, .authUserDelete(.with { $0.name = "carol" }), .userNotFound)
        expectRefused(&store, .authUserChangePassword(.with { $0.name = "carol" }), .userNotFound)
        try store.apply(.authUserDelete(.with { $0.name = "bob" }))
        #expect(store.userNames == ["alice"])
        #expect(store.revision == 4)
    }

    @Test func rolesAreGrantedAndRevokedAsEtcdDoes() throws {
        var store = AuthStore()
        try store.apply(userAdd("u"))
        expectRefused(&store, grant("u", "readers"), .roleNotFound)
        expectRefused(&store, grant("nobody", "root"), .userNotFound)
        try store.apply(roleAdd("readers"))
        expectRefused(&store, roleAdd("readers"), .roleExists)
        expectRefused(&store, roleAdd(""), .roleEmpty)
        try store.apply(grant("u", "readers"))
        try store.apply(grant("u", "root"))  // the root role need not exist
        #expect(store.users["u"]?.roles == ["readers", "root"])
        // Granting again succeeds without a change, revision included.
        let revision = store.revision
        try store.apply(grant("u", "readers"))
        #expect(store.revision == revision)
        try store.apply(.authUserRevokeRole(.with {
            $0.name = "u"
            $0.role = "root"
        }))
        expectRefused(&store, .authUserRevokeRole(.with {
            $0.name = "u"
            $0.role = "root"
        }), .roleNotGranted)
        // Deleting a role takes it from every user.
        try store.apply(.authRoleDelete(.with { $0.role = "readers" }))
        #expect(store.users["u"]?.roles == [])
        expectRefused(&store, .authRoleDelete(.with { $0.role = "readers" }), .roleNotFound)
    }

    @Test func permissionsStaySortedByKeyAndRegrantingChangesTheType() throws {
        var store = AuthStore()
        try store.apply(roleAdd("r"))
        expectRefused(&store, permission("missing", "a", "", .read), .roleNotFound)
        try store.apply(permission("r", "m", "", .read))
        try store.apply(permission("r", "a", "b", .write))
        try store.apply(permission("r", "m", "n", .read))
        try store.apply(permission("r", "m", "", .readwrite))
        let permissions = try #require(store.roles["r"]?.keyPermission)
        #expect(permissions.map { String(decoding: $0.key + $0.rangeEnd, as: UTF8.self) } == ["ab", "m", "mn"])
        #expect(permissions.map(\.permType) == [.write, .readwrite, .read])
        expectRefused(&store, .authRoleRevokePermission(.with {
            $0.role = "r"
            $0.key = Data("m".utf8)
            $0.rangeEnd = Data("z".utf8)
        }), .permissionNotGranted)
        try store.apply(.authRoleRevokePermission(.with {
            $0.role = "r"
            $0.key = Data("m".utf8)
        }))
        #expect(store.roles["r"]?.keyPermission.count == 2)
    }

    @Test func enablingAuthNeedsARootUserWithTheRootRoleAndKeepsTheRevision() throws {
        var store = AuthStore()
        expectRefused(&store, .authEnable(.init()), .rootUserNotExist)
        try store.apply(userAdd("root"))
        expectRefused(&store, .authEnable(.init()), .rootRoleNotExist)
        try store.apply(grant("root", "root"))
        let revision = store.revision
        try store.apply(.authEnable(.init()))
        try store.apply(.authEnable(.init()))  // again: ignored
        #expect(store.enabled && store.revision == revision)
        // The root user and its root role cannot be taken away while auth is on.
        expectRefused(&store, .authUserDelete(.with { $0.name = "root" }), .invalidAuthManagement)
        expectRefused(&store, .authUserRevokeRole(.with {
            $0.name = "root"
            $0.role = "root"
        }), .invalidAuthManagement)
        try store.apply(.authDisable(.init()))
        #expect(!store.enabled && store.revision == revision + 1)
        try store.apply(.authDisable(.init()))  // again: no new revision
        #expect(store.revision == revision + 1)
    }

    @Test func passwordsAreCheckedAgainstTheirHash() throws {
        var store = AuthStore()
        try store.apply(userAdd("root", password: AuthStore.hashPassword("rootpw")))
        try store.apply(userAdd("svc", noPassword: true))
        try store.apply(grant("root", "root"))
        #expect(throws: AuthError.authNotEnabled) { try store.checkPassword(user: "root", password: "rootpw") }
        try store.apply(.authEnable(.init()))
        #expect(try store.checkPassword(user: "root", password: "rootpw") == store.revision)
        #expect(throws: AuthError.authFailed) { try store.checkPassword(user: "root", password: "rootpW") }
        #expect(throws: AuthError.authFailed) { try store.checkPassword(user: "nobody", password: "rootpw") }
        #expect(throws: AuthError.noPasswordUser) { try store.checkPassword(user: "svc", password: "") }
        #expect(!AuthStore.verifyPassword("x", stored: Data("pbkdf2-sha256$0$$".utf8)))
        #expect(!AuthStore.verifyPassword("x", stored: Data("x".utf8)))
        #expect(!AuthStore.verifyPassword("x", stored: Data("pbkdf2-sha256$10$AAAA$AAAA".utf8)))  // below PBKDF2's floor
    }

    /// etcd's range permission cache: a range is allowed only when the union of the user's
    /// roles' grants covers all of it; one key when any grant holds it.
    @Test func keyRangesMustBeCoveredByTheUnionOfTheRolesGrants() throws {
        var store = AuthStore()
        try store.apply(userAdd("root"))
        try store.apply(grant("root", "root"))
        try store.apply(userAdd("alice"))
        try store.apply(roleAdd("a"))
        try store.apply(roleAdd("b"))
        try store.apply(permission("a", "c", "f", .read))
        try store.apply(permission("b", "f", "h", .readwrite))
        try store.apply(permission("b", "k", "", .write))
        try store.apply(permission("b", "x", "\0", .read))
        try store.apply(grant("alice", "a"))
        try store.apply(grant("alice", "b"))
        try store.apply(.authEnable(.init()))
        let alice = AuthInfo(user: "alice", revision: store.revision)
        func allowed(_ key: String, _ end: String, _ access: AuthStore.Access, _ who: AuthInfo? = nil) -> Bool {
            (try? store.check(who ?? alice, key: Data(key.utf8), rangeEnd: Data(end.utf8), access)) != nil
        }
        #expect(allowed("c", "", .read) && allowed("e", "", .read) && allowed("f", "", .write))
        #expect(allowed("c", "h", .read))  // [c,f) and [f,h) together
        #expect(!allowed("c", "i", .read))  // beyond h
        #expect(!allowed("b", "d", .read))  // starts before c
        #expect(!allowed("c", "h", .write))  // [c,f) is read only
        #expect(allowed("f", "h", .write))
        #expect(allowed("k", "", .write) && !allowed("k", "", .read) && !allowed("k", "k\0", .read))
        #expect(allowed("k", "k\0", .write))  // the one key as a range
        #expect(allowed("x", "\0", .read) && allowed("zzz", "", .read) && !allowed("w", "\0", .read))
        #expect(!allowed("a", "", .read))
        #expect(allowed("anything", "\0", .write, AuthInfo(user: "root", revision: store.revision)))
        #expect(throws: AuthError.userEmpty) { try store.check(nil, key: Data("c".utf8), rangeEnd: Data(), .read) }
        #expect(throws: AuthError.permissionDenied) {
            try store.check(AuthInfo(user: "nobody", revision: store.revision), key: Data("c".utf8), rangeEnd: Data(), .read)
        }
        #expect(throws: AuthError.oldRevision) {
            try store.check(AuthInfo(user: "alice", revision: store.revision - 1), key: Data("c".utf8), rangeEnd: Data(), .read)
        }
        #expect(throws: AuthError.permissionDenied) { try store.checkAdmin(alice) }
        try store.checkAdmin(AuthInfo(user: "root", revision: 1))
    }

    @Test func passwordsAreStoredHashedWithAFreshSalt() {
        let first = AuthStore.hashPassword("secret"), second = AuthStore.hashPassword("secret")
        let fields = first.split(separator: "$", omittingEmptySubsequences: false)
        #expect(fields.count == 4 && fields[0] == "pbkdf2-sha256" && fields[1] == "210000")
        #expect(fields.count == 4 && Data(base64Encoded: String(fields[3]))?.count == 32)
        #expect(!first.contains("secret"))
        #expect(first != second)
    }

    @Test func theStoreSurvivesAWriteAndARead() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kvd-auth-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let database = try Database(path: directory.path, columnFamilies: Member.columnFamilies)
        #expect(try AuthStore.load(from: database) == AuthStore())
        var store = AuthStore()
        try store.apply(userAdd("ü"))
        try store.apply(roleAdd("r"))
        try store.apply(permission("r", "k", "", .read))
        try store.apply(grant("ü", "r"))
        let batch = WriteBatch()
        store.save(into: batch, database: database)
        try database.write(batch, sync: true)
        #expect(try AuthStore.load(from: database) == store)
    }
}
