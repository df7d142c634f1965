// etcd's MVCC semantics on real RocksDB, one rule per test: revisions, versions, ranges,
// txns, compaction and the errors of each (expected values from etcd 3.4's behaviour).
import Foundation
import MVCC
import Storage
import Testing

func openStore(_ path: String? = nil) throws -> MVCCStore {
    let directory = path ?? NSTemporaryDirectory() + "kvd-mvcc-\(UUID().uuidString)"
    let database = try Database(path: directory, columnFamilies: MVCCStore.columnFamilies)
    return try MVCCStore(database: database)
}

func b(_ string: String) -> [UInt8] { Array(string.utf8) }

extension MVCCStore {
    @discardableResult
    func write(_ request: WriteRequest) -> Result<WriteResult, MVCCError> {
        apply([request], sync: false).results[0]
    }

    @discardableResult
    func put(_ key: String, _ value: String) -> Revision {
        guard case .success(.put(let result)) = write(.put(PutRequest(key: b(key), value: b(value)))) else {
            preconditionFailure("put failed")
        }
        return result.headerRevision
    }

    func get(_ key: String, revision: Int64 = 0) throws -> KeyValue? {
        var request = RangeRequest(range: .key(b(key)))
        request.revision = Revision(revision)
        return try readView().range(request).keyValues.first
    }

    func keys(_ range: KeyRange) throws -> [String] {
        try readView().range(RangeRequest(range: range)).keyValues.map { String(decoding: $0.key, as: UTF8.self) }
    }
}

@Suite struct MVCCSemanticsTests {
    @Test func revisionsStartAtOneAndEachWriteTakesOne() throws {
        let store = try openStore()
        #expect(store.currentRevision == Revision(1))
        #expect(store.put("a", "1") == Revision(2))
        #expect(store.put("a", "2") == Revision(3))
        let kv = try #require(try store.get("a"))
        #expect(kv.createRevision == Revision(2))
        #expect(kv.modRevision == Revision(3))
        #expect(kv.version == 2)
        #expect(kv.value == b("2"))
    }

    @Test func deleteResetsVersionAndDeletingNothingTakesNoRevision() throws {
        let store = try openStore()
        store.put("a", "1")
        store.put("a", "2")
        let deleted = store.write(.deleteRange(DeleteRangeRequest(range: .key(b("a")))))
        guard case .success(.deleteRange(let result)) = deleted else { Issue.record("\(deleted)"); return }
        #expect(result.deleted == 1)
        #expect(result.headerRevision == Revision(4))
        let none = store.write(.deleteRange(DeleteRangeRequest(range: .key(b("missing")))))
        guard case .success(.deleteRange(let nothing)) = none else { Issue.record("\(none)"); return }
        #expect(nothing.deleted == 0)
        #expect(nothing.headerRevision == Revision(4))
        #expect(store.currentRevision == Revision(4))
        store.put("a", "3")
        let kv = try #require(try store.get("a"))
        #expect(kv.version == 1)
        #expect(kv.createRevision == Revision(5))
    }

    @Test func txnWritesShareOneRevisionAndReadOnlyTxnTakesNone() throws {
        let store = try openStore()
        let txn = TxnRequest(compares: [], success: [
            .put(PutRequest(key: b("x"), value: b("1"))),
            .put(PutRequest(key: b("y"), value: b("2"))),
            .range(RangeRequest(range: .key(b("x")))),
        ], failure: [])
        guard case .success(.txn(let result)) = store.write(.txn(txn)) else { Issue.record("txn failed"); return }
        #expect(result.headerRevision == Revision(2))
        #expect(try store.get("x")?.modRevision == Revision(2))
        #expect(try store.get("y")?.modRevision == Revision(2))
        // The range inside the txn sees the txn's own put.
        guard case .range(let inner) = result.responses[2] else { Issue.record("no range"); return }
        #expect(inner.keyValues.map(\.value) == [b("1")])
        #expect(inner.headerRevision == Revision(2))

        let readOnly = TxnRequest(compares: [], success: [.range(RangeRequest(range: .key(b("x"))))], failure: [])
        let readResult = try store.readView().txn(readOnly)
        #expect(readResult.headerRevision == Revision(2))
        #expect(store.currentRevision == Revision(2))
    }

