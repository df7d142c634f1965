// The first stages of the hot write path, alone:
//
// 1. "append": one synced RocksDB write batch of 64 entries of ~300 bytes (a Raft append of a
//    batch of puts). Expected cost: one fdatasync (~150 µs here) + memtable inserts; the sync
//    dominates, so entries/s scale with the batch size.
// 2. "apply": MVCC apply of N puts per round (N = 1, 16, 256), one fsync per round (group commit):
//    per put, one key_index seek for the previous version, two RocksDB puts (kv, key_index), and a
//    few small allocations (keys, encoded records). Expected: ~1 fsync per round, so puts/s grows
//    nearly linearly with N until CPU-bound encoding dominates.
// 3. "watch": the events of one apply round fanned out to a member's watchers (below).
// 4. "range": the read side of a large key space, one 10,000-key page with the range's count
//    (what `etcdctl get --prefix --limit 10000` asks): the count visits every live key.
//
// Run: `make bench` (release). Throughput, instructions and allocations are reported, not gated
// (they depend on the machine and the toolchain).
import Benchmark
import EtcdAPI
import Foundation
import MVCC
import Server
import Storage
import Synchronization

/// The scratch databases of this run (one per sample), removed when the process exits, once
/// every database is closed: a `make bench` used to leave about a thousand behind in /tmp.
let scratchPaths = Mutex<[String]>([])

func scratchDirectory(_ name: String) -> String {
    let path = NSTemporaryDirectory() + "kvd-bench-\(name)-\(UUID().uuidString)"
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    scratchPaths.withLock { paths in
        if paths.isEmpty {
            atexit {
                for path in scratchPaths.withLock({ $0 }) { try? FileManager.default.removeItem(atPath: path) }
            }
        }
        paths.append(path)
    }
    return path
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.throughput, .wallClock, .instructions, .mallocCountTotal, .syscalls],
        maxDuration: .seconds(3),
        maxIterations: 100_000
    )

    Benchmark("Storage synced batch append (64 entries)") { benchmark in
        let database = try! Database(path: scratchDirectory("append"), columnFamilies: ["raft_log"])
        let log = database.columnFamily("raft_log")
        let payload = [UInt8](repeating: 7, count: 300)
        var index: UInt64 = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            let batch = WriteBatch()
            for _ in 0..<64 {
                index += 1
                var key: [UInt8] = []
                for shift in stride(from: 56, through: 0, by: -8) { key.append(UInt8(truncatingIfNeeded: index >> UInt64(shift))) }
                batch.put(log, key, payload)
            }
            try! database.write(batch, sync: true)
        }
        benchmark.stopMeasurement()  // closing the database (a flush) is not the stage's cost
    }

    for batchSize in [1, 16, 256] {
        Benchmark("MVCC apply, \(batchSize) puts per synced round") { benchmark in
            let database = try! Database(path: scratchDirectory("apply"), columnFamilies: MVCCStore.columnFamilies)
            let store = try! MVCCStore(database: database)
            let value = [UInt8](repeating: 1, count: 256)
            var counter = 0
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                var round: [WriteRequest] = []
                round.reserveCapacity(batchSize)
                for _ in 0..<batchSize {
                    counter += 1
                    // 8-byte keys as etcd's benchmark tool, over a 10k key space.
                    let key = Array(String(format: "%08d", counter % 10_000).utf8)
                    round.append(.put(PutRequest(key: key, value: value)))
                }
                blackHole(store.apply(round, sync: true))
            }
            benchmark.stopMeasurement()
        }
    }

    // 3. One apply round's events fanned out to the watchers of a member: `watchers` on one
    //    prefix (half of them with prev_kv), 16 puts per round, published and drained as the Watch
    //    streams take them. Each event is converted to protobuf once per shape, not once per watcher.
    for watchers in [1, 100] {
        Benchmark("Watch publish, 16 events to \(watchers) watchers") { benchmark in
            let database = try! Database(path: scratchDirectory("watch"), columnFamilies: MVCCStore.columnFamilies)
            let store = try! MVCCStore(database: database)
            let hub = WatchHub(store: store, fragmentBytesMax: 1 << 20)
            let streams = (0..<watchers).map { watcher in
                let (stream, _) = hub.openStream()
                var request = Etcdserverpb_WatchCreateRequest()
                request.key = Data("/registry/pods/".utf8)
                request.rangeEnd = Data("/registry/pods0".utf8)
                request.prevKv = watcher % 2 == 1
                hub.create(request, on: stream)
                _ = hub.drain(stream)
                return stream
            }
            let value = [UInt8](repeating: 1, count: 256)
            // The rounds are applied before measuring: only publication and draining are timed.
            let rounds = benchmark.scaledIterations.map { round in
                let puts = (0..<16).map { put in
                    WriteRequest.put(PutRequest(key: Array("/registry/pods/default/pod-\((round * 16 + put) % 1_000)".utf8), value: value))
                }
                return (store.apply(puts, sync: false).1, store.currentRevision)
            }
            benchmark.startMeasurement()
            for (events, revision) in rounds {
                hub.publish(events, revision: revision)
                for stream in streams { blackHole(hub.drain(stream)) }
            }
            benchmark.stopMeasurement()
        }
    }

    // 4. A 10,000-key page of a prefix holding 200,000 keys (16-byte keys, 256-byte values, each
    //    key put once), with the count of the whole prefix, as kube-apiserver's paginated lists
    //    and `etcdctl get --prefix --limit` ask for it. The keys are loaded and compacted before
    //    measuring.
    Benchmark(
        "MVCC range, 10,000-key page with the count of 200,000 keys",
        configuration: .init(maxDuration: .seconds(10), maxIterations: 50)
    ) { benchmark in
        let database = try! Database(path: scratchDirectory("range"), columnFamilies: MVCCStore.columnFamilies)
        let store = try! MVCCStore(database: database)
        let value = [UInt8](repeating: 1, count: 256)
        for round in 0..<200 {
            let puts = (0..<1_000).map { put in
                WriteRequest.put(PutRequest(key: Array(String(format: "/registry/%06d", round * 1_000 + put).utf8), value: value))
            }
            _ = store.apply(puts, sync: false)
        }
        // Into the bottom level, compressed, as a large key space mostly sits.
        for family in ["key_index", "kv"] { database.compact(database.columnFamily(family)) }
        var request = RangeRequest(range: KeyRange(key: Array("/registry/".utf8), rangeEnd: Array("/registry0".utf8)))
        request.limit = 10_000
        let view = store.readView()
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            let result = try! view.range(request)
            precondition(result.count == 200_000 && result.keyValues.count == 10_000)
            blackHole(result)
        }
        benchmark.stopMeasurement()
    }
}
