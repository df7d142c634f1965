import Foundation
import Raft
@testable import Server
import Storage
import Testing

@Suite struct RaftLogStoreTests {
    /// A deterministic generator, so that a failing sequence can be replayed from its seed.
    private struct SplitMix64 {
        var state: UInt64
        /// A number in 0..<bound.
        mutating func next(_ bound: Int) -> Int {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return Int((z ^ (z >> 31)) % UInt64(bound))
        }
    }

    /// The store's answers from its in-memory tail must be the answers RocksDB gives: a store opened
    /// afresh on the same database has no tail and reads everything back.
    @Test("the in-memory tail answers as the log on disk does, through appends, conflicts, compactions and snapshots",
          arguments: [(seed: UInt64(1), tailBytes: 100), (seed: 2, tailBytes: 1 << 20), (seed: 3, tailBytes: 0)])
    func tailMatchesDisk(seed: UInt64, tailBytes: Int) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kvd-raftlog-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let database = try Database(path: directory.path, columnFamilies: Member.columnFamilies)
        let store = try RaftLogStore(database: database, recentBytesMax: tailBytes)
        var random = SplitMix64(state: seed)
        var term: UInt64 = 1
        var snapshots = 0
        var conflicts = 0
        for _ in 0..<400 {
            let batch = WriteBatch()
            let first = store.firstIndex()
            let last = store.lastIndex()
            switch random.next(20) {
            case 0 where last > first:
                let index = first + UInt64(random.next(last.distance(from: first) + 1))
                let compactTo = store.compacted.index + UInt64(random.next(index.distance(from: store.compacted.index) + 1))
                try store.recordSnapshot(at: index, confState: ConfState(voters: [NodeID(1)]), compactTo: compactTo, into: batch)
                snapshots += 1
            case 1:
                term += 1
                let index = last + 1 + UInt64(random.next(5))
                store.installSnapshot(SnapshotMetadata(index: index, term: Term(term), confState: ConfState(voters: [NodeID(1)])), into: batch)
                snapshots += 1
            default:
                // Mostly the next index; sometimes a conflicting suffix from a new leader.
                var start = last + 1
                if random.next(4) == 0 && last >= first {
                    start = first + UInt64(random.next(last.distance(from: first) + 1))
                    term += 1
                    conflicts += 1
                }
                let entries = (0..<(1 + random.next(5))).map { offset in
                    Entry(term: Term(term), index: start + UInt64(offset), data: (0..<random.next(40)).map { _ in UInt8(random.next(256)) })
                }
                store.append(entries, into: batch)
            }
            try database.write(batch, sync: false)

            let disk = try RaftLogStore(database: database)
            #expect(disk.firstIndex() == store.firstIndex() && disk.lastIndex() == store.lastIndex())
            let low = store.firstIndex()
            let high = store.lastIndex() + 1
            for index in (low.rawValue - 1)..<high.rawValue {
                #expect(try store.term(at: LogIndex(index)) == disk.term(at: LogIndex(index)), "term at \(index)")
            }
            guard high > low else { continue }
            let from = low + UInt64(random.next(high.distance(from: low)))
            let to = from + UInt64(random.next(high.distance(from: from) + 1))
            let bytesMax = random.next(4) == 0 ? Int.max : random.next(200)
            #expect(try store.entries(from: from, to: to, bytesMax: bytesMax) == disk.entries(from: from, to: to, bytesMax: bytesMax),
                    "entries \(from)..<\(to) within \(bytesMax) bytes")
        }
        // The sequence exercised what it is meant to.
        #expect(snapshots > 10 && conflicts > 10)
    }
}
