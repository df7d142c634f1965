// The steps kube-apiserver's etcd3 store takes, each checked, before and after the churn phase
// (Churn.swift). Keys live under a run-unique prefix that stands for kube-apiserver's
// --etcd-prefix, so the program can run twice against one cluster.

internal import EtcdAPI
internal import Foundation
internal import GRPCCore

struct Scenario: Sendable {
    let cluster: Cluster
    let report: Report
    /// Stands for --etcd-prefix: every object key starts with it.
    let prefix: String
    /// The lowest version Status must report (nil: only record it, for etcd 3.4).
    let minimumVersion: [Int]?

    func key(_ path: String) -> Data { Data(key: prefix + path) }

    /// Each step throws only when the cluster cannot be reached at all; that is one failure.
    func step(_ name: String, _ body: () async throws -> Void) async {
        do {
            try await body()
        } catch {
            report.failure("\(name): unexpected error", error)
        }
    }

    // MARK: Status on every member

    /// kube-apiserver checks every member's version (storage/feature: consistent lists from the
    /// watch cache need RequestWatchProgress fixed, etcd >= 3.5.13) and health.
    func status() async {
        for (index, endpoint) in cluster.endpoints.enumerated() {
            await step("Status on \(endpoint)") {
                let status = try await cluster.on(index) {
                    try await Etcdserverpb_Maintenance.Client(wrapping: $0).status(.init(), options: $1)
                }
                let version = status.version.split(separator: ".").map { Int($0) ?? 0 }
                if let minimumVersion {
                    report.check(
                        version.lexicographicallyPrecedes(minimumVersion) == false,
                        "Status on \(endpoint): version \(status.version) >= \(minimumVersion.map(String.init).joined(separator: "."))"
                    )
                } else {
                    report.check(!status.version.isEmpty, "Status on \(endpoint): version \(status.version) (recorded)")
                }
                report.check(status.leader != 0, "Status on \(endpoint): knows a leader", seen: "\(status.leader)")
            }
        }
    }

    /// Every member serves a linearizable read and accepts a write (kube-apiserver round-robins
    /// over all --etcd-servers). A member that was just restarted gets `patience` to come back.
    func everyMemberServes(_ label: String, patience: Duration) async {
        for (index, endpoint) in cluster.endpoints.enumerated() {
            let probe = key("/probes/\(label)-\(index)")
            let deadline = ContinuousClock.now + patience
            var lastError = ""
            var served = false
            while !served, ContinuousClock.now < deadline {
                do {
                    let txn = try await cluster.on(index) {
                        try await Etcdserverpb_KV.Client(wrapping: $0).txn(
                            Requests.optimisticPut(probe, Data(key: label), expectedModRevision: 0), options: $1)
                    }
                    var read = Etcdserverpb_RangeRequest()
                    read.key = probe
                    let readRequest = read
                    let range = try await cluster.on(index) {
                        try await Etcdserverpb_KV.Client(wrapping: $0).range(readRequest, options: $1)
                    }
                    served =
                        txn.succeeded && range.kvs.first?.modRevision == txn.header.revision
                        && range.header.revision >= txn.header.revision
                    if !served {
                        lastError =
                            "txn \(txn.succeeded), read \(range.kvs.first.map { "\(StoredObject($0))" } ?? "nil")"
                    }
                } catch {
                    lastError = "\(error)"
                    // `try?`: cancellation ends the loop through the deadline.
                    try? await Task.sleep(for: .milliseconds(200))
                }
            }
            report.check(
                served, "\(label): \(endpoint) accepts a create and serves it back by a linearizable read",
                seen: lastError)
        }
    }

    // MARK: create, update, delete

    func createAndConflict() async {
        await step("create") {
            let name = key("/namespaces/kube-patterns")
            let (created, _) = try await cluster.txn(Requests.create(name, Data(key: "v1")))
            report.check(created.succeeded, "create: Txn(mod_revision == 0) -> Put succeeds on a new key")
            let (again, _) = try await cluster.txn(Requests.create(name, Data(key: "v2")))
            report.check(
                !again.succeeded && again.readBack?.value == Data(key: "v1")
                    && again.readBack?.modRevision == created.header.revision,
                "create: a second create fails (AlreadyExists) and the else-branch returns the existing object",
                seen: "succeeded \(again.succeeded), \(again.readBack.map { "\(StoredObject($0))" } ?? "nil")")
            var read = Etcdserverpb_RangeRequest()
            read.key = name
            let range = try await cluster.range(read)
            report.check(
                range.kvs.first.map(StoredObject.init)
                    == again.readBack.map(StoredObject.init),
                "create: a Get sees what the else-branch returned")
        }
    }

