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

    @Test func enablingAuthNeedsARootUserWithTheRootRoleAndIsThenRefused() throws {
        var store = AuthStore()
        #expect(store.checkRootForEnable() == .rootUserNotExist)
        try store.apply(userAdd("root"))
        #expect(store.checkRootForEnable() == .rootRoleNotExist)
        try store.apply(grant("root", "root"))
        #expect(store.checkRootForEnable() == .enableUnsupported)
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
