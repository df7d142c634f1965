internal import Crypto
internal import EtcdAPI
internal import Foundation
internal import MVCC
internal import Storage
internal import SwiftProtobuf

/// etcd's snapshot file: its backend database (bbolt) with etcd's buckets, followed by the
/// SHA-256 of the database when it came from a `Snapshot` stream. kvd writes its client
/// snapshots in this form, so that `etcdctl snapshot status` and `snapshot restore` take them
/// (a kvd cluster moves onto etcd), and restores from it, so that a snapshot of an etcd member
/// becomes a kvd member with the same key space (an etcd cluster moves onto kvd).
///
/// What moves: every key's history (create and mod revisions, versions, leases), the leases, the
/// compaction point, users, roles and whether auth is enabled. What does not: the membership
/// (a restore makes a new cluster, as etcd's does), alarms, and the passwords' use — etcd keeps
/// bcrypt hashes and kvd PBKDF2 ones, so a user moved either way needs `user passwd` before it can
/// authenticate with a password (client certificates still work).
package enum EtcdBackupFile {
    /// etcd 3.4's buckets, in bbolt's (byte) order.
    static let buckets = [
        "alarm", "auth", "authRoles", "authUsers", "cluster", "key", "lease", "members", "members_removed", "meta",
    ]
    static let authEnabledKey = Array("authEnabled".utf8)
    static let authRevisionKey = Array("authRevision".utf8)

    /// Writes the state `view` shows as etcd's backend at `path`; returns the file's size.
    static func write(_ view: ReadView, database: Database, to path: String) throws -> UInt64 {
        let consistent = view.consistentView
        let auth = try AuthStore.load(from: database, in: consistent)
        let applied = try database.get(database.columnFamily("meta"), MVCCStore.appliedMarkerKey, in: consistent)
        let writer = try BoltWriter(path: path)
        for name in buckets {
            writer.beginBucket(Array(name.utf8))
            switch name {
            case "auth":
                try writer.put(authEnabledKey, [auth.enabled ? 1 : 0])
                try writer.put(authRevisionKey, bigEndian(auth.revision))
            case "authRoles":
                for name in auth.roleNames { try writer.put(Array(name.utf8), try auth.roles[name]!.serializedBytes()) }
            case "authUsers":
                for name in auth.userNames { try writer.put(Array(name.utf8), try auth.users[name]!.serializedBytes()) }
            case "key":
                try EtcdBackend.forEachKeyRecord(of: view) { key, value in try writer.put(key, value) }
            case "lease":
                for record in try EtcdBackend.leaseRecords(of: view) { try writer.put(record.key, record.value) }
            case "meta":
                let index = applied.map { $0.reduce(UInt64(0)) { $0 << 8 | UInt64($1) } } ?? 0
                for record in EtcdBackend.metaRecords(of: view, consistentIndex: index) { try writer.put(record.key, record.value) }
            default:
                break  // the membership and alarms are the cluster's, not the key space's
            }
            try writer.endBucket()
        }
        return try writer.finish()
    }

    /// Whether `path` starts as a bbolt database does (rather than kvd's older snapshot image).
    package static func isBoltFile(_ path: String) -> Bool {
        guard let file = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? file.close() }  // read-only
        guard let head = try? file.read(upToCount: BoltLayout.headerSize + 4), head.count == BoltLayout.headerSize + 4 else {
            return false
        }
        let magic = head.suffix(4).reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        return magic == BoltLayout.magic
    }

    /// Fills the state families of an empty `database` from the backend at `path`.
    static func restore(from path: String, into database: Database) throws {
        let file = try BoltReader(path: path)
        var importer = EtcdBackendImporter(database: database)
        var users: [Authpb_User] = []
        var roles: [Authpb_Role] = []
        var authEnabled = false
        var authRevision: UInt64 = 1
        for (name, bucket) in try file.buckets() {
            switch String(decoding: name, as: UTF8.self) {
            case "key": try file.forEach(in: bucket) { key, value, _ in try importer.addKeyRecord(key: key, value: value) }
            case "lease": try file.forEach(in: bucket) { key, value, _ in try importer.addLeaseRecord(key: key, value: value) }
            case "meta": try file.forEach(in: bucket) { key, value, _ in try importer.addMetaRecord(key: key, value: value) }
            case "authUsers": try file.forEach(in: bucket) { _, value, _ in users.append(try Authpb_User(serializedBytes: value)) }
            case "authRoles": try file.forEach(in: bucket) { _, value, _ in roles.append(try Authpb_Role(serializedBytes: value)) }
            case "auth":
                try file.forEach(in: bucket) { key, value, _ in
                    if key == authEnabledKey { authEnabled = value == [1] }
                    if key == authRevisionKey, value.count == 8 { authRevision = value.reduce(0) { $0 << 8 | UInt64($1) } }
                }
            default:
                break  // the old cluster's membership, alarms and version
            }
        }
        try importer.finish()
        let batch = WriteBatch()
        AuthStore(users: users, roles: roles, revision: authRevision, enabled: authEnabled).save(into: batch, database: database)
        try database.write(batch, sync: true)
    }

    /// etcd's `snapshot status` of a backend file (etcdutl's Status): a CRC-32C over every
    /// bucket's name and records in order, the main revision of the last `key` record, the number
    /// of records in all buckets, and the database's size.
    package struct Status: Equatable, Sendable {
        package var hash: UInt32
        package var revision: Int64
        package var totalKey: Int
        package var totalSize: Int64
    }

    package static func status(of path: String) throws -> Status {
        let file = try BoltReader(path: path)
        var crc = CRC32C()
        var revision: Int64 = 0
        var total = 0
        for (name, bucket) in try file.buckets() {
            crc.update(name)
            let isKeyBucket = name == Array("key".utf8)
            try file.forEach(in: bucket) { key, value, isBucket in
                crc.update(key)
                // bbolt hands a nested bucket's entry over with no value.
                if !isBucket { crc.update(value) }
                if isKeyBucket && key.count >= 8 { revision = Int64(bitPattern: key.prefix(8).reduce(0) { $0 << 8 | UInt64($1) }) }
                total += 1
            }
        }
        return Status(hash: crc.checksum, revision: revision, totalKey: total, totalSize: Int64(file.highWater) * Int64(file.pageSize))
    }

    private static func bigEndian(_ value: UInt64) -> [UInt8] {
        (0..<8).reversed().map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) }
    }
}
