// `check perf` (etcdctl check.go): puts at the load's rate from its number of concurrent clients for its duration,
// then etcdctl's pass/fail lines on throughput, slowest request and standard deviation.

import EtcdAPI
import Foundation
import KVClient
import Synchronization

enum CheckCommand {
    static let perfFlags: [FlagSpec] = [
        FlagSpec(name: "load", kind: .string, defaultValue: "s"),
        FlagSpec(name: "prefix", kind: .string, defaultValue: "/etcdctl-check-perf/"),
        FlagSpec(name: "auto-compact", kind: .bool, defaultValue: "false"),
        FlagSpec(name: "auto-defrag", kind: .bool, defaultValue: "false"),
    ]

    /// etcdctl's checkPerfCfgMap: puts per second, concurrent clients, seconds.
    struct Load {
        var limit: Int
        var clients: Int
        var durationSeconds: Int
    }

    static func load(named name: String) -> Load? {
        switch name {
        case "s", "small": Load(limit: 150, clients: 50, durationSeconds: 60)
        case "m", "medium": Load(limit: 1000, clients: 200, durationSeconds: 60)
        case "l", "large": Load(limit: 8000, clients: 500, durationSeconds: 60)
        case "xl", "xLarge": Load(limit: 15000, clients: 1000, durationSeconds: 60)
        default: nil
        }
    }

    static func perf(_ flags: ParsedFlags) async {
        let loadName = flags.string("load")
        guard let load = load(named: loadName) else { exitWithError(.badFeature, "unknown load option \(loadName)") }
        let prefix = flags.string("prefix")
        let session = Session.make(flags)
        let range = KeyRanges.resolve(key: prefix, rangeEnd: nil, prefix: true, fromKey: false)
        var probe = Etcdserverpb_RangeRequest()
        probe.key = range.key
        probe.rangeEnd = range.end
        probe.limit = 1
        let existing = await session.callOrExit(timeout: .seconds(load.durationSeconds)) { [probe] client, timeout in
            try await client.range(probe, timeout: timeout)
        }
        if !existing.kvs.isEmpty {
            exitWithError(
                .invalidInput, "prefix \(GoFormat.quote(prefix)) has keys. Delete with etcdctl del --prefix \(prefix) first")
        }
        let latencies = await session.callOrExit(timeout: nil) { client, _ in
            await run(load, prefix: Array(prefix.utf8), client: client)
        }
        var delete = Etcdserverpb_DeleteRangeRequest()
        delete.key = range.key
        delete.rangeEnd = range.end
        let deleted = await session.callOrExit(timeout: .seconds(30)) { [delete] client, timeout in
            try await client.deleteRange(delete, timeout: timeout)
        }
        if flags.bool("auto-compact") { await compact(session, revision: deleted.header.revision) }
        if flags.bool("auto-defrag") {
            for endpoint in session.endpoints { await defrag(session, endpoint) }
        }
        let lines = PerfStats(latencies, limit: load.limit).verdict()
        Console.out(lines.text)
        if !lines.isPass { exit(ExitCode.error.rawValue) }
    }

    /// The puts: each client takes the next slot of the rate limiter (one put every 1/limit s, no burst, as
    /// etcdctl's rate.NewLimiter(limit, 1)) until the duration is over.
    private static func run(_ load: Load, prefix: [UInt8], client: EtcdClient) async -> PerfStats.Samples {
        let interval = Duration.seconds(1) / load.limit
        let start = ContinuousClock.now
        let end = start + .seconds(load.durationSeconds)
        let shared = PerfRun(start: start)
        let value = Data(count: 1024)
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<load.clients {
                group.addTask {
                    while true {
                        let slot = shared.nextSlot.withLock { next in
                            let slot = max(next, ContinuousClock.now)
                            next = slot + interval
                            return slot
                        }
                        guard slot < end else { return }
                        try? await Task.sleep(until: slot)  // cancellation only ends the check early
                        var request = Etcdserverpb_PutRequest()
                        request.key = Data(prefix + randomKey())
                        request.value = value
                        let sent = ContinuousClock.now
                        var failure: String? = nil
                        do {
                            _ = try await client.put(request)
                        } catch let error as EtcdClientError {
                            failure = EtcdErrors.message(for: error)
                        } catch {
                            failure = "\(error)"
                        }
                        let latency = ContinuousClock.now - sent
                        shared.results.withLock { $0.add(latency, error: failure) }
                    }
                }
            }
        }
        return shared.results.withLock { samples in
            samples.total = ContinuousClock.now - start
            return samples
        }
    }

    /// etcdctl's key: 256 bytes, a random int63 as a varint at the front.
    private static func randomKey() -> [UInt8] {
        var key = [UInt8](repeating: 0, count: 256)
        // binary.PutVarint: zig-zag, then 7 bits per byte.
        var value = UInt64(Int64.random(in: 0..<Int64.max)) << 1
        var index = 0
        while value >= 0x80 {
            key[index] = UInt8(truncatingIfNeeded: value) | 0x80
            value >>= 7
            index += 1
        }
        key[index] = UInt8(value)
        return key
    }

    private static func compact(_ session: Session, revision: Int64) async {
        Console.out("Compacting with revision \(revision)\n")
        var request = Etcdserverpb_CompactionRequest()
        request.revision = revision
        request.physical = true
        _ = await session.callOrExit(timeout: .seconds(30)) { [request] client, timeout in
            try await client.compact(request, timeout: timeout)
        }
        Console.out("Compacted with revision \(revision)\n")
    }

    private static func defrag(_ session: Session, _ endpoint: String) async {
        Console.out("Defragmenting \(GoFormat.quote(endpoint))\n")
        switch await EndpointCommand.askMember(endpoint, session, timeout: .seconds(30), { client, timeout in
            try await client.defragment(timeout: timeout)
        }) {
        case .success: Console.out("Defragmented \(GoFormat.quote(endpoint))\n")
        case .failure(let error): exitWithError(.error, error.message)
        }
    }
}

