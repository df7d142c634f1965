// `snapshot save FILE`, `snapshot status FILE` and `snapshot restore FILE` (etcdctl snapshot_command.go over
// clientv3/snapshot). A snapshot is etcd's backend file (bbolt, Sources/Server/EtcdBackupFile.swift), whether kvd or
// etcd wrote it: status computes etcd's figures from it, and restore writes a kvd data directory (its key space, a
// new cluster's membership from --initial-cluster). kvd's older snapshot image format is still read by both.

import Foundation
import KVClient
import Logging
import Server
import Synchronization

enum SnapshotCommand {
    static let restoreFlags: [FlagSpec] = [
        FlagSpec(name: "data-dir", kind: .string, defaultValue: ""),
        FlagSpec(name: "wal-dir", kind: .string, defaultValue: ""),
        FlagSpec(name: "name", kind: .string, defaultValue: "default"),
        FlagSpec(name: "initial-cluster", kind: .string, defaultValue: "default=http://localhost:2380"),
        FlagSpec(name: "initial-cluster-token", kind: .string, defaultValue: "etcd-cluster"),
        FlagSpec(name: "initial-advertise-peer-urls", kind: .string, defaultValue: "http://localhost:2380"),
        FlagSpec(name: "skip-hash-check", kind: .bool, defaultValue: "false"),
    ]