    @Test func comparesChooseTheBranch() throws {
        let store = try openStore()
        store.put("k", "v")
        func run(_ compare: Compare) throws -> Bool {
            let txn = TxnRequest(compares: [compare], success: [], failure: [])
            return try store.readView().txn(txn).succeeded
        }
        #expect(try run(Compare(range: .key(b("k")), target: .value(b("v")), result: .equal)))
        #expect(try !run(Compare(range: .key(b("k")), target: .value(b("w")), result: .equal)))
        #expect(try run(Compare(range: .key(b("k")), target: .value(b("a")), result: .greater)))
        #expect(try run(Compare(range: .key(b("k")), target: .version(1), result: .equal)))
        #expect(try run(Compare(range: .key(b("k")), target: .create(Revision(3)), result: .less)))
        #expect(try run(Compare(range: .key(b("k")), target: .mod(Revision(2)), result: .equal)))
        #expect(try run(Compare(range: .key(b("k")), target: .lease(.none), result: .equal)))
        #expect(try run(Compare(range: .key(b("missing")), target: .create(Revision(0)), result: .equal)))
        // A value compare on a missing key always fails, even NOT_EQUAL.
        #expect(try !run(Compare(range: .key(b("missing")), target: .value(b("x")), result: .notEqual)))
        // Outside etcd's enums, as etcd 3.4 evaluates them: a target it does not know compares
        // as equal, a result it does not know holds.
        #expect(try run(Compare(range: .key(b("k")), target: .unrecognized, result: .equal)))
        #expect(try !run(Compare(range: .key(b("k")), target: .unrecognized, result: .notEqual)))
        #expect(try !run(Compare(range: .key(b("k")), target: .unrecognized, result: .greater)))
        #expect(try run(Compare(range: .key(b("k")), target: .version(7), result: .unrecognized)))
        #expect(try run(Compare(range: .key(b("missing")), target: .unrecognized, result: .equal)))
        // Over a range, every key must satisfy the compare.
        store.put("k2", "v")
        #expect(try run(Compare(range: .range(start: b("k"), end: b("l")), target: .value(b("v")), result: .equal)))
        store.put("k3", "w")
        #expect(try !run(Compare(range: .range(start: b("k"), end: b("l")), target: .value(b("v")), result: .equal)))
    }

    @Test func failedTxnCheckChangesNothing() throws {
        let store = try openStore()
        var ignoring = PutRequest(key: b("missing"), value: [])
        ignoring.ignoreValue = true
        let txn = TxnRequest(compares: [], success: [.put(PutRequest(key: b("a"), value: b("1"))), .put(ignoring)], failure: [])
        #expect(store.write(.txn(txn)) == .failure(.keyNotFound))
        #expect(store.currentRevision == Revision(1))
        #expect(try store.get("a") == nil)
        var leased = PutRequest(key: b("a"), value: b("1"))
        leased.lease = LeaseID(7)
        #expect(store.write(.put(leased)) == .failure(.leaseNotFound(LeaseID(7))))
        #expect(store.currentRevision == Revision(1))
    }

    @Test func ignoreValueAndIgnoreLeaseKeepTheOldOnes() throws {
        let store = try openStore()
        store.put("a", "old")
        var put = PutRequest(key: b("a"), value: [])
        put.ignoreValue = true
        put.prevKV = true
        guard case .success(.put(let result)) = store.write(.put(put)) else { Issue.record("put failed"); return }
        #expect(result.prevKV?.value == b("old"))
        #expect(try store.get("a")?.value == b("old"))
        #expect(try store.get("a")?.version == 2)
    }

