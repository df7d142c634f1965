// Property test: random operation sequences applied to MVCCStore (real RocksDB) and to a naive
// model that keeps the full key space at every revision; every read at every readable revision
// must agree. Seeded: a failure names its seed, and MVCC_SEED=<n> replays only that seed.
import Foundation
import MVCC
import Storage
import Testing

/// SplitMix64: small, seedable, and the same everywhere.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The reference: the whole key space at each revision.
struct Model {
    var states: [Int64: [[UInt8]: KeyValue]] = [1: [:]]
    var current: Int64 = 1
    var compacted: Int64 = -1

    var latest: [[UInt8]: KeyValue] { states[current]! }

    mutating func commit(_ next: [[UInt8]: KeyValue]) {
        current += 1
        states[current] = next
    }

    func range(_ range: KeyRange, at revision: Int64) -> [KeyValue] {
        states[revision]!.values.filter { range.contains($0.key) }.sorted { $0.key.lexicographicallyPrecedes($1.key) }
    }
}

let modelKeys: [[UInt8]] = [b("a"), b("a\u{0}"), b("b"), b("c"), b("d"), [0], [0xFF]]

func randomRange(_ rng: inout SeededGenerator) -> KeyRange {
    let start = modelKeys.randomElement(using: &rng)!
    switch Int.random(in: 0..<3, using: &rng) {
    case 0: return .key(start)
    case 1: return .from(start)
    default: return .range(start: start, end: modelKeys.randomElement(using: &rng)!)
    }
}

func runModelScenario(seed: UInt64, steps: Int) throws {
    var rng = SeededGenerator(state: seed)
    // `store` removes compacted history in small steps at random points between rounds, as the
    // node loop does between turns; `immediate` removes it all right after each round. Both must
    // read as the model does throughout, and store exactly the same once both removals are done.
    // `store` is also reopened now and then, as a restarted member opens its store: its index of
    // live keys is then rebuilt from storage, and must agree with the one kept up by the writes.
    let (opened, database) = try openStoreWithDatabase()
    var store = opened
    let (immediate, immediateDatabase) = try openStoreWithDatabase()
    var model = Model()
    // Writes are applied in rounds of up to 8 requests (as the node loop applies a batch of
    // committed entries): the model advances at once, the results are checked after the round.
    var round: [(request: WriteRequest, step: Int, check: (Result<WriteResult, MVCCError>) -> String?)] = []
    var roundSize = 1
    func applyRound() throws {
        guard !round.isEmpty else { return }
        let (results, _) = store.apply(round.map(\.request), sync: false)
        let (immediateResults, _) = immediate.apply(round.map(\.request), sync: false)
        try immediate.removeCompactedHistory(limit: .max)
        for (queued, (result, immediateResult)) in zip(round, zip(results, immediateResults)) {
            if let mismatch = queued.check(result) ?? queued.check(immediateResult) {
                throw ModelMismatch(seed: seed, step: queued.step, detail: mismatch)
            }
        }
        let lastStep = round.last!.step
        round.removeAll()
        for _ in 0..<Int.random(in: 0...2, using: &rng) {
            try store.removeCompactedHistory(limit: Int.random(in: 1...4, using: &rng))
        }
        try checkLiveKeys(store, database, seed: seed, step: lastStep)
        if Int.random(in: 0..<8, using: &rng) == 0 { store = try MVCCStore(database: database) }
        guard store.currentRevision.value == model.current else {
            throw ModelMismatch(seed: seed, step: steps, detail: "revision \(store.currentRevision) vs \(model.current)")
        }
    }
    for step in 0..<steps {
        if round.count >= roundSize {
            try applyRound()
            roundSize = Int.random(in: 1...8, using: &rng)
        }
        let choice = Int.random(in: 0..<10, using: &rng)
        switch choice {
        case 0...3:
            let key = modelKeys.randomElement(using: &rng)!
            let value = Array("v\(step)".utf8)
            round.append((.put(PutRequest(key: key, value: value)), step, { result in
                guard case .success(.put) = result else { return "put \(result)" }
                return nil
            }))
            var next = model.latest
            let previous = next[key]
            next[key] = KeyValue(
                key: key, createRevision: previous?.createRevision ?? Revision(model.current + 1),
                modRevision: Revision(model.current + 1), version: (previous?.version ?? 0) + 1, value: value, lease: .none
            )
            model.commit(next)
        case 4, 5:
            let range = randomRange(&rng)
            let victims = model.range(range, at: model.current)
            round.append((.deleteRange(DeleteRangeRequest(range: range)), step, { result in
                guard case .success(.deleteRange(let deleted)) = result, deleted.deleted == Int64(victims.count) else {
                    return "delete \(range): \(result) vs \(victims.count)"
                }
                return nil
            }))
            if !victims.isEmpty {
                var next = model.latest
                for victim in victims { next[victim.key] = nil }
                model.commit(next)
            }
        case 6:
            // Txn: if key's mod revision equals what the model says, put two keys; else delete one.
            let key = modelKeys.randomElement(using: &rng)!
            let expected = model.latest[key]?.modRevision ?? Revision(0)
            let guess = Bool.random(using: &rng) ? expected : Revision(expected.value + 1)
            let (first, second) = (modelKeys[0], modelKeys[3])
            let txn = TxnRequest(
                compares: [Compare(range: .key(key), target: .mod(guess), result: .equal)],
                success: [.put(PutRequest(key: first, value: b("t\(step)"))), .put(PutRequest(key: second, value: b("u\(step)")))],
                failure: [.deleteRange(DeleteRangeRequest(range: .key(key)))]
            )
            let succeeds = guess == expected
            round.append((.txn(txn), step, { result in
                guard case .success(.txn(let outcome)) = result, outcome.succeeded == succeeds else { return "txn \(result)" }
                return nil
            }))
            var next = model.latest
            if succeeds {
                for (k, v) in [(first, "t\(step)"), (second, "u\(step)")] {
                    let previous = next[k]
                    next[k] = KeyValue(
                        key: k, createRevision: previous?.createRevision ?? Revision(model.current + 1),
                        modRevision: Revision(model.current + 1), version: (previous?.version ?? 0) + 1, value: b(v), lease: .none
                    )
                }
                model.commit(next)
            } else if next[key] != nil {
                next[key] = nil
                model.commit(next)
            }
        case 7:
            let target = Int64.random(in: 0...(model.current + 1), using: &rng)
            let want: Result<WriteResult, MVCCError>? =
                target <= model.compacted ? .failure(.compacted) : target > model.current ? .failure(.futureRevision) : nil
            round.append((.compact(Revision(target), physical: true), step, { result in
                if let want { return result == want ? nil : "compact \(target): \(result)" }
                guard case .success = result else { return "compact \(target): \(result)" }
                return nil
            }))
            if want == nil { model.compacted = target }
        default:
            try applyRound()
            var readSeed = rng
            try checkReads(store, model, &rng, seed: seed, step: step)
            try checkReads(immediate, model, &readSeed, seed: seed, step: step)
        }
    }
    try applyRound()
    try checkReads(store, model, &rng, seed: seed, step: steps)
    while try store.removeCompactedHistory(limit: Int.random(in: 1...4, using: &rng)) {}
    guard store.historyRemovedRevision == immediate.historyRemovedRevision else {
        throw ModelMismatch(
            seed: seed, step: steps,
            detail: "history removed below \(store.historyRemovedRevision) vs \(immediate.historyRemovedRevision)")
    }
    for family in ["kv", "key_index"] {
        guard try contents(database, family) == contents(immediateDatabase, family) else {
            throw ModelMismatch(seed: seed, step: steps, detail: "\(family) differs from the store that removed history at once")
        }
    }
}

