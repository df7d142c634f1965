// The churn phase: what a running kube-apiserver does all the time, while the suite kills one
// member (kill -9) and restarts it. A watch-cache watcher (list, then watch from the list
// revision + 1), controllers' optimistic update loops on one key, an event burst on one shared
// long lease, a short lease expiring, pods created and deleted, node Lease heartbeats outside the
// watched range, and consistent lists served from the watch cache (RequestProgress every 100 ms
// until the watcher reaches the list revision).
// At the end the watcher's replayed state must equal a list at the revision it reached.

internal import EtcdAPI
internal import Foundation
internal import GRPCCore
internal import Synchronization

struct ChurnSettings: Sendable {
    /// Keep the loops going at least this long (the suite kills a member during this time).
    var minimumDuration: Duration
    /// The endpoint the suite kills and restarts: churn lasts until it was seen down and up again.
    var awaitRestart: Int?
    var updaters: Int
    var events: Int
    /// The cluster runs with a short --experimental-watch-progress-notify-interval.
    var expectProgressNotify: Bool
}

/// Outcomes shared by the churn tasks.
private final class ChurnLedger: Sendable {
    struct State {
        /// Revisions of acknowledged writes under the prefix: the watcher must deliver each.
        var acknowledged: [Int64] = []
        /// Updates of the counter that succeeded, and those whose outcome is unknown.
        var updatesSucceeded = 0
        var updatesUncertain = 0
        var done = false
    }

    let state = Mutex(State())

    var done: Bool { state.withLock { $0.done } }
    func acknowledge(_ revision: Int64) { state.withLock { $0.acknowledged.append(revision) } }
}

extension Scenario {
    func churn(_ settings: ChurnSettings) async {
        await step("churn") {
            let watched = Data(key: prefix + "/")
            let list = try await cluster.range(
                Requests.list(from: watched, to: prefixEnd(watched), limit: 0, revision: 0))
            let watcher = Watcher(prefix: watched)
            let ledger = ChurnLedger()
            let counter = key("/configmaps/default/counter")
            let (seeded, _) = try await cluster.txn(Requests.create(counter, Data(key: "0")))
            guard report.check(seeded.succeeded, "churn: counter object created") else { return }
            ledger.acknowledge(seeded.header.revision)
            report.note("churn: started (list revision \(list.header.revision))")

            let finalRevision = try await withThrowingTaskGroup(of: Void.self, returning: Int64.self) { group in
                group.addTask {
                    await watcher.run(
                        cluster: cluster, endpoint: 0, startRevision: list.header.revision + 1, resume: true)
                }
                await withTaskGroup(of: Void.self) { work in
                    work.addTask { await coordinate(settings, ledger) }
                    work.addTask { await updateLoops(counter, settings.updaters, ledger) }
                    work.addTask { await eventBurst(settings.events, ledger) }
                    work.addTask { await shortLease(watcher, ledger) }
                    work.addTask { await podTurnover(ledger) }
                    work.addTask { await consistentLists(watcher, ledger) }
                    work.addTask { await nodeHeartbeats(ledger) }
                }
                // The last write is outside the watched range: only a progress response can tell the
                // watcher that it has everything up to the final revision.
                try await heartbeat(0)
                let last = try await cluster.range(
                    Requests.list(from: watched, to: prefixEnd(watched), limit: 1, revision: 0))
                let reached = await watcher.waitForRevision(last.header.revision, timeout: .seconds(15))
                report.check(
                    reached,
                    "churn: the watcher reaches the final list revision \(last.header.revision) (RequestProgress)",
                    seen: "known \(watcher.snapshot.knownRevision)")
                if settings.expectProgressNotify {
                    // etcd notifies only a watcher that got no events for a whole interval: stay idle.
                    let notified = await watcher.waitUntil(timeout: .seconds(6)) { $0.progressNotifications > 0 }
                    report.check(
                        notified,
                        "watch: progress_notify brings progress notifications with the watcher's ID (at the latest once idle)"
                    )
                }
                group.cancelAll()
                return last.header.revision
            }
            await verify(watcher, list: list, finalRevision: finalRevision, ledger: ledger, settings: settings)
        }
    }