    @Test func rangeFormsLimitCountAndSort() throws {
        let store = try openStore()
        for (key, value) in [("a", "3"), ("b", "1"), ("b\u{0}", "x"), ("c", "2"), ("d", "0")] { store.put(key, value) }
        #expect(try store.keys(.range(start: b("b"), end: b("d"))) == ["b", "b\u{0}", "c"])
        #expect(try store.keys(.from(b("c"))) == ["c", "d"])
        #expect(try store.keys(.from([0])) == ["a", "b", "b\u{0}", "c", "d"])
        var limited = RangeRequest(range: .from(b("a")))
        limited.limit = 2
        let page = try store.readView().range(limited)
        #expect(page.keyValues.count == 2)
        #expect(page.count == 5)
        #expect(page.more)
        var negative = RangeRequest(range: .from(b("a")))
        negative.limit = -1  // etcd: no limit
        #expect(try store.readView().range(negative).keyValues.count == 5)
        var sorted = RangeRequest(range: .from(b("a")))
        sorted.sortTarget = .value
        sorted.sortOrder = .descend
        #expect(try store.readView().range(sorted).keyValues.map(\.value) == [b("x"), b("3"), b("2"), b("1"), b("0")])
        var counting = RangeRequest(range: .from(b("a")))
        counting.countOnly = true
        let counted = try store.readView().range(counting)
        #expect(counted.count == 5 && counted.keyValues.isEmpty)
        var filtered = RangeRequest(range: .from(b("a")))
        filtered.minModRevision = Revision(4)
        filtered.maxModRevision = Revision(5)
        let window = try store.readView().range(filtered)
        #expect(window.keyValues.map(\.value) == [b("x"), b("2")])
        #expect(window.count == 5)  // etcd counts before the revision filters
    }

    @Test func historicalReadsAndCompaction() throws {
        let store = try openStore()
        store.put("a", "1")  // 2
        store.put("a", "2")  // 3
        store.put("b", "1")  // 4
        _ = store.write(.deleteRange(DeleteRangeRequest(range: .key(b("b")))))  // 5
        #expect(try store.get("a", revision: 2)?.value == b("1"))
        #expect(try store.get("b", revision: 4)?.value == b("1"))
        #expect(try store.get("b", revision: 5) == nil)
        #expect(throws: MVCCError.futureRevision) { try store.get("a", revision: 6) }

        #expect(store.write(.compact(Revision(4), physical: true)) == .success(.compact(CompactResult(headerRevision: Revision(5)))))
        #expect(throws: MVCCError.compacted) { try store.get("a", revision: 3) }
        #expect(try store.get("a", revision: 4)?.value == b("2"))
        #expect(try store.get("b", revision: 4)?.value == b("1"))
        #expect(store.write(.compact(Revision(4), physical: false)) == .failure(.compacted))
        #expect(store.write(.compact(Revision(9), physical: false)) == .failure(.futureRevision))
        #expect(store.write(.compact(Revision(5), physical: true)) == .success(.compact(CompactResult(headerRevision: Revision(5)))))
        #expect(try store.get("a")?.value == b("2"))
        #expect(try store.get("b") == nil)
    }

    @Test func stateSurvivesReopen() throws {
        let path = NSTemporaryDirectory() + "kvd-mvcc-\(UUID().uuidString)"
        do {
            let store = try openStore(path)
            store.put("a", "1")
            store.put("a", "2")
            _ = store.apply([.compact(Revision(2), physical: true)], sync: true)
        }
        let store = try openStore(path)
        #expect(store.currentRevision == Revision(3))
        #expect(store.compactedRevision == Revision(2))
        #expect(try store.get("a")?.version == 2)
    }