    func deleteWithPrecondition() async {
        await step("delete") {
            let name = key("/secrets/default/to-delete")
            let (created, _) = try await cluster.txn(Requests.create(name, Data(key: "a")))
            let first = created.header.revision
            let (updated, _) = try await cluster.txn(
                Requests.optimisticPut(name, Data(key: "b"), expectedModRevision: first))
            report.check(updated.succeeded, "update: Txn(mod_revision == seen) -> Put succeeds")
            let second = updated.header.revision
            let (stale, _) = try await cluster.txn(Requests.optimisticDelete(name, expectedModRevision: first))
            report.check(
                !stale.succeeded && stale.readBack?.modRevision == second && stale.readBack?.value == Data(key: "b"),
                "delete: a stale precondition fails and the else-branch returns the current object",
                seen: "succeeded \(stale.succeeded), \(stale.readBack.map { "\(StoredObject($0))" } ?? "nil")")
            let (fresh, _) = try await cluster.txn(Requests.optimisticDelete(name, expectedModRevision: second))
            let deleted = fresh.deleted
            report.check(
                fresh.succeeded && deleted?.deleted == 1 && deleted?.prevKvs.first?.modRevision == second
                    && deleted?.prevKvs.first?.value == Data(key: "b") && deleted?.prevKvs.first?.version == 2,
                "delete: Txn(mod_revision == current) -> DeleteRange(prev_kv) deletes and returns the object",
                seen:
                    "\(fresh.succeeded) \(deleted.map { "\($0.deleted) \($0.prevKvs.map(StoredObject.init))" } ?? "nil")"
            )
            let (gone, _) = try await cluster.txn(Requests.optimisticDelete(name, expectedModRevision: second))
            report.check(
                !gone.succeeded && gone.readBack == nil,
                "delete: deleting again fails the precondition and reads back nothing (NotFound)")
        }
    }

    // MARK: lists

    /// store.GetList: pages of `limit` keys, the continue key is the last key + "\0", every page
    /// after the first pinned to the first page's revision; count is what remains in the range.
    func paginatedLists() async {
        await step("list") {
            let pods = prefix + "/pods/default/"
            let podCount = 50
            var halfwayRevision: Int64 = 0
            var createdAt: [Int64] = []
            for index in 0..<podCount {
                let (response, _) = try await cluster.txn(
                    Requests.create(Data(key: pods + String(format: "pod-%02d", index)), Data(key: "pod \(index)")))
                createdAt.append(response.succeeded ? response.header.revision : 0)
                if index == podCount / 2 - 1 { halfwayRevision = response.header.revision }
            }
            guard report.check(!createdAt.contains(0), "list: 50 pods created") else { return }
            let start = Data(key: pods)
            let end = prefixEnd(start)
            let want = (0..<podCount).map { Data(key: pods + String(format: "pod-%02d", $0)) }

            var got: [Data] = []
            var pinned: Int64 = 0
            var key = start
            var pages = 0
            var pageFaults: [String] = []
            while true {
                let page = try await cluster.range(Requests.list(from: key, to: end, limit: 7, revision: pinned))
                pages += 1
                let remaining = Int64(podCount - got.count)
                if page.count != remaining {
                    pageFaults.append("page \(pages): count \(page.count), want \(remaining)")
                }
                if pinned == 0 {
                    pinned = page.header.revision
                    // Writes between pages must not show in later pages.
                    _ = try await cluster.txn(Requests.create(Data(key: pods + "pod-99"), Data(key: "late")))
                    _ = try await cluster.txn(Requests.optimisticDelete(want[30], expectedModRevision: createdAt[30]))
                    var late = Etcdserverpb_PutRequest()
                    late.key = want[40]
                    late.value = Data(key: "changed after the first page")
                    _ = try await cluster.put(late)
                } else if page.header.revision < pinned {
                    pageFaults.append("page \(pages): header revision \(page.header.revision) < \(pinned)")
                }
                got += page.kvs.map(\.key)
                if page.kvs.contains(where: { $0.modRevision > pinned }) {
                    pageFaults.append("page \(pages): a key newer than \(pinned)")
                }
                guard page.more, let last = page.kvs.last?.key else { break }
                if page.kvs.count != 7 { pageFaults.append("page \(pages): \(page.kvs.count) keys with more=true") }
                key = last + Data([0])
            }
            report.check(got == want, "list: 8 pages of limit 7 return the 50 keys in order", seen: "\(got.count) keys")
            report.expectEqual(pages, 8, "list: number of pages")
            report.check(
                pageFaults.isEmpty,
                "list: every page pinned to the first page's revision, count = keys remaining, more until the last",
                seen: pageFaults.prefix(3).joined(separator: "; "))

            let old = try await cluster.range(Requests.list(from: start, to: end, limit: 0, revision: halfwayRevision))
            report.check(
                old.kvs.map(\.key) == Array(want.prefix(podCount / 2)) && old.count == Int64(podCount / 2),
                "list: at an older revision sees the 25 pods that existed then",
                seen: "\(old.kvs.count) keys, count \(old.count)")

            let big = try await cluster.range(Requests.list(from: start, to: end, limit: 10_000, revision: 0))
            report.check(
                big.kvs.count == podCount && !big.more && big.count == Int64(podCount),
                "list: limit 10000 (the pager's maximum) returns everything, more=false",
                seen: "\(big.kvs.count) keys, more \(big.more), count \(big.count)")
            report.check(
                big.kvs.first(where: { $0.key == want[40] })?.value == Data(key: "changed after the first page")
                    && !big.kvs.contains(where: { $0.key == want[30] }),
                "list: a fresh list sees the writes made between pages")

            var countOnly = Requests.list(from: start, to: end, limit: 0, revision: 0)
            countOnly.countOnly = true
            let counted = try await cluster.range(countOnly)
            report.check(
                counted.count == Int64(podCount) && counted.kvs.isEmpty,
                "list: count_only (store.Count) counts \(podCount) keys and returns none",
                seen: "count \(counted.count), \(counted.kvs.count) kvs")
        }
    }