    private func verify(
        _ watcher: Watcher, list: Etcdserverpb_RangeResponse, finalRevision: Int64, ledger: ChurnLedger,
        settings: ChurnSettings
    ) async {
        let items = watcher.items
        let check = WatchCheck(items, initial: model(of: list.kvs))
        check.report(to: report, label: "watch")
        let ended = items.compactMap { if case .ended(let reason) = $0 { reason } else { nil } }
        report.note(
            "watch: \(check.sessions) streams, \(check.events.count) events, \(check.requestedProgress) RequestProgress answers, \(check.periodicProgress) progress notifications; streams ended: \(ended)"
        )
        if settings.awaitRestart == 0 {
            report.check(
                check.sessions >= 2,
                "watch: the watch moved to another member when its member was killed, from the last event + 1",
                seen: "\(check.sessions) streams")
        }
        report.check(check.requestedProgress > 0, "watch: RequestProgress answered (watch_id -1)")
        checkCounterHistory(check, ledger)
        let acknowledged = ledger.state.withLock { $0.acknowledged }
        let missing = acknowledged.filter { !check.eventRevisions.contains($0) }
        report.check(
            missing.isEmpty, "watch: every acknowledged write (\(acknowledged.count)) arrived as an event",
            seen: "missing revisions \(missing.prefix(10))")
        // The gap check: the watch cache's state equals a list at the revision it reached.
        let watched = Data(key: prefix + "/")
        let finalList: Etcdserverpb_RangeResponse
        do {
            finalList = try await cluster.range(
                Requests.list(from: watched, to: prefixEnd(watched), limit: 0, revision: finalRevision))
        } catch {
            report.failure("watch: list at the final revision \(finalRevision)", error)
            return
        }
        let listed = model(of: finalList.kvs)
        let differing = Set(listed.keys).union(check.model.keys).filter { listed[$0] != check.model[$0] }
        report.check(
            differing.isEmpty,
            "watch: list at \(list.header.revision) + watch events == list at \(finalRevision) (\(listed.count) keys; no gaps, nothing twice)",
            seen: differing.prefix(3).map {
                "\($0.text): watched \(check.model[$0].map { "\($0)" } ?? "nil"), listed \(listed[$0].map { "\($0)" } ?? "nil")"
            }.joined(separator: "; "))
    }

    /// No lost update, from the watch: every update of the counter has prev_kv holding the value
    /// just below its own, and the number of updates matches what the updaters were told.
    private func checkCounterHistory(_ check: WatchCheck, _ ledger: ChurnLedger) {
        let counter = key("/configmaps/default/counter")
        let history = check.events.filter { $0.kv.key == counter && $0.type == .put && $0.kv.version > 1 }
        let broken = history.filter { Int($0.kv.value.text) != Int($0.prevKv.value.text).map { $0 + 1 } }
        let (succeeded, uncertain) = ledger.state.withLock { ($0.updatesSucceeded, $0.updatesUncertain) }
        report.check(
            broken.isEmpty && !history.isEmpty && Int(history.last?.kv.value.text ?? "") == history.count,
            "updates: the watch shows \(history.count) updates of the counter, each from the value just below it (no lost update)",
            seen: broken.prefix(3).map { "\($0.prevKv.value.text) -> \($0.kv.value.text) at \($0.kv.modRevision)" }
                .joined(separator: "; "))
        report.check(
            history.count >= succeeded && history.count <= succeeded + uncertain,
            "updates: \(succeeded) acknowledged <= \(history.count) applied <= acknowledged + \(uncertain) unknown outcomes"
        )
    }

    // MARK: the tasks