/// The writer's index of live keys against one rebuilt from what is stored.
func checkLiveKeys(_ store: MVCCStore, _ database: Database, seed: UInt64, step: Int) throws {
    let rebuilt = try MVCCStore(database: database).liveKeyRevisions
    guard store.liveKeyRevisions == rebuilt else {
        throw ModelMismatch(seed: seed, step: step, detail: "live keys \(store.liveKeyRevisions) vs stored \(rebuilt)")
    }
}

func openStoreWithDatabase() throws -> (MVCCStore, Database) {
    let database = try Database(
        path: NSTemporaryDirectory() + "kvd-mvcc-\(UUID().uuidString)", columnFamilies: MVCCStore.columnFamilies)
    return (try MVCCStore(database: database), database)
}

/// Every stored entry of a column family, in order.
func contents(_ database: Database, _ family: String) throws -> [[UInt8]] {
    let iterator = database.makeIterator(database.columnFamily(family))
    iterator.seekToFirst()
    var entries: [[UInt8]] = []
    while iterator.isValid {
        entries.append(iterator.key)
        entries.append(iterator.value)
        iterator.next()
    }
    try iterator.checkError()
    return entries
}

func checkReads(_ store: MVCCStore, _ model: Model, _ rng: inout SeededGenerator, seed: UInt64, step: Int) throws {
    let view = store.readView()
    for _ in 0..<4 {
        let range = randomRange(&rng)
        let revision = Int64.random(in: 0...(model.current + 1), using: &rng)
        var request = RangeRequest(range: range)
        request.revision = Revision(revision)
        // Pages and counts: at the latest revision the count comes from the live key set.
        request.limit = Int64.random(in: 0...3, using: &rng)
        request.countOnly = Int.random(in: 0..<6, using: &rng) == 0
        do {
            let result = try view.range(request)
            let all = model.range(range, at: revision == 0 ? model.current : revision)
            let limit = Int(request.limit)
            let expected = request.countOnly ? [] : limit > 0 ? Array(all.prefix(limit)) : all
            let more = !request.countOnly && limit > 0 && all.count > limit
            guard revision <= model.current, revision == 0 || revision >= model.compacted,
                  result.keyValues == expected, result.count == Int64(all.count), result.more == more else {
                throw ModelMismatch(
                    seed: seed, step: step,
                    detail: "range \(range) @\(revision) limit \(limit) countOnly \(request.countOnly): \(result) vs \(expected) of \(all.count)")
            }
        } catch let error as MVCCError {
            let expectedError: MVCCError = revision > model.current ? .futureRevision : .compacted
            guard error == expectedError, revision > model.current || (revision > 0 && revision < model.compacted) else {
                throw ModelMismatch(seed: seed, step: step, detail: "range \(range) @\(revision): \(error)")
            }
        }
    }
}

struct ModelMismatch: Error, CustomStringConvertible {
    let seed: UInt64
    let step: Int
    let detail: String
    var description: String { "seed \(seed) step \(step): \(detail) — replay: MVCC_SEED=\(seed) swift test --filter MVCCModelTests" }
}

@Suite struct MVCCModelTests {
    @Test func storeAgreesWithModel() throws {
        let environment = ProcessInfo.processInfo.environment
        let seeds: [UInt64] = environment["MVCC_SEED"].flatMap(UInt64.init).map { [$0] }
            ?? Array(1...UInt64(environment["MVCC_SEEDS"].flatMap(Int.init) ?? 40))
        for seed in seeds {
            try runModelScenario(seed: seed, steps: 150)
        }
    }
}