    /// A compaction moves the point at once; its history goes in steps of whole keys, which a
    /// restart in the middle starts over, and only the last step records it as removed.
    @Test func compactedHistoryIsRemovedInStepsAcrossARestart() throws {
        let path = NSTemporaryDirectory() + "kvd-mvcc-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            let store = try openStore(path)
            for key in ["a", "b", "c"] {
                store.put(key, "1")
                store.put(key, "2")
            }  // revisions 2...7
            store.write(.deleteRange(DeleteRangeRequest(range: .key(b("c")))))  // 8
            store.put("a", "3")  // 9
            #expect(store.write(.compact(Revision(8), physical: true)) == .success(.compact(CompactResult(headerRevision: Revision(9)))))
            #expect(store.compactedRevision == Revision(8))
            #expect(store.historyRemovedRevision == Revision(-1))
            #expect(store.readView().removingHistory)
            #expect(throws: MVCCError.compacted) { try store.get("a", revision: 7) }
            #expect(try store.removeCompactedHistory(limit: 1))  // key "a" only
            #expect(store.historyRemovedRevision == Revision(-1))
        }
        let database = try Database(path: path, columnFamilies: MVCCStore.columnFamilies)
        let store = try MVCCStore(database: database)
        #expect(store.compactedRevision == Revision(8))
        #expect(store.historyRemovedRevision == Revision(-1))
        #expect(try store.removeCompactedHistory(limit: 2))  // "a" again
        #expect(try store.removeCompactedHistory(limit: 2))  // "b"
        #expect(store.historyRemovedRevision == Revision(-1))
        #expect(try !store.removeCompactedHistory(limit: 2))  // "c", and the removal is recorded
        #expect(store.historyRemovedRevision == Revision(8))
        #expect(!store.readView().removingHistory)
        #expect(try !store.removeCompactedHistory(limit: 2))
        // Left: a@3 (live at 8) and a@9, b@5; c's tombstone at 8 ended its history.
        let stored = try contents(database, "kv").enumerated().filter { $0.offset % 2 == 0 }.map { RevisionKey(bytes: $0.element).main.value }
        #expect(stored == [3, 5, 9])
        #expect(try store.get("a", revision: 8)?.value == b("2"))
        #expect(try store.get("b", revision: 8)?.value == b("2"))
        #expect(try store.get("c", revision: 8) == nil)
        #expect(try store.get("a")?.version == 3)
    }

    /// Stores written before removal went in steps removed every compaction's history when it was
    /// applied, and recorded only the compacted revision: that much history counts as removed.
    @Test func aStoreWithoutTheRemovalRecordHasItsHistoryRemoved() throws {
        let database = try Database(
            path: NSTemporaryDirectory() + "kvd-mvcc-\(UUID().uuidString)", columnFamilies: MVCCStore.columnFamilies)
        let batch = WriteBatch()
        batch.put(database.columnFamily("meta"), Array("current_revision".utf8), [0, 0, 0, 0, 0, 0, 0, 9])
        batch.put(database.columnFamily("meta"), Array("compacted_revision".utf8), [0, 0, 0, 0, 0, 0, 0, 5])
        try database.write(batch, sync: false)
        let store = try MVCCStore(database: database)
        #expect(store.compactedRevision == Revision(5))
        #expect(store.historyRemovedRevision == Revision(5))
        #expect(try !store.removeCompactedHistory(limit: 1))
    }

    @Test func eventsFollowRevisionOrderWithPrevKV() throws {
        let store = try openStore()
        store.put("a", "1")
        let (_, events) = store.apply([
            .put(PutRequest(key: b("a"), value: b("2"))),
            .deleteRange(DeleteRangeRequest(range: .key(b("a")))),
        ], sync: true)
        #expect(events.map(\.kind) == [.put, .delete])
        #expect(events[0].prevKV?.value == b("1"))
        #expect(events[1].keyValue.modRevision == Revision(4))
        #expect(events[1].prevKV?.value == b("2"))
    }
}