    /// Ends the churn once it has run long enough and, if the suite kills a member, that member
    /// was seen down and then serving again.
    private func coordinate(_ settings: ChurnSettings, _ ledger: ChurnLedger) async {
        let started = ContinuousClock.now
        if let index = settings.awaitRestart {
            var seenDown = false
            var seenUp = false
            let deadline = started + .seconds(45)
            while !seenUp, ContinuousClock.now < deadline {
                let up =
                    (try? await cluster.on(index) {
                        try await Etcdserverpb_Maintenance.Client(wrapping: $0).status(.init(), options: $1)
                    }) != nil  // `try?`: any failure means "not serving", which is what we look for
                if !up && !seenDown { report.note("churn: \(cluster.endpoints[index]) is down") }
                seenDown = seenDown || !up
                seenUp = seenDown && up
                try? await Task.sleep(for: .milliseconds(200))  // `try?`: the deadline ends the loop
            }
            report.check(
                seenUp, "churn: \(cluster.endpoints[index]) was killed and came back within 45 s",
                seen: seenDown ? "still down" : "never down")
        }
        let elapsed = ContinuousClock.now - started
        if elapsed < settings.minimumDuration {
            try? await Task.sleep(for: settings.minimumDuration - elapsed)  // `try?`: ending early only shortens the run
        }
        ledger.state.withLock { $0.done = true }
    }