/// What the concurrent clients of one check share.
final class PerfRun: Sendable {
    /// The rate limiter: when the next put may go.
    let nextSlot: Mutex<ContinuousClock.Instant>
    /// Every put's outcome.
    let results = Mutex(PerfStats.Samples())

    init(start: ContinuousClock.Instant) { nextSlot = Mutex(start) }
}

/// etcd's pkg/report statistics of the puts and check perf's verdict on them.
struct PerfStats {
    struct Samples: Sendable {
        /// Each successful or failed put's latency, in seconds.
        var latencies: [Double] = []
        /// Failed puts by error text.
        var errors: [String: Int] = [:]
        /// From the first put's slot to the end of the last put.
        var total: Duration = .zero

        mutating func add(_ latency: Duration, error: String?) {
            if let error {
                errors[error, default: 0] += 1
            } else {
                latencies.append(Double(latency.components.seconds) + Double(latency.components.attoseconds) / 1e18)
            }
        }
    }

    var requestsPerSecond: Double
    var slowestSeconds: Double
    var stddevSeconds: Double
    var errors: [String: Int]
    var limit: Int

    init(_ samples: Samples, limit: Int) {
        let totalSeconds =
            Double(samples.total.components.seconds) + Double(samples.total.components.attoseconds) / 1e18
        let count = Double(samples.latencies.count)
        requestsPerSecond = totalSeconds > 0 ? count / totalSeconds : 0
        slowestSeconds = samples.latencies.max() ?? 0
        let mean = count > 0 ? samples.latencies.reduce(0, +) / count : 0
        let variance = count > 0 ? samples.latencies.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / count : 0
        stddevSeconds = variance.squareRoot()
        errors = samples.errors
        self.limit = limit
    }

    /// check.go's lines, in its order and wording (the slowest and stddev failures have no "FAIL: " prefix there).
    func verdict() -> (text: String, isPass: Bool) {
        var text = ""
        var isPass = true
        if !errors.isEmpty {
            text += "FAIL: too many errors\n"
            for (error, count) in errors.sorted(by: { $0.key < $1.key }) { text += "FAIL: ERROR(\(error)) -> \(count)\n" }
            isPass = false
        }
        if requestsPerSecond / Double(limit) <= 0.9 {
            text += "FAIL: Throughput too low: \(Int(requestsPerSecond) + 1) writes/s\n"
            isPass = false
        } else {
            text += "PASS: Throughput is \(Int(requestsPerSecond) + 1) writes/s\n"
        }
        if slowestSeconds > 0.5 {
            text += "Slowest request took too long: \(Self.goFloat(slowestSeconds))s\n"
            isPass = false
        } else {
            text += "PASS: Slowest request took \(Self.goFloat(slowestSeconds))s\n"
        }
        if stddevSeconds > 0.1 {
            text += "Stddev too high: \(Self.goFloat(stddevSeconds))s\n"
            isPass = false
        } else {
            text += "PASS: Stddev is \(Self.goFloat(stddevSeconds))s\n"
        }
        text += isPass ? "PASS\n" : "FAIL\n"
        return (text, isPass)
    }

    /// Go's %f: six decimals.
    static func goFloat(_ value: Double) -> String { String(format: "%.6f", value) }
}
