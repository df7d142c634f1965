import EtcdAPI
import Foundation
import MVCC
@testable import Server
import Storage
import Testing

@Suite struct WatchHubTests {
    private func openStore() throws -> MVCCStore {
        let path = NSTemporaryDirectory() + "kvd-watch-\(UUID().uuidString)"
        return try MVCCStore(database: try Database(path: path, columnFamilies: MVCCStore.columnFamilies))
    }

    private func watch(_ hub: WatchHub, _ stream: WatchStreamID, prefix: String, fragment: Bool = false) {
        var request = Etcdserverpb_WatchCreateRequest()
        request.key = Data(prefix.utf8)
        request.rangeEnd = Data((prefix.dropLast() + String(UnicodeScalar(prefix.last!.asciiValue! + 1))).utf8)
        request.fragment = fragment
        hub.create(request, on: stream)
    }

    private func put(_ store: MVCCStore, _ hub: WatchHub, _ key: String, _ value: [UInt8]) {
        let (_, events) = store.apply([.put(PutRequest(key: Array(key.utf8), value: value))], sync: false)
        hub.publish(events, revision: store.currentRevision)
    }

    private static func revisions(_ responses: [Etcdserverpb_WatchResponse]) -> [Int64] {
        responses.flatMap { $0.events.map(\.kv.modRevision) }
    }

    @Test("a stalled watcher never blocks writes or other watchers, and catches up from storage exactly once")
    func stalledWatcher() throws {
        let store = try openStore()
        let hub = WatchHub(store: store, fragmentBytesMax: 1 << 20)
        let (stalled, _) = hub.openStream()
        let (live, _) = hub.openStream()
        watch(hub, stalled, prefix: "k/")
        watch(hub, live, prefix: "k/")
        let writes = WatchHub.outboxEventsMax * 3
        var liveResponses: [Etcdserverpb_WatchResponse] = []
        for index in 0..<writes {
            put(store, hub, "k/\(index % 50)", Array("v\(index)".utf8))
            if index % 100 == 0 { liveResponses += hub.drain(live) }
        }
        liveResponses += hub.drain(live)
        let expected = Array(2...Int64(writes + 1))
        #expect(Self.revisions(liveResponses) == expected)
        // The stalled stream's outbox stayed bounded; its watcher moved to the storage path.
        var stalledResponses = hub.drain(stalled)
        #expect(Self.revisions(stalledResponses).count <= WatchHub.outboxEventsMax)
        var rounds = 0
        while hub.syncUnsynced() || rounds == 0 {
            stalledResponses += hub.drain(stalled)
            rounds += 1
            #expect(rounds < 1_000, "the stalled watcher never caught up")
            if rounds >= 1_000 { break }
        }
        stalledResponses += hub.drain(stalled)
        #expect(Self.revisions(stalledResponses) == expected)
        // Back on the live feed: the next write arrives without the storage path.
        put(store, hub, "k/next", [1])
        #expect(Self.revisions(hub.drain(stalled)) == [Int64(writes + 2)])
    }

    @Test("a fragment watcher gets a large round in pieces under the limit, all but the last flagged")
    func fragments() throws {
        let store = try openStore()
        let hub = WatchHub(store: store, fragmentBytesMax: 1_000)
        let (stream, _) = hub.openStream()
        watch(hub, stream, prefix: "f/", fragment: true)
        _ = hub.drain(stream)  // the created response
        let requests = (0..<10).map { WriteRequest.put(PutRequest(key: Array("f/\($0)".utf8), value: [UInt8](repeating: 120, count: 300))) }
        let (_, events) = store.apply([.txn(TxnRequest(compares: [], success: requests.map {
            guard case .put(let put) = $0 else { preconditionFailure() }
            return .put(put)
        }, failure: []))], sync: false)
        hub.publish(events, revision: store.currentRevision)
        let pieces = hub.drain(stream)
        #expect(pieces.count > 1)
        let flagged = pieces.dropLast().allSatisfy { $0.fragment }
        #expect(flagged)
        #expect(pieces.last?.fragment == false)
        let underLimit = pieces.allSatisfy { $0.events.count == 1 || $0.serializedSizeBytes < 1_000 }
        #expect(underLimit)
        #expect(pieces.flatMap { $0.events.map { String(decoding: $0.kv.key, as: UTF8.self) } } == (0..<10).map { "f/\($0)" })
    }

    @Test("filters, client-chosen and duplicate watch IDs, and a future start revision that waits")
    func createOptions() throws {
        let store = try openStore()
        let hub = WatchHub(store: store, fragmentBytesMax: 1 << 20)
        let (stream, _) = hub.openStream()
        var noPut = Etcdserverpb_WatchCreateRequest()
        noPut.key = Data("a".utf8)
        noPut.watchID = 7
        noPut.filters = [.noput]
        hub.create(noPut, on: stream)
        hub.create(noPut, on: stream)  // the same ID again on this stream
        var future = Etcdserverpb_WatchCreateRequest()
        future.key = Data("a".utf8)
        future.startRevision = 4
        hub.create(future, on: stream)
        let created = hub.drain(stream)
        #expect(created.map(\.watchID) == [7, -1, 0])
        #expect(created[1].canceled && created[1].cancelReason == "mvcc: duplicate watch ID provided on the WatchStream")
        put(store, hub, "a", [1])  // revision 2
        let (_, deleteEvents) = store.apply([.deleteRange(DeleteRangeRequest(range: .key(Array("a".utf8))))], sync: false)
        hub.publish(deleteEvents, revision: store.currentRevision)  // revision 3
        put(store, hub, "a", [2])  // revision 4
        let responses = hub.drain(stream)
        let byWatch = Dictionary(grouping: responses.flatMap { response in response.events.map { (response.watchID, $0) } }, by: \.0)
        // NOPUT sees only the delete; the future watcher nothing before revision 4.
        #expect(byWatch[7]?.map { $0.1.type } == [.delete])
        #expect(byWatch[0]?.map { $0.1.kv.modRevision } == [4])
    }

    @Test("watchers of one event with and without prev_kv each get their own shape of it")
    func prevKVPerWatcher() throws {
        let store = try openStore()
        let hub = WatchHub(store: store, fragmentBytesMax: 1 << 20)
        let (stream, _) = hub.openStream()
        for (watchID, prevKV) in [(1, true), (2, false), (3, true), (4, false)] {
            var request = Etcdserverpb_WatchCreateRequest()
            request.key = Data("p".utf8)
            request.watchID = Int64(watchID)
            request.prevKv = prevKV
            hub.create(request, on: stream)
        }
        put(store, hub, "p", [1])  // a create: no previous value for anyone
        put(store, hub, "p", [2])
        let events = Dictionary(grouping: hub.drain(stream).flatMap { response in response.events.map { (response.watchID, $0) } }, by: \.0)
            .mapValues { $0.map(\.1) }
        for watchID: Int64 in [1, 2, 3, 4] {
            #expect(events[watchID]?.map(\.kv.value) == [Data([1]), Data([2])])
            #expect(events[watchID]?.first?.hasPrevKv == false)
        }
        for watchID: Int64 in [1, 3] { #expect(events[watchID]?.last?.prevKv.value == Data([1])) }
        for watchID: Int64 in [2, 4] { #expect(events[watchID]?.last?.hasPrevKv == false) }
    }
}