    /// GuaranteedUpdate from several controllers on one key: read, then Txn(mod_revision == seen)
    /// -> Put(value + 1), else take the object the else-branch returned and try again.
    private func updateLoops(_ key: Data, _ updaters: Int, _ ledger: ChurnLedger) async {
        struct Tally: Sendable {
            var succeeded = 0
            var conflicts = 0
            /// Failed after an attempt that may have applied (member killed mid-request).
            var uncertain = 0
        }
        let tallies = await withTaskGroup(of: Tally.self, returning: [Tally].self) { group in
            for _ in 0..<updaters {
                group.addTask {
                    var tally = Tally()
                    var seen: Mvccpb_KeyValue? = nil
                    while !ledger.done || tally.succeeded < 5 {
                        do {
                            if seen == nil {
                                var read = Etcdserverpb_RangeRequest()
                                read.key = key
                                seen = try await cluster.range(read).kvs.first
                            }
                            guard let current = seen else { break }
                            let next = (Int(current.value.text) ?? -1_000_000) + 1
                            let (response, retried) = try await cluster.txn(
                                Requests.optimisticPut(
                                    key, Data(key: "\(next)"), expectedModRevision: current.modRevision))
                            if response.succeeded {
                                tally.succeeded += 1
                                ledger.acknowledge(response.header.revision)
                                seen = nil
                            } else {
                                if retried { tally.uncertain += 1 } else { tally.conflicts += 1 }
                                seen = response.readBack
                            }
                        } catch {
                            tally.uncertain += 1
                            seen = nil
                        }
                        try? await Task.sleep(for: .milliseconds(10))  // `try?`: only paces the loop
                    }
                    return tally
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        let succeeded = tallies.reduce(0) { $0 + $1.succeeded }
        let uncertain = tallies.reduce(0) { $0 + $1.uncertain }
        let conflicts = tallies.reduce(0) { $0 + $1.conflicts }
        ledger.state.withLock {
            $0.updatesSucceeded = succeeded
            $0.updatesUncertain = uncertain
        }
        var read = Etcdserverpb_RangeRequest()
        read.key = key
        let final = (try? await cluster.range(read))?.kvs.first.flatMap { Int($0.value.text) }  // nil fails below
        report.check(
            final.map { $0 >= succeeded && $0 <= succeeded + uncertain } ?? false,
            "updates: \(updaters) concurrent optimistic updaters: successful updates (\(succeeded); \(conflicts) conflicts retried) <= final value <= successful + unknown outcomes (\(uncertain) requests failed with a member down)",
            seen: "final value \(final.map(String.init) ?? "unreadable")")
    }

    /// Events: kube-apiserver attaches every event to a lease it reuses for up to 1000 objects
    /// (etcd3 lease_manager.go), granted for --event-ttl (1 h) plus the reuse period.
    private func eventBurst(_ count: Int, _ ledger: ChurnLedger) async {
        let ttl: Int64 = 3600 + 60
        await step("events") {
            var grant = Etcdserverpb_LeaseGrantRequest()
            grant.ttl = ttl
            let grantRequest = grant
            let lease = try await cluster.call {
                try await Etcdserverpb_Lease.Client(wrapping: $0).leaseGrant(grantRequest, options: $1)
            }.response
            report.check(
                lease.id != 0 && lease.ttl == ttl, "events: LeaseGrant(\(ttl) s)",
                seen: "id \(lease.id), ttl \(lease.ttl)")
            let workers = 8
            let created = await withTaskGroup(of: Int.self, returning: Int.self) { group in
                for worker in 0..<workers {
                    group.addTask {
                        var created = 0
                        for index in stride(from: worker, to: count, by: workers) {
                            let name = key(String(format: "/events/default/event-%04d", index))
                            let value = Data(key: "event \(index)")
                            guard
                                let (response, retried) = try? await cluster.txn(
                                    Requests.create(name, value, lease: lease.id))
                            else { continue }  // `try?`: counted as not created, which the check reports
                            if response.succeeded {
                                created += 1
                                ledger.acknowledge(response.header.revision)
                            } else if retried && response.readBack?.value == value
                                && response.readBack?.lease == lease.id
                            {
                                created += 1  // our earlier attempt applied before its member died
                            }
                        }
                        return created
                    }
                }
                return await group.reduce(0, +)
            }
            report.expectEqual(created, count, "events: created with the shared lease")
            var query = Etcdserverpb_LeaseTimeToLiveRequest()
            query.id = lease.id
            query.keys = true
            let aliveQuery = query
            let alive = try await cluster.call {
                try await Etcdserverpb_Lease.Client(wrapping: $0).leaseTimeToLive(aliveQuery, options: $1)
            }.response
            report.check(
                alive.grantedTtl == ttl && alive.ttl > ttl - 120 && alive.ttl <= ttl && alive.keys.count == count,
                "events: LeaseTimeToLive: granted \(ttl), remaining within 2 min of it, \(count) keys attached",
                seen: "granted \(alive.grantedTtl), ttl \(alive.ttl), \(alive.keys.count) keys")
        }
    }

    /// A lease that expires: the leader revokes it through Raft, deleting its keys in one revision;
    /// watchers get DELETE events with prev_kv (the watch cache needs the old object).
    private func shortLease(_ watcher: Watcher, _ ledger: ChurnLedger) async {
        await step("short lease") {
            var grant = Etcdserverpb_LeaseGrantRequest()
            grant.ttl = 2
            let grantRequest = grant
            let lease = try await cluster.call {
                try await Etcdserverpb_Lease.Client(wrapping: $0).leaseGrant(grantRequest, options: $1)
            }.response
            let names = (0..<3).map { key("/leases/default/short-\($0)") }
            for name in names {
                let (response, _) = try await cluster.txn(Requests.create(name, Data(key: "short"), lease: lease.id))
                if response.succeeded { ledger.acknowledge(response.header.revision) }
            }
            func deletes(_ state: Watcher.State) -> [Mvccpb_Event] {
                state.items.flatMap { item -> [Mvccpb_Event] in
                    guard case .response(let response) = item else { return [] }
                    return response.events.filter { $0.type == .delete && names.contains($0.kv.key) }
                }
            }
            // TTL 2 s, extended by an election timeout after a leader change, checked every 500 ms.
            let expired = await watcher.waitUntil(timeout: .seconds(40)) { deletes($0).count >= names.count }
            let events = deletes(watcher.snapshot)
            report.check(
                expired && events.allSatisfy { $0.hasPrevKv && $0.prevKv.lease == lease.id },
                "lease: a \(lease.ttl) s lease expires: DELETE events for its \(names.count) keys, each with prev_kv carrying the lease",
                seen: "\(events.count) deletes, prev_kv leases \(events.map { $0.hasPrevKv ? $0.prevKv.lease : 0 })")
            report.check(
                Set(events.map(\.kv.modRevision)).count == 1,
                "lease: the revocation deletes all its keys in one revision", seen: "\(events.map(\.kv.modRevision))")
            var query = Etcdserverpb_LeaseTimeToLiveRequest()
            query.id = lease.id
            let goneQuery = query
            let gone = try await cluster.call {
                try await Etcdserverpb_Lease.Client(wrapping: $0).leaseTimeToLive(goneQuery, options: $1)
            }.response
            report.check(
                gone.ttl == -1, "lease: LeaseTimeToLive of the expired lease reports TTL -1", seen: "\(gone.ttl)")
        }
    }

    /// Kubelets renew their node Lease objects every few seconds: the most frequent writes of a
    /// cluster, outside the watched resource, so that the current revision runs ahead of the
    /// watcher's last event and consistent lists need RequestProgress.
    private func nodeHeartbeats(_ ledger: ChurnLedger) async {
        var beats = 0
        while !ledger.done {
            // `try?`: a lost heartbeat only means fewer writes outside the range; the next one follows.
            if (try? await heartbeat(beats % 5)) != nil { beats += 1 }
            try? await Task.sleep(for: .milliseconds(100))  // `try?`: only paces the loop
        }
        report.check(beats > 0, "node leases: \(beats) heartbeats written outside the watched range")
    }

    private func heartbeat(_ node: Int) async throws {
        var renew = Etcdserverpb_PutRequest()
        renew.key = Data(key: prefix + "-leases/kube-node-lease/node-\(node)")
        renew.value = Data(key: "\(ContinuousClock.now)")
        _ = try await cluster.put(renew)
    }

    /// Pods come and go: create, then delete with the precondition of the created revision.
    private func podTurnover(_ ledger: ChurnLedger) async {
        var failures: [String] = []
        var index = 0
        while !ledger.done || index < 10 {
            let name = key(String(format: "/pods/churn/pod-%04d", index))
            index += 1
            do {
                let (created, _) = try await cluster.txn(Requests.create(name, Data(key: "pod")))
                let revision = created.succeeded ? created.header.revision : created.readBack?.modRevision ?? 0
                if created.succeeded { ledger.acknowledge(revision) }
                let (deleted, retried) = try await cluster.txn(
                    Requests.optimisticDelete(name, expectedModRevision: revision))
                if deleted.succeeded {
                    ledger.acknowledge(deleted.header.revision)
                    if deleted.deleted?.prevKvs.first?.modRevision != revision {
                        failures.append(
                            "\(name.text): prev_kv \(deleted.deleted.map { "\($0.prevKvs.map(StoredObject.init))" } ?? "none")"
                        )
                    }
                } else if !(retried && deleted.readBack == nil) {
                    failures.append(
                        "\(name.text): delete precondition \(revision) failed, object \(deleted.readBack.map { "\(StoredObject($0))" } ?? "nil")"
                    )
                }
            } catch {
                // A request that found no member within 20 s: kube-apiserver would fail it too.
                failures.append("\(name.text): \(error)")
            }
            try? await Task.sleep(for: .milliseconds(50))  // `try?`: only paces the loop
        }
        report.check(
            failures.isEmpty, "pods: \(index) created and deleted with a precondition, prev_kv returned",
            seen: failures.prefix(3).joined(separator: "; "))
    }

    /// Consistent lists from the watch cache (Kubernetes >= 1.31 with etcd >= 3.5.13): get the
    /// current revision with a limit-1 list, then wait until the watcher has seen it.
    private func consistentLists(_ watcher: Watcher, _ ledger: ChurnLedger) async {
        var served = 0
        var failures: [String] = []
        var slowest: Duration = .zero
        let watched = Data(key: prefix + "/")
        while !ledger.done {
            do {
                let revision = try await cluster.range(
                    Requests.list(from: watched, to: prefixEnd(watched), limit: 1, revision: 0)
                ).header.revision
                let started = ContinuousClock.now
                if await watcher.waitForRevision(revision, timeout: .seconds(15)) {
                    served += 1
                    slowest = max(slowest, ContinuousClock.now - started)
                } else {
                    failures.append("revision \(revision) not reached (known \(watcher.snapshot.knownRevision))")
                }
            } catch {
                failures.append("\(error)")
            }
            try? await Task.sleep(for: .milliseconds(250))  // `try?`: only paces the loop
        }
        report.check(
            failures.isEmpty && served > 0,
            "consistent lists: \(served) times the watcher reached the current revision within 15 s (slowest \(slowest))",
            seen: failures.prefix(3).joined(separator: "; "))
    }
}
