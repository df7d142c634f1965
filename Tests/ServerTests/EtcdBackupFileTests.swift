// etcd's snapshot file format: bbolt files written by BoltWriter read back by BoltReader exactly (random buckets
// big enough for several branch levels, values spanning overflow pages, an empty bucket), damaged files refused
// without a crash, and a store's key space written as etcd's backend and restored into an empty database serving
// the same reads and HashKV at every revision, with its leases, compaction point and auth store. That etcd's own
// tools take these files (bbolt's integrity check, `etcdctl snapshot restore`) is Tests/Cluster/migration.sh's.
import EtcdAPI
import Foundation
import MVCC
@testable import Server
import Storage
import SwiftProtobuf
import Testing

@Suite struct EtcdBackupFileTests {
    private func temporaryDirectory() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kvd-bolt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    /// Random buckets in name order, each with keys in byte order.
    private func randomBuckets(seed: UInt64) -> [(name: [UInt8], records: [(key: [UInt8], value: [UInt8])])] {
        var random = SeededGenerator(seed: seed)
        var buckets: [(name: [UInt8], records: [(key: [UInt8], value: [UInt8])])] = []
        for (index, name) in ["a", "big", "empty", "key", "z"].enumerated() {
            var records: [[UInt8]: [UInt8]] = [:]
            let count = [3, 40, 0, 20_000, 1][index]
            for _ in 0..<count {
                let key = (0..<Int.random(in: 1...24, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
                // Some values larger than a page (and than several), most small.
                let size = name == "big" ? Int.random(in: 0...20_000, using: &random) : Int.random(in: 0...64, using: &random)
                records[key] = (0..<size).map { _ in UInt8.random(in: 0...255, using: &random) }
            }
            let sorted = records.sorted { $0.key.lexicographicallyPrecedes($1.key) }.map { (key: $0.key, value: $0.value) }
            buckets.append((Array(name.utf8), sorted))
        }
        return buckets
    }

    private func write(_ buckets: [(name: [UInt8], records: [(key: [UInt8], value: [UInt8])])], to path: String) throws -> UInt64 {
        let writer = try BoltWriter(path: path)
        for bucket in buckets {
            writer.beginBucket(bucket.name)
            for record in bucket.records { try writer.put(record.key, record.value) }
            try writer.endBucket()
        }
        return try writer.finish()
    }

    private func readAll(_ path: String) throws -> [(name: [UInt8], records: [(key: [UInt8], value: [UInt8])])] {
        let reader = try BoltReader(path: path)
        return try reader.buckets().map { name, bucket in
            var records: [(key: [UInt8], value: [UInt8])] = []
            try reader.forEach(in: bucket) { key, value, _ in records.append((key, value)) }
            return (name, records)
        }
    }

    @Test("a bbolt file reads back as written: buckets, keys in order, values over several pages, an empty bucket")
    func roundTrip() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("db").path
        let buckets = randomBuckets(seed: 7)
        let size = try write(buckets, to: path)
        #expect(size % UInt64(BoltLayout.pageSize) == 0)
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.size] as? UInt64 == size)
        let read = try readAll(path)
        #expect(read.map(\.name) == buckets.map(\.name))
        for (got, want) in zip(read, buckets) {
            #expect(got.records.count == want.records.count)
            #expect(got.records.elementsEqual(want.records) { $0.key == $1.key && $0.value == $1.value })
        }
        // 20,000 keys of up to ~100 bytes take hundreds of leaves: the tree has branch levels.
        #expect(size > 300 * UInt64(BoltLayout.pageSize))
    }

    @Test("a damaged file is refused with an error, never a crash", arguments: [1, 2, 3, 4, 5, 6, 7, 8])
    func damagedFiles(seed: UInt64) throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("db").path
        _ = try write(randomBuckets(seed: seed), to: path)
        let original = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        var random = SeededGenerator(seed: seed)
        // Truncated at a random point, or with random bytes overwritten in the first pages (metas,
        // the root, the first leaves): reading either fails with an error or returns some records.
        var damaged = Array(original.prefix(Int.random(in: 0..<original.count, using: &random)))
        try Data(damaged).write(to: URL(fileURLWithPath: path))
        _ = try? readAll(path)  // the outcome is either; only a crash would fail the test
        damaged = original
        for _ in 0..<200 { damaged[Int.random(in: 0..<(64 * 4096), using: &random)] = UInt8.random(in: 0...255, using: &random) }
        try Data(damaged).write(to: URL(fileURLWithPath: path))
        _ = try? readAll(path)  // as above
        // A file whose metas are both wrong is not a database.
        damaged = original
        damaged[16] ^= 0xFF
        damaged[4096 + 16] ^= 0xFF
        try Data(damaged).write(to: URL(fileURLWithPath: path))
        #expect(throws: BoltFormatError.self) { try BoltReader(path: path) }
    }

    /// `file` with both metas naming `root` and `highWater`, their checksums made right again
    /// (bbolt's FNV-1a over the meta's first 56 bytes), so that the damage gets past them.
    private func withMetas(_ file: [UInt8], root: UInt64, highWater: UInt64) -> [UInt8] {
        var bytes = file
        func put(_ value: UInt64, at offset: Int) {
            for index in 0..<8 { bytes[offset + index] = UInt8(truncatingIfNeeded: value >> (8 * index)) }
        }
        for page in [0, BoltLayout.pageSize] {
            let meta = page + BoltLayout.headerSize
            put(root, at: meta + 16)
            put(highWater, at: meta + 40)
            let checksum = bytes[meta..<(meta + BoltLayout.metaChecksummed)].reduce(UInt64(0xcbf2_9ce4_8422_2325)) {
                ($0 ^ UInt64($1)) &* 0x0000_0100_0000_01B3
            }
            put(checksum, at: meta + BoltLayout.metaChecksummed)
        }
        return bytes
    }

    // Found by fuzzing (scripts/fuzz.sh, snapshot-files): a page number past the end of any
    // file trapped converting it to an offset, killing `kvctl snapshot restore`.
    @Test("metas naming pages beyond the file are refused with an error", arguments: [
        (UInt64(1) << 63 + 7, UInt64.max), (UInt64(Int.max) / 4096 + 2, UInt64.max), (UInt64(1) << 40, UInt64(1) << 41),
    ])
    func pagesBeyondTheFile(root: UInt64, highWater: UInt64) throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("db").path
        _ = try write(randomBuckets(seed: 1).filter { $0.name != Array("key".utf8) }, to: path)
        let damaged = withMetas(try [UInt8](Data(contentsOf: URL(fileURLWithPath: path))), root: root, highWater: highWater)
        try Data(damaged).write(to: URL(fileURLWithPath: path))
        #expect(throws: BoltFormatError.self) { try readAll(path) }
    }

    @Test("a tree whose branch page points back at itself is refused, not walked without end")
    func cyclicTree() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("db").path
        let pages = try write(randomBuckets(seed: 2).filter { $0.name != Array("key".utf8) }, to: path) / UInt64(BoltLayout.pageSize)
        // One more page: a branch of 64 elements, each a child pointer to the page itself.
        var branch = BoltWriter.pageHeader(id: pages, flags: BoltLayout.branchPage, count: 64, overflow: 0)
        for _ in 0..<64 {
            branch += [UInt8](repeating: 0, count: 8)  // pos, ksize
            for index in 0..<8 { branch.append(UInt8(truncatingIfNeeded: pages >> (8 * index))) }
        }
        branch += [UInt8](repeating: 0, count: BoltLayout.pageSize - branch.count)
        let file = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path))) + branch
        try Data(withMetas(file, root: pages, highWater: pages + 1)).write(to: URL(fileURLWithPath: path))
        #expect(throws: BoltFormatError.self) { try readAll(path) }
    }

    @Test("a key space written as etcd's backend restores with the same reads, HashKV, leases, compaction point and users")
    func backupRestoresTheKeySpace() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let source = try Database(path: directory.appendingPathComponent("source").path, columnFamilies: Member.columnFamilies)
        let store = try MVCCStore(database: source)
        var requests: [WriteRequest] = [.leaseGrant(LeaseID(0x1234), ttlSeconds: 600)]
        for index in 0..<50 { requests.append(.put(PutRequest(key: Array("k\(index % 20)".utf8), value: Array("v\(index)".utf8)))) }
        var leased = PutRequest(key: Array("leased".utf8), value: [1, 2, 3])
        leased.lease = LeaseID(0x1234)
        requests.append(.put(leased))
        requests.append(.deleteRange(DeleteRangeRequest(range: .range(start: Array("k1".utf8), end: Array("k15".utf8)))))
        _ = store.apply(requests, sync: true)
        _ = store.apply([.compact(Revision(30), physical: true)], sync: true)
        while try store.removeCompactedHistory(limit: 1_000) {}
        _ = store.apply([.put(PutRequest(key: Array("k3".utf8), value: Array("again".utf8)))], sync: true)
        var auth = AuthStore()
        try auth.apply(.authRoleAdd(.with { $0.name = "readers" }))
        try auth.apply(.authUserAdd(.with { $0.name = "root"; $0.password = "hash" }))
        try auth.apply(.authUserGrantRole(.with { $0.user = "root"; $0.role = "root" }))
        try auth.apply(.authEnable(.init()))
        let batch = WriteBatch()
        auth.save(into: batch, database: source)
        try source.write(batch, sync: true)

        let path = directory.appendingPathComponent("snapshot.db").path
        _ = try EtcdBackupFile.write(store.readView(), database: source, to: path)
        let restored = try Database(path: directory.appendingPathComponent("restored").path, columnFamilies: Member.columnFamilies)
        try EtcdBackupFile.restore(from: path, into: restored)
        let copy = try MVCCStore(database: restored)

        let (before, after) = (store.readView(), copy.readView())
        #expect(after.current == before.current)
        #expect(after.compacted == Revision(30))
        #expect(try after.hashKV(upTo: Revision(0)) == before.hashKV(upTo: Revision(0)))
        for revision in 30...before.current.value {
            var request = RangeRequest(range: .from([0]))
            request.revision = Revision(revision)
            #expect(try after.range(request) == before.range(request), "range at \(revision)")
            guard revision > 30 else { continue }  // HashKV at the compaction point itself is refused
            #expect(try after.hashKV(upTo: Revision(revision)) == before.hashKV(upTo: Revision(revision)), "hash at \(revision)")
        }
        #expect(copy.leaseRecords() == store.leaseRecords())
        #expect(try AuthStore.load(from: restored) == auth)
        // The file's own figures, as etcdctl's snapshot status computes them.
        let status = try EtcdBackupFile.status(of: path)
        #expect(status.revision == before.current.value)
        #expect(status.totalSize == Int64(try FileManager.default.attributesOfItem(atPath: path)[.size] as! UInt64))
    }
}

/// SplitMix64: a seeded generator, so a failing case replays.
private struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