    // MARK: compaction

    /// compact.go: every apiserver runs the loop; the Txn on compact_rev_key's version lets only
    /// one of them compact each interval. Returns the compacted revision.
    @discardableResult
    func compaction(label: String) async -> Int64 {
        var compacted: Int64 = 0
        await step("\(label) compaction") {
            let revKey = Data(key: "compact_rev_key")
            var read = Etcdserverpb_RangeRequest()
            read.key = revKey
            let before = try await cluster.range(read)
            let seenVersion = before.kvs.first?.version ?? 0
            let target = before.header.revision
            let (won, _) = try await cluster.txn(compactTxn(revKey, version: seenVersion, revision: target))
            report.check(
                won.succeeded, "\(label): compaction Txn(version(compact_rev_key) == \(seenVersion)) -> Put wins")
            // A second apiserver with the same stale version loses and learns the current version.
            let (lost, _) = try await cluster.txn(compactTxn(revKey, version: seenVersion, revision: target))
            report.check(
                !lost.succeeded && lost.readBack?.version == seenVersion + 1
                    && lost.readBack?.value == Data(key: "\(target)"),
                "\(label): a concurrent compactor with the stale version loses and reads version \(seenVersion + 1)",
                seen: "\(lost.succeeded) \(lost.readBack.map { "\(StoredObject($0))" } ?? "nil")")
            var compact = Etcdserverpb_CompactionRequest()
            compact.revision = target
            let compactRequest = compact
            _ = try await cluster.call {
                try await Etcdserverpb_KV.Client(wrapping: $0).compact(compactRequest, options: $1)
            }
            report.check(true, "\(label): Compact(\(target)) succeeds")
            compacted = target
            do {
                _ = try await cluster.call {
                    try await Etcdserverpb_KV.Client(wrapping: $0).compact(compactRequest, options: $1)
                }
                report.check(false, "\(label): compacting \(target) again fails", seen: "success")
            } catch let error as RPCError {
                report.check(
                    error.code == .outOfRange
                        && error.message == "etcdserver: mvcc: required revision has been compacted",
                    "\(label): compacting \(target) again fails with OutOfRange, required revision has been compacted",
                    seen: "\(error.code) \(error.message)")
            }
        }
        return compacted
    }

    private func compactTxn(_ key: Data, version: Int64, revision: Int64) -> Etcdserverpb_TxnRequest {
        var compare = Etcdserverpb_Compare()
        compare.key = key
        compare.target = .version
        compare.result = .equal
        compare.version = version
        var txn = Etcdserverpb_TxnRequest()
        txn.compare = [compare]
        txn.success = [Requests.put(key, Data(key: "\(revision)"))]
        txn.failure = [Requests.get(key)]
        return txn
    }