@Suite struct MVCCLeaseTests {
    @Test func revokeDeletesAttachedKeysInOneRevisionAndAttachmentsSurviveReopen() throws {
        let path = NSTemporaryDirectory() + "kvd-mvcc-\(UUID().uuidString)"
        do {
            let store = try openStore(path)
            var leased = PutRequest(key: b("a"), value: b("1"))
            leased.lease = LeaseID(5)
            #expect(store.write(.put(leased)) == .failure(.leaseNotFound(LeaseID(5))))
            guard case .success(.leaseGrant(let grant)) = store.write(.leaseGrant(LeaseID(5), ttlSeconds: 10)) else {
                Issue.record("grant failed")
                return
            }
            #expect(grant.headerRevision == Revision(1))  // a grant takes no revision
            #expect(store.write(.leaseGrant(LeaseID(5), ttlSeconds: 10)) == .failure(.leaseExists(LeaseID(5))))
            _ = store.write(.put(leased))
            leased.key = b("b")
            _ = store.write(.put(leased))
            store.put("c", "unleased")
            // Re-putting "b" without a lease detaches it.
            store.put("b", "2")
            #expect(store.leaseRecord(LeaseID(5))?.keys == [b("a")])
        }
        let store = try openStore(path)
        #expect(store.leaseRecord(LeaseID(5))?.keys == [b("a")])
        let before = store.currentRevision
        let (_, events) = store.apply([.leaseRevoke(LeaseID(5))], sync: true)
        #expect(events.map(\.kind) == [.delete])
        #expect(events.first?.prevKV?.lease == LeaseID(5))
        #expect(store.currentRevision == before.next)
        #expect(try store.get("a") == nil)
        #expect(try store.get("b")?.value == b("2"))
        #expect(store.leaseRecord(LeaseID(5)) == nil)
        #expect(store.write(.leaseRevoke(LeaseID(5))) == .failure(.leaseNotFound(LeaseID(5))))
    }
}

/// The node loop applies each round of committed entries as one call: requests in a round see
/// the ones before them, a rejected one changes nothing, and the round survives a reopen with
/// its last applied marker.
@Suite struct MVCCApplyRoundTests {
    @Test("requests of one round see the earlier ones; a rejected one changes nothing")
    func dependentRequestsInOneRound() throws {
        let path = NSTemporaryDirectory() + "kvd-mvcc-\(UUID().uuidString)"
        var store: MVCCStore? = try openStore(path)
        let marker = { (index: UInt8) in [UInt8](repeating: 0, count: 7) + [index] }
        let (results, events) = store!.apply([
            .put(PutRequest(key: b("k"), value: b("1"))),
            .put(PutRequest(key: b("other"), value: b("x"))),
            .put(PutRequest(key: b("k"), value: b("2"))),
            // Its compare only holds if it sees the second put of k (revision 4).
            .txn(TxnRequest(
                compares: [Compare(range: .key(b("k")), target: .mod(Revision(4)), result: .equal)],
                success: [.put(PutRequest(key: b("k"), value: b("3")))], failure: [])),
            // Rejected: compacting a future revision. Nothing of it may remain.
            .compact(Revision(99), physical: true),
            .deleteRange(DeleteRangeRequest(range: .from(b("o")))),
        ], markers: (1...6).map { marker($0) }, sync: true)
        #expect(results.map { (try? $0.get()) != nil } == [true, true, true, true, false, true])
        guard case .success(.txn(let txn)) = results[3] else { Issue.record("txn failed: \(results[3])"); return }
        #expect(txn.succeeded)
        #expect(events.map(\.keyValue.modRevision.value) == [2, 3, 4, 5, 6])
        store = nil  // closes RocksDB
        let reopened = try openStore(path)
        #expect(reopened.currentRevision == Revision(6))
        #expect(try reopened.appliedMarker() == marker(6))
        let k = try #require(try reopened.get("k"))
        #expect(k.value == b("3"))
        #expect(k.version == 3)
        #expect(try reopened.get("other") == nil)
        #expect(try reopened.get("other", revision: 3)?.value == b("x"))
    }

    @Test("a round that ends with a rejected request stores that request's marker and the last revision taken")
    func roundEndingInRejection() throws {
        let path = NSTemporaryDirectory() + "kvd-mvcc-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: path) }
        var store: MVCCStore? = try openStore(path)
        let marker = { (index: UInt8) in [UInt8](repeating: 0, count: 7) + [index] }
        var keepValue = PutRequest(key: b("missing"), value: [])
        keepValue.ignoreValue = true
        let (results, _) = store!.apply([
            .put(PutRequest(key: b("a"), value: b("1"))),
            .put(PutRequest(key: b("a"), value: b("2"))),  // reads the first: the round is written in two batches
            .put(keepValue),  // rejected: the key does not exist
        ], markers: (1...3).map { marker($0) }, sync: true)
        #expect(results.map { (try? $0.get()) != nil } == [true, true, false])
        store = nil
        let reopened = try openStore(path)
        #expect(reopened.currentRevision == Revision(3))
        #expect(try reopened.appliedMarker() == marker(3))
        #expect(try reopened.get("a")?.value == b("2"))
    }

