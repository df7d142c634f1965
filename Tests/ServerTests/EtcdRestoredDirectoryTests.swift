internal import Foundation
internal import Testing
@testable internal import Server

/// The parts of etcd's files that decide whether kvd takes a data directory over, on bytes laid
/// out as etcd writes them (its WAL encoder, snapshot files, Raft messages). The whole take-over
/// runs against etcdctl's real output in Tests/Cluster/migration.sh.
@Suite struct EtcdRestoredDirectoryTests {
    static func varint(_ value: UInt64) -> [UInt8] {
        var value = value, out: [UInt8] = []
        while value >= 0x80 {
            out.append(UInt8(value & 0x7F) | 0x80)
            value >>= 7
        }
        return out + [UInt8(value)]
    }
    static func field(_ number: UInt64, varint value: UInt64) -> [UInt8] { varint(number << 3) + varint(value) }
    static func field(_ number: UInt64, bytes: [UInt8]) -> [UInt8] { varint(number << 3 | 2) + varint(UInt64(bytes.count)) + bytes }

    /// A `.snap` file: snappb.Snapshot {crc, data: raftpb.Snapshot {data, metadata}}.
    static func snapFile(voters: [UInt64], learners: [UInt64] = [], index: UInt64, term: UInt64) -> [UInt8] {
        let confState = voters.flatMap { field(1, varint: $0) } + learners.flatMap { field(2, varint: $0) }
        let metadata = field(1, bytes: confState) + field(2, varint: index) + field(3, varint: term)
        let snapshot = field(1, bytes: Array("{}".utf8)) + field(2, bytes: metadata)
        return field(1, varint: 12345) + field(2, bytes: snapshot)
    }

    /// A WAL segment: frames of a little-endian length (padding size in the top byte) and a
    /// walpb.Record, then zeros as the preallocated rest.
    static func walFile(entryIndexes: [UInt64]) -> Data {
        var out: [UInt8] = []
        func frame(_ record: [UInt8]) {
            let padding = (8 - record.count % 8) % 8
            var length = UInt64(record.count)
            if padding != 0 { length |= UInt64(0x80 | padding) << 56 }
            out += (0..<8).map { UInt8(truncatingIfNeeded: length >> ($0 * 8)) } + record + [UInt8](repeating: 0, count: padding)
        }
        frame(field(1, varint: 4) + field(2, varint: 0))  // crc record
        frame(field(1, varint: 1) + field(3, bytes: [1, 2, 3]))  // metadata
        for index in entryIndexes {
            let entry = field(2, varint: 1) + field(3, varint: index) + field(4, bytes: Array("change".utf8))
            frame(field(1, varint: 2) + field(3, bytes: entry))
        }
        frame(field(1, varint: 3) + field(3, bytes: field(1, varint: 1)))  // hard state
        return Data(out + [UInt8](repeating: 0, count: 64))
    }

    @Test func aRestoresSnapshotGivesItsMembers() throws {
        let restore = try EtcdRestoredDirectory.snapshotMetadata(Self.snapFile(voters: [7, 9, 11], index: 3, term: 1))
        #expect(restore == EtcdRestoredDirectory.Restore(voters: [7, 9, 11], index: 3))
    }

    @Test(arguments: [
        snapFile(voters: [7, 9], index: 40, term: 3),  // a snapshot a running member took
        snapFile(voters: [7], learners: [9], index: 1, term: 1),
        snapFile(voters: [7, 9], index: 3, term: 1),
        Array("not a snapshot".utf8),
    ])
    func otherSnapshotsAreRefused(_ bytes: [UInt8]) {
        #expect(throws: EtcdRestoredDirectory.NotTaken.self) { try EtcdRestoredDirectory.snapshotMetadata(bytes) }
    }

    @Test func theWALsLastEntryIsFound() throws {
        #expect(try EtcdRestoredDirectory.lastEntryIndex(inWAL: Self.walFile(entryIndexes: [1, 2, 3])) == 3)
        #expect(try EtcdRestoredDirectory.lastEntryIndex(inWAL: Self.walFile(entryIndexes: [1, 2, 3, 4, 5])) == 5)
        #expect(try EtcdRestoredDirectory.lastEntryIndex(inWAL: Self.walFile(entryIndexes: [])) == nil)
    }

    @Test func aTornWALIsRefused() {
        let wal = Self.walFile(entryIndexes: [1, 2])
        let torn = wal.prefix(while: { _ in true }).dropLast(64 + 20)
        #expect(throws: EtcdRestoredDirectory.NotTaken.self) { try EtcdRestoredDirectory.lastEntryIndex(inWAL: Data(torn)) }
    }
}
