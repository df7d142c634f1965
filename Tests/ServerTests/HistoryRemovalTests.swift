// Compacted history removed by the node loop in steps between turns: a physical compaction's
// wait ends only once this member holds none of it, and the member serves throughout. One member
// on a real RocksDB data directory; no network.
import EtcdAPI
import Foundation
import Logging
import MVCC
import Storage
import SwiftProtobuf
@testable import Server
import Testing

@Suite struct HistoryRemovalTests {
    @Test("a physical compaction waits for its history to be removed, taken in steps between turns that serve writes",
          .timeLimit(.minutes(1)))
    func physicalCompactionWaitsForTheRemoval() async throws {
        let directory = NSTemporaryDirectory() + "kvd-history-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var configuration = MemberConfiguration()
        configuration.name = "n1"
        configuration.dataDirectory = directory
        configuration.initialAdvertisePeerURLs = ["http://127.0.0.1:2380"]
        configuration.initialCluster = [(name: "n1", peerURLs: ["http://127.0.0.1:2380"])]
        let member = try await Member(configuration: configuration, logger: Logger(label: "test"))
        let loop = member.loop
        loop.start()
        defer { loop.stop() }

        // Two versions of 10 steps' worth of keys, in txns of 100 puts.
        let keys = NodeLoop.historyRemovalStep * 10
        for version in 0..<2 {
            for first in stride(from: 0, to: keys, by: 100) {
                var request = Kvdpb_InternalRequest()
                request.txn.success = (first..<(first + 100)).map { key in
                    .with { $0.requestPut = .with { $0.key = Data("key/\(key)".utf8); $0.value = Data("v\(version)".utf8) } }
                }
                _ = try await loop.propose(request)
            }
        }
        let compactAt = loop.store.currentRevision
        var compact = Kvdpb_InternalRequest()
        compact.compaction = .with { $0.revision = compactAt.value; $0.physical = true }
        guard case .compact = try await loop.propose(compact) else {
            Issue.record("a compaction must yield a compaction result")
            return
        }
        #expect(loop.store.compactedRevision == compactAt)
        // A write proposed during the removal is served between its steps.
        var put = Kvdpb_InternalRequest()
        put.put = .with { $0.key = Data("during".utf8); $0.value = Data("x".utf8) }
        async let served = loop.propose(put)
        try await loop.waitForHistoryRemoval(below: compactAt)
        #expect(loop.store.historyRemovedRevision >= compactAt)
        #expect(!loop.store.readView().removingHistory)
        guard case .put = try await served else {
            Issue.record("the put during the removal must yield a put result")
            return
        }
        // Stored: the second version of every key (the first was below the point) and the put.
        let iterator = loop.database.makeIterator(loop.database.columnFamily("kv"))
        iterator.seekToFirst()
        var stored = 0
        while iterator.isValid {
            stored += 1
            iterator.next()
        }
        #expect(stored == keys + 1)
        // Waiting for a removal already done returns at once.
        try await loop.waitForHistoryRemoval(below: compactAt)
    }
}