    static func save(_ flags: ParsedFlags) async {
        guard flags.positional.count == 1 else { exitWithError(.badArgs, "snapshot save expects one argument") }
        let path = flags.positional[0]
        let session = Session.make(flags)
        guard session.endpoints.count == 1 else {
            // Go's %v of a []string.
            let listed = "[" + session.endpoints.joined(separator: " ") + "]"
            exitWithError(.interrupted, "snapshot must be requested to one selected node, not multiple \(listed)")
        }
        let partPath = path + ".part"
        let descriptor = open(partPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard descriptor >= 0 else {
            let reason = String(cString: strerror(errno)).lowercased()
            exitWithError(.interrupted, "could not open \(partPath) (open \(partPath): \(reason))")
        }
        ZapLog.epoch("snapshot/v3_snapshot.go:119", "created temporary db file", ["path": partPath])
        let started = ContinuousClock.now
        let endpoint = session.endpoints[0]
        // etcdctl applies --command-timeout to a snapshot only when it is given.
        let timeout = flags.changed.contains("command-timeout") ? session.commandTimeout : nil
        let progress = ProgressBar(isShown: isatty(1) == 1)
        let result = await Session.attempt(session.configuration, timeout: timeout) { client, timeout in
            let size = Mutex<UInt64>(0)
            ZapLog.iso("clientv3/maintenance.go:200", "opened snapshot stream; downloading")
            ZapLog.epoch("snapshot/v3_snapshot.go:127", "fetching snapshot", ["endpoint": endpoint])
            try await client.snapshot(timeout: timeout) { blob, remaining in
                try writeAll(descriptor, blob)
                let written = size.withLock { $0 += UInt64(blob.count); return $0 }
                progress.show(written: written, remaining: remaining)
            }
            ZapLog.iso("clientv3/maintenance.go:208", "completed snapshot read; closing")
            return size.withLock { $0 }
        }
        progress.finish()
        let size: UInt64
        switch result {
        case .success(let written): size = written
        case .failure(.call(let error)): failSave(partPath, descriptor, EtcdErrors.message(for: error))
        case .failure(.authentication(let error)): failSave(partPath, descriptor, EtcdErrors.message(for: error))
        case .failure(.setup(let text)): failSave(partPath, descriptor, text)
        }
        // etcd's hasChecksum: bbolt pages (kvd pads its image the same way) plus a SHA-256 digest.
        guard size % 512 == 32 else { failSave(partPath, descriptor, "sha256 checksum not found [bytes: \(size)]") }
        guard fsync(descriptor) == 0, close(descriptor) == 0 else {
            failSave(partPath, -1, String(cString: strerror(errno)))
        }
        let took = ContinuousClock.now - started
        let seconds = Double(took.components.seconds) + Double(took.components.attoseconds) / 1e18
        ZapLog.epoch(
            "snapshot/v3_snapshot.go:142", "fetched snapshot",
            ["endpoint": endpoint, "size": GoFormat.bytes(size)], raw: ["took": "\(seconds)"])
        guard rename(partPath, path) == 0 else {
            let reason = String(cString: strerror(errno)).lowercased()
            failSave(partPath, -1, "could not rename \(partPath) to \(path) (rename \(partPath) \(path): \(reason))")
        }
        ZapLog.epoch("snapshot/v3_snapshot.go:152", "saved", ["path": path])
        Console.out("Snapshot saved at \(path)\n")
    }

    /// etcdctl removes the partial file and exits with ExitInterrupted.
    private static func failSave(_ partPath: String, _ descriptor: Int32, _ message: String) -> Never {
        if descriptor >= 0 { close(descriptor) }
        unlink(partPath)
        exitWithError(.interrupted, message)
    }

    private static func writeAll(_ descriptor: Int32, _ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                throw CommandExit(.interrupted, String(cString: strerror(errno)))
            }
            offset += written
        }
    }

    static func status(_ flags: ParsedFlags) async {
        guard flags.positional.count == 1 else {
            exitWithError(.badArgs, "snapshot status requires exactly one argument")
        }
        let session = Session.make(flags)
        let path = flags.positional[0]
        if EtcdBackupFile.isBoltFile(path) {
            do {
                let status = try EtcdBackupFile.status(of: path)
                let computed = SnapshotStatus(
                    hash: status.hash, revision: status.revision, totalKey: status.totalKey, totalSize: status.totalSize)
                session.write { style throws(CommandExit) in try computed.render(style) }
            } catch {
                exitWithError(.error, "\(error)")
            }
            return
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            exitWithError(.error, "stat \(path): no such file or directory")
        }
        let status: SnapshotStatus
        do {
            status = try SnapshotStatus(image: Array(data))
        } catch {
            exitWithError(.error, error.message)
        }
        session.write { style throws(CommandExit) in try status.render(style) }
    }

    static func restore(_ flags: ParsedFlags) async {
        guard flags.positional.count == 1 else { exitWithError(.badArgs, "snapshot restore requires exactly one argument") }
        let name = flags.string("name")
        var configuration = MemberConfiguration()
        configuration.name = name
        configuration.dataDirectory = flags.string("data-dir").isEmpty ? name + ".etcd" : flags.string("data-dir")
        configuration.initialClusterToken = flags.string("initial-cluster-token")
        configuration.walDirectory = flags.string("wal-dir").isEmpty ? nil : flags.string("wal-dir")
        configuration.initialAdvertisePeerURLs = flags.string("initial-advertise-peer-urls").split(separator: ",").map(String.init)
        let paths: KeyValuePairs<String, String> = [
            "path": flags.positional[0], "wal-dir": configuration.walDirectory ?? configuration.dataDirectory + "/member/wal",
            "data-dir": configuration.dataDirectory, "snap-dir": configuration.dataDirectory + "/member/snap",
        ]
        do {
            configuration.initialCluster = try MemberConfiguration.parseInitialCluster(flags.string("initial-cluster"))
            ZapLog.epoch("snapshot/v3_snapshot.go:296", "restoring snapshot", paths)
            // etcdctl prints its own lines only; kvd's logger has nothing to add here.
            let restored = try Member.restoreSnapshot(
                from: flags.positional[0], configuration: configuration, skipHashCheck: flags.bool("skip-hash-check"),
                logger: Logger(label: "kvctl", factory: { _ in SwiftLogNoOpLogHandler() }))
            // etcd adds the members in ID order, each with a log line (its membership's AddMember).
            for member in restored.members.sorted(by: { $0.id.value < $1.id.value }) {
                let urls = "[" + member.peerURLs.map(EtcdErrors.goJSONString).joined(separator: ",") + "]"
                ZapLog.epoch(
                    "membership/cluster.go:392", "added member",
                    ["cluster-id": "\(restored.clusterID)", "local-member-id": "0", "added-peer-id": "\(member.id)"],
                    raw: ["added-peer-peer-urls": urls])
            }
        } catch {
            exitWithError(.error, "\(error)")
        }
        ZapLog.epoch("snapshot/v3_snapshot.go:309", "restored snapshot", paths)
    }
}