    /// After Compact(revision): a watch from below it is canceled with compact_revision set (the
    /// reflector then relists), and a list below it fails with etcd's compacted error.
    func compactedReads(compacted: Int64) async {
        guard compacted > 1 else { return }
        await step("compacted reads") {
            let start = Data(key: prefix + "/pods/")
            do {
                _ = try await cluster.range(
                    Requests.list(from: start, to: prefixEnd(start), limit: 7, revision: compacted - 1))
                report.check(false, "compacted: a list at revision \(compacted - 1) fails", seen: "success")
            } catch let error as RPCError {
                report.check(
                    error.code == .outOfRange
                        && error.message == "etcdserver: mvcc: required revision has been compacted",
                    "compacted: a list at \(compacted - 1) fails with OutOfRange, etcdserver: mvcc: required revision has been compacted",
                    seen: "\(error.code) \(error.message)")
            }
            let atCompacted = try await cluster.range(
                Requests.list(from: start, to: prefixEnd(start), limit: 7, revision: compacted))
            report.check(!atCompacted.kvs.isEmpty, "compacted: a list at the compacted revision itself still works")

            let watcher = Watcher(prefix: Data(key: prefix + "/"))
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    await watcher.run(cluster: cluster, endpoint: 0, startRevision: compacted - 1, resume: false)
                }
                _ = await watcher.waitUntil(timeout: .seconds(10)) { $0.canceled }
                group.cancelAll()
            }
            let canceled = watcher.items.compactMap { item -> Etcdserverpb_WatchResponse? in
                if case .response(let response) = item, response.canceled { return response }
                return nil
            }.first
            report.check(
                canceled?.compactRevision == compacted,
                "compacted: a watch from \(compacted - 1) is canceled with compact_revision \(compacted)",
                seen: canceled.map { "compact_revision \($0.compactRevision), reason '\($0.cancelReason)'" }
                    ?? "not canceled")
        }
    }

    // MARK: RequestProgress ordering

    /// The etcd 3.5.13 fix Kubernetes waits for: a RequestProgress answered while a watcher is
    /// still catching up from history must come after the events it covers (etcd-io/etcd#15220;
    /// etcd 3.4 answers at once from its control stream, before the catch-up events).
    func progressOrdering() async {
        await step("progress ordering") {
            let watched = Data(key: prefix + "/")
            var marker = Etcdserverpb_PutRequest()
            marker.key = Data(key: prefix + "/progress-marker")
            let last = try await cluster.put(marker).header.revision
            // From 60 revisions back: a catch-up from history of all our recent writes.
            let from = max(1, last - 60)
            let watcher = Watcher(prefix: watched)
            let reached = await withTaskGroup(of: Void.self, returning: Bool.self) { group in
                group.addTask { await watcher.run(cluster: cluster, endpoint: 1, startRevision: from, resume: false) }
                // Right behind the create request, as the cacher's progress requester may send it.
                _ = await watcher.waitUntil(timeout: .seconds(5)) {
                    $0.items.count > 1 || $0.items.contains { Self.isEnd($0) }
                }
                watcher.requestProgress()
                let reached = await watcher.waitUntil(timeout: .seconds(10)) { state in
                    state.lastEventRevision >= last && state.items.contains { Self.isRequestedProgress($0) }
                }
                group.cancelAll()
                return reached
            }
            report.check(
                reached,
                "progress: RequestProgress during a catch-up from revision \(from) is answered with watch_id -1, and all events up to \(last) arrive"
            )
            let items = watcher.items
            guard let index = items.firstIndex(where: Self.isRequestedProgress),
                case .response(let progress) = items[index]
            else { return }
            let late = items[(index + 1)...].reduce(0) { count, item in
                guard case .response(let response) = item else { return count }
                return count + response.events.filter { $0.kv.modRevision <= progress.header.revision }.count
            }
            report.check(
                late == 0,
                "progress: after a catch-up from history, a RequestProgress response (revision \(progress.header.revision)) never precedes events at or below it",
                seen: "\(late) events at or below it came after it")
        }
    }

    /// etcd-io/etcd#17557 (in 3.5.13): a new watcher from an old revision whose range saw no
    /// events becomes synced without sending any; RequestProgress must still be answered.
    func progressOnQuietRange() async {
        await step("progress on a quiet range") {
            var marker = Etcdserverpb_PutRequest()
            marker.key = Data(key: prefix + "/progress-marker")
            let last = try await cluster.put(marker).header.revision
            let watcher = Watcher(prefix: Data(key: prefix + "/quiet/"))
            let answered = await withTaskGroup(of: Void.self, returning: Bool.self) { group in
                group.addTask {
                    await watcher.run(cluster: cluster, endpoint: 2, startRevision: max(1, last - 20), resume: false)
                }
                _ = await watcher.waitUntil(timeout: .seconds(5)) {
                    $0.items.count > 1 || $0.items.contains { Self.isEnd($0) }
                }
                watcher.requestProgress()
                let answered = await watcher.waitUntil(timeout: .seconds(5)) {
                    $0.items.contains { Self.isRequestedProgress($0) }
                }
                group.cancelAll()
                return answered
            }
            report.check(
                answered && watcher.snapshot.knownRevision >= last,
                "progress: a watch from an old revision on a range without events gets its RequestProgress answered (revision >= \(last))",
                seen: "answered \(answered), revision \(watcher.snapshot.knownRevision)")
        }
    }

    static func isRequestedProgress(_ item: Watcher.Item) -> Bool {
        guard case .response(let response) = item else { return false }
        return response.watchID == -1 && response.events.isEmpty && !response.created && !response.canceled
    }

    static func isEnd(_ item: Watcher.Item) -> Bool {
        if case .ended = item { return true }
        return false
    }
}
