internal import Foundation
internal import Logging
internal import MVCC

/// A data directory made by etcdctl's `snapshot restore` that no etcd has run on yet: the backend
/// (bbolt) in `member/snap/db` holds the whole key space, and etcd's WAL and `.snap` file hold
/// nothing but the new cluster's members. kvd takes such a directory over as `kvctl snapshot
/// restore` would have made it, so that an operator who restored with etcdctl (as etcd's own
/// tests and runbooks do) can start kvd on it. The etcd files are kept beside, in
/// `member.etcd`.
///
/// Anything else of etcd's (a member that ran, even once: its WAL has entries past the
/// membership, or its backend applied them) is refused by the caller: its latest writes are in
/// the WAL, which kvd does not read, and starting would lose them.
enum EtcdRestoredDirectory {
    /// What etcdctl's restore wrote: the members (Raft voters) and the index of the snapshot.
    struct Restore: Equatable {
        var voters: Set<UInt64>
        var index: UInt64
    }

    /// Why a directory cannot be taken over.
    struct NotTaken: Error, CustomStringConvertible {
        var description: String
    }

    /// Takes the directory over when it is an untouched etcdctl restore whose members are
    /// `configuration`'s initial cluster; throws `NotTaken` saying why not otherwise.
    static func takeOver(_ configuration: MemberConfiguration, logger: Logger) throws {
        let directory = configuration.dataDirectory
        guard configuration.walDirectory == nil else { throw NotTaken(description: "--wal-dir is set") }
        let restore = try inspect(directory)
        let expected = Set(configuration.initialCluster.map {
            ClusterIdentity.memberID(peerURLs: $0.peerURLs, token: configuration.initialClusterToken).value
        })
        guard expected == restore.voters else {
            throw NotTaken(description: "its members (\(hex(restore.voters))) are not those --initial-cluster and "
                + "--initial-cluster-token name (\(hex(expected))); start with the flags it was restored with")
        }
        let staging = stagingDirectory(directory)
        try? FileManager.default.removeItem(atPath: staging)
        var restored = configuration
        restored.dataDirectory = staging
        _ = try Bootstrap.restore(
            imagePath: directory + "/member/snap/db", configuration: restored, skipHashCheck: true, logger: logger)
        // Renamed last: a crash before leaves the etcd directory as it was (and a staging
        // directory, made again on the next start); the renames are made durable before the
        // member starts, so that no write it acknowledges can land in a directory a power cut
        // would then put back as the staging one.
        try FileSystem.syncDirectory(staging + "/member")
        try FileManager.default.moveItem(atPath: directory + "/member", toPath: directory + "/member.etcd")
        try FileManager.default.moveItem(atPath: staging + "/member", toPath: directory + "/member")
        try FileSystem.syncDirectory(directory)
        try? FileManager.default.removeItem(atPath: staging)
        logger.notice("took over a data directory restored by etcdctl snapshot restore; its etcd files are in member.etcd", metadata: [
            "data-dir": "\(directory)", "members": "\(hex(restore.voters))",
        ])
    }

    static func stagingDirectory(_ directory: String) -> String { directory + "/.kvd-restore" }

    /// Runs `body` holding an exclusive lock on `directory`: two members started on it at once
    /// would otherwise move each other's files.
    static func whileLocked(_ directory: String, _ body: () throws -> Void) throws {
        let lock = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard lock >= 0 else { throw ConfigurationError.invalid("open \(directory): \(String(cString: strerror(errno)))") }
        defer { close(lock) }
        if flock(lock, LOCK_EX | LOCK_NB) != 0 {
            if errno == EWOULDBLOCK { throw NotTaken(description: "another process is using it") }
            throw ConfigurationError.invalid("lock \(directory): \(String(cString: strerror(errno)))")
        }
        try body()
    }

    /// Ends a take-over that stopped between its two renames (the etcd files already moved to
    /// `member.etcd`, kvd's still staged).
    static func finishInterruptedTakeOver(_ directory: String) throws {
        let files = FileManager.default, staged = stagingDirectory(directory) + "/member"
        guard !files.fileExists(atPath: directory + "/member"), files.fileExists(atPath: directory + "/member.etcd"),
            files.fileExists(atPath: staged)
        else { return }
        try files.moveItem(atPath: staged, toPath: directory + "/member")
        try FileSystem.syncDirectory(directory)
        try? files.removeItem(atPath: stagingDirectory(directory))
    }

    /// The members and snapshot index of an untouched etcdctl restore in `directory`.
    static func inspect(_ directory: String) throws -> Restore {
        let snapDirectory = directory + "/member/snap", walDirectory = directory + "/member/wal"
        let files = FileManager.default
        let snaps = ((try? files.contentsOfDirectory(atPath: snapDirectory)) ?? []).filter { $0.hasSuffix(".snap") }
        let wals = ((try? files.contentsOfDirectory(atPath: walDirectory)) ?? []).filter { $0.hasSuffix(".wal") }
        guard snaps.count == 1, wals.count == 1 else {
            throw NotTaken(description: "it has \(snaps.count) .snap and \(wals.count) .wal files, where a restore has one of each")
        }
        guard let snap = files.contents(atPath: snapDirectory + "/" + snaps[0]) else {
            throw NotTaken(description: "cannot read \(snaps[0])")
        }
        let restore = try snapshotMetadata(Array(snap))
        guard let wal = try? Data(contentsOf: URL(fileURLWithPath: walDirectory + "/" + wals[0]), options: .alwaysMapped) else {
            throw NotTaken(description: "cannot read \(wals[0])")
        }
        if let past = try lastEntryIndex(inWAL: wal), past > restore.index {
            throw NotTaken(description: "etcd has run on it (its WAL holds entries up to \(past), past the restore's \(restore.index))")
        }
        var consistentIndex: UInt64?
        do {
            let backend = try BoltReader(path: snapDirectory + "/db")
            if let meta = try backend.bucket(named: "meta") {
                try backend.forEach(in: meta) { key, value, _ in
                    if key == EtcdBackend.consistentIndexKey, value.count == 8 { consistentIndex = value.reduce(0) { $0 << 8 | UInt64($1) } }
                }
            }
        } catch {
            throw NotTaken(description: "its member/snap/db cannot be read: \(error)")
        }
        guard consistentIndex == restore.index else {
            throw NotTaken(description: "etcd has run on it (its backend applied up to \(consistentIndex.map(String.init) ?? "nothing"), "
                + "where a restore leaves \(restore.index))")
        }
        return restore
    }