/// The info lines etcdctl's zap loggers write to stderr during a snapshot save: its own logger stamps Unix seconds,
/// clientv3's stamps ISO 8601 (the times differ from run to run, as in etcdctl).
enum ZapLog {
    static func epoch(_ caller: String, _ message: String, _ fields: KeyValuePairs<String, String> = [:],
        raw: KeyValuePairs<String, String> = [:]) {
        let stamp = "\(Date().timeIntervalSince1970)"
        line(stamp, caller, message, fields, raw)
    }

    static func iso(_ caller: String, _ message: String) {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'"
        line(EtcdErrors.goJSONString(formatter.string(from: Date())), caller, message, [:], [:])
    }

    private static func line(_ stamp: String, _ caller: String, _ message: String,
        _ fields: KeyValuePairs<String, String>, _ raw: KeyValuePairs<String, String>) {
        let extra = fields.map { ",\"\($0.key)\":\(EtcdErrors.goJSONString($0.value))" }.joined()
            + raw.map { ",\"\($0.key)\":\($0.value)" }.joined()
        Console.err("{\"level\":\"info\",\"ts\":\(stamp),\"caller\":\"\(caller)\",\"msg\":\"\(message)\"\(extra)}\n")
    }
}

/// A one-line download progress on stdout, only for a terminal (a file or pipe gets etcdctl's exact output).
final class ProgressBar: Sendable {
    let isShown: Bool

    init(isShown: Bool) { self.isShown = isShown }

    func show(written: UInt64, remaining: UInt64) {
        guard isShown else { return }
        let total = written + remaining
        let percent = total == 0 ? 100 : Int(written * 100 / total)
        let filled = percent / 5
        let bar = String(repeating: "#", count: filled) + String(repeating: " ", count: 20 - filled)
        Console.out("\r[\(bar)] \(percent)% \(GoFormat.bytes(written))")
    }

    func finish() {
        if isShown { Console.out("\n") }
    }
}

/// etcdctl's snapshot.Status; for kvd's older image format, computed from the image: the CRC-32 of every record's key and value in order, the
/// store's current revision, the number of live keys, and the file's size.
struct SnapshotStatus: Equatable {
    var hash: UInt32
    var revision: Int64
    var totalKey: Int
    var totalSize: Int64

    /// The image's column families, by their index in a record (MVCCStore.columnFamilies + the membership family).
    static let families = ["kv", "key_index", "meta", "lease", "cluster"]
    static let currentRevisionKey = Array("current_revision".utf8)
    static let digestBytes = 32

    init(hash: UInt32, revision: Int64, totalKey: Int, totalSize: Int64) {
        self.hash = hash
        self.revision = revision
        self.totalKey = totalKey
        self.totalSize = totalSize
    }