    @Test("a capped round (NOSPACE) refuses what adds data and applies the rest")
    func cappedRound() throws {
        let store = try openStore()
        store.put("a", "1")
        store.put("b", "2")
        let putInFailureBranch = TxnRequest(
            compares: [], success: [.deleteRange(DeleteRangeRequest(range: .key(b("a"))))],
            failure: [.put(PutRequest(key: b("c"), value: b("3")))])
        let (results, _) = store.apply([
            .put(PutRequest(key: b("a"), value: b("x"))),
            .txn(putInFailureBranch),
            .leaseGrant(LeaseID(7), ttlSeconds: 60),
            .deleteRange(DeleteRangeRequest(range: .key(b("b")))),
            .txn(TxnRequest(compares: [], success: [.range(RangeRequest(range: .key(b("a"))))], failure: [])),
        ], sync: false, capped: true)
        #expect(results.map { (try? $0.get()) == nil ? "refused" : "applied" } == ["refused", "refused", "refused", "applied", "applied"])
        #expect(results[0] == .failure(.noSpace))
        #expect(try store.get("a")?.value == b("1"))
        #expect(try store.get("b") == nil)
        #expect(store.currentRevision == Revision(4))
    }

    @Test("a round under the CORRUPT alarm refuses every request and changes nothing")
    func corruptRound() throws {
        let store = try openStore()
        store.put("a", "1")
        let (results, events) = store.apply([
            .put(PutRequest(key: b("a"), value: b("x"))),
            .deleteRange(DeleteRangeRequest(range: .key(b("a")))),
            .leaseGrant(LeaseID(7), ttlSeconds: 60),
            .compact(Revision(2), physical: false),
        ], sync: false, capped: true, corrupt: true)
        #expect(results == Array(repeating: .failure(.corrupt), count: 4))
        #expect(events.isEmpty)
        #expect(try store.get("a")?.value == b("1"))
        #expect(store.currentRevision == Revision(2))
        #expect(store.compactedRevision == Revision(-1))
    }
}

/// A store whose families are replaced underneath it and then reloaded, as a follower installs
/// a snapshot from the leader.
@Suite struct MVCCReloadTests {
    // Found by the member-replace nemesis of Tests/Jepsen/jepsen.sh: a member that joined by snapshot
    // rebuilt its lease attachments at its old (empty) store's revision, so it knew of no key
    // attached to any lease, and a later lease revocation deleted nothing there while the other
    // members deleted the keys: the members' key spaces diverged.
    @Test("a reload after the families were replaced attaches keys to leases as of the new state")
    func reloadAfterReplacedFamilies() throws {
        let (leader, leaderDatabase) = try openStoreWithDatabase()
        leader.write(.leaseGrant(LeaseID(7), ttlSeconds: 60))
        var attached = PutRequest(key: b("leased"), value: b("v"))
        attached.lease = LeaseID(7)
        leader.write(.put(attached))
        leader.put("other", "x")

        let (follower, followerDatabase) = try openStoreWithDatabase()
        let batch = WriteBatch()
        for family in MVCCStore.columnFamilies {
            let iterator = leaderDatabase.makeIterator(leaderDatabase.columnFamily(family))
            iterator.seekToFirst()
            while iterator.isValid {
                batch.put(followerDatabase.columnFamily(family), iterator.key, iterator.value)
                iterator.next()
            }
        }
        try followerDatabase.write(batch, sync: false)
        try follower.reload()

        #expect(follower.currentRevision == leader.currentRevision)
        #expect(follower.leaseRecord(LeaseID(7))?.keys == [b("leased")])
        // And so a revocation deletes the same keys on both.
        let revoked = follower.write(.leaseRevoke(LeaseID(7)))
        #expect(leader.write(.leaseRevoke(LeaseID(7))) == revoked)
        #expect(try follower.keys(.from(b(""))) == ["other"])
        #expect(follower.currentRevision == leader.currentRevision)
    }
}