    /// A `.snap` file: etcd's snappb.Snapshot {crc = 1, data = 2}, whose data is a
    /// raftpb.Snapshot {data = 1, metadata = 2 {conf_state = 1 {voters = 1, learners = 2}, index =
    /// 2, term = 3}}. A restore writes term 1, index = the number of members, no learners.
    static func snapshotMetadata(_ bytes: [UInt8]) throws -> Restore {
        let notARestore = NotTaken(description: "its .snap file is not one etcdctl's restore writes")
        guard let snapshot = try ProtobufFields(bytes).bytes(2),
            let metadata = try ProtobufFields(snapshot).bytes(2),
            let confState = try ProtobufFields(metadata).bytes(1)
        else { throw notARestore }
        let fields = try ProtobufFields(metadata), members = try ProtobufFields(confState)
        let voters = Set(members.varints(1))
        guard fields.varints(3).last == 1, let index = fields.varints(2).last, members.varints(2).isEmpty,
            !voters.isEmpty, index == UInt64(voters.count)
        else { throw notARestore }
        return Restore(voters: voters, index: index)
    }

    /// The highest entry index in an etcd WAL segment: records of a little-endian 64-bit frame
    /// (length in the low 56 bits) and a walpb.Record {type = 1, crc = 2, data = 3}; entry
    /// records (type 2) hold a raftpb.Entry {index = 3}. A record is padded to 8 bytes, the
    /// padding's size in the frame's top byte (0x80 | size). The preallocated rest is zeros.
    static func lastEntryIndex(inWAL wal: Data) throws -> UInt64? {
        let bytes = [UInt8](wal)
        var offset = 0, last: UInt64?
        while offset + 8 <= bytes.count {
            let frame = bytes[offset..<offset + 8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            let length = Int(frame & 0x00FF_FFFF_FFFF_FFFF)
            let padding = frame & (1 << 63) != 0 ? Int((frame >> 56) & 0x7) : 0
            guard length > 0 else { break }
            guard length + padding <= bytes.count - offset - 8 else { throw NotTaken(description: "its WAL ends in a torn record") }
            let record = try ProtobufFields(Array(bytes[offset + 8..<offset + 8 + length]))
            if record.varints(1).last == 2, let entry = try record.bytes(3), let index = try ProtobufFields(entry).varints(3).last {
                last = max(last ?? 0, index)
            }
            offset += 8 + length + padding
        }
        return last
    }

    private static func hex(_ ids: Set<UInt64>) -> String {
        ids.sorted().map { String($0, radix: 16) }.joined(separator: ",")
    }
}

/// The top-level fields of one protobuf message, enough to read etcd's WAL and snapshot files
/// without their generated types.
private struct ProtobufFields {
    private var values: [(field: Int, varint: UInt64?, bytes: [UInt8]?)] = []

    init(_ bytes: [UInt8]) throws {
        var offset = 0
        func varint() throws -> UInt64 {
            var value: UInt64 = 0, shift: UInt64 = 0
            while offset < bytes.count, shift < 64 {
                let byte = bytes[offset]
                offset += 1
                value |= UInt64(byte & 0x7F) << shift
                if byte < 0x80 { return value }
                shift += 7
            }
            throw EtcdRestoredDirectory.NotTaken(description: "a damaged protobuf message in its etcd files")
        }
        while offset < bytes.count {
            let key = try varint()
            let field = Int(key >> 3)
            switch key & 7 {
            case 0: values.append((field, try varint(), nil))
            case 1, 5:
                let size = key & 7 == 1 ? 8 : 4
                guard size <= bytes.count - offset else { throw EtcdRestoredDirectory.NotTaken(description: "a damaged protobuf message in its etcd files") }
                offset += size
            case 2:
                let length = try varint()
                guard length <= UInt64(bytes.count - offset) else {
                    throw EtcdRestoredDirectory.NotTaken(description: "a damaged protobuf message in its etcd files")
                }
                values.append((field, nil, Array(bytes[offset..<offset + Int(length)])))
                offset += Int(length)
            default:
                throw EtcdRestoredDirectory.NotTaken(description: "a damaged protobuf message in its etcd files")
            }
        }
    }

    /// Every varint of `field`, in order (repeated fields unpacked or packed).
    func varints(_ field: Int) -> [UInt64] {
        var out: [UInt64] = []
        for value in values where value.field == field {
            if let number = value.varint {
                out.append(number)
            } else if let packed = value.bytes {
                var number: UInt64 = 0, shift: UInt64 = 0
                for byte in packed where shift < 64 {
                    number |= UInt64(byte & 0x7F) << shift
                    shift += 7
                    if byte < 0x80 {
                        out.append(number)
                        number = 0
                        shift = 0
                    }
                }
            }
        }
        return out
    }

    /// The last length-delimited value of `field`.
    func bytes(_ field: Int) throws -> [UInt8]? {
        values.last { $0.field == field && $0.bytes != nil }?.bytes
    }
}