    init(image: [UInt8]) throws(CommandExit) {
        let size = image.count
        guard size % 512 == Self.digestBytes else {
            throw CommandExit(.error, "sha256 checksum not found [bytes: \(size)]")
        }
        let body = image[..<(size - Self.digestBytes)]
        let stored = Array(image[(size - Self.digestBytes)...])
        let computed = SHA256Digest.hash(body)
        guard stored == computed else {
            // etcd's wording when a snapshot's digest does not match (Go's %v of the two byte slices).
            let show = { (bytes: [UInt8]) in "[" + bytes.map(String.init).joined(separator: " ") + "]" }
            throw CommandExit(.error, "expected sha256 \(show(stored)), got \(show(computed))")
        }
        var crc = CRC32()
        var revision: Int64 = 1  // an image without the record is of an empty store, at revision 1 as in etcd
        var liveKeys = 0
        var indexGroup: [UInt8]? = nil  // the encoded user key of the key_index entries being read
        var groupLive = false
        var reader = RecordReader(bytes: body)
        while let record = try reader.next() {
            crc.update(record.key)
            crc.update(record.value)
            switch Self.families[safe: record.family] {
            case "meta" where Array(record.key) == Self.currentRevisionKey:
                revision = record.value.prefix(8).reduce(0) { $0 << 8 | Int64($1) }
            case "key_index":
                // One entry per revision of a key, oldest first; the newest one's flag says whether it is live.
                let encoded = Array(record.key.prefix(Self.encodedKeyLength(Array(record.key))))
                if encoded != indexGroup {
                    if groupLive { liveKeys += 1 }
                    indexGroup = encoded
                }
                groupLive = record.value.first == 0
            default:
                break
            }
        }
        if groupLive { liveKeys += 1 }
        self.hash = crc.value
        self.revision = revision
        self.totalKey = liveKeys
        self.totalSize = Int64(size)
    }

    /// The length of the order-preserving key encoding at the front of a key_index key (MVCC's KeyEncoding: 0x00
    /// is escaped as 0x00 0xFF, and 0x00 0x01 ends the key).
    static func encodedKeyLength(_ bytes: [UInt8]) -> Int {
        var index = 0
        while index + 1 < bytes.count {
            if bytes[index] == 0 {
                if bytes[index + 1] == 1 { return index + 2 }
                index += 2
            } else {
                index += 1
            }
        }
        return bytes.count
    }

    func render(_ style: OutputStyle) throws(CommandExit) -> [UInt8] {
        let row = [String(hash, radix: 16), "\(revision)", "\(totalKey)", GoFormat.bytes(UInt64(totalSize))]
        let text: String
        switch style.format {
        case .simple: text = row.joined(separator: ", ") + "\n"
        case .json:
            text = "{\"hash\":\(hash),\"revision\":\(revision),\"totalKey\":\(totalKey),\"totalSize\":\(totalSize)}\n"
        case .fields:
            text = "\"Hash\" : \(hash)\n\"Revision\" : \(revision)\n\"Keys\" : \(totalKey)\n\"Size\" : \(totalSize)\n"
        case .table:
            text = TableWriter.render(header: ["hash", "revision", "total keys", "total size"], rows: [row])
        case .protobuf: throw unsupported(.protobuf)
        }
        return Array(text.utf8)
    }
}

/// Reads the image's records: family (u8), key length (u32), key, value length (u32), value, big-endian; a family
/// of 0xFF ends them.
private struct RecordReader {
    let bytes: ArraySlice<UInt8>
    var offset: Int

    init(bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        self.offset = bytes.startIndex
    }

    mutating func next() throws(CommandExit) -> (family: Int, key: ArraySlice<UInt8>, value: ArraySlice<UInt8>)? {
        guard offset < bytes.endIndex else { throw truncated }
        let family = Int(bytes[offset])
        offset += 1
        if family == 0xFF { return nil }
        guard family < SnapshotStatus.families.count else {
            throw CommandExit(.error, "snapshot image names unknown column family \(family)")
        }
        let key = try take(try length())
        let value = try take(try length())
        return (family, key, value)
    }

    private var truncated: CommandExit { CommandExit(.error, "snapshot image is truncated") }

    private mutating func length() throws(CommandExit) -> Int {
        let field = try take(4)
        return field.reduce(0) { $0 << 8 | Int($1) }
    }

    private mutating func take(_ count: Int) throws(CommandExit) -> ArraySlice<UInt8> {
        guard bytes.endIndex - offset >= count else { throw truncated }
        defer { offset += count }
        return bytes[offset..<(offset + count)]
    }
}

extension Array {
    subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
