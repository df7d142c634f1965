internal import Dispatch
internal import Foundation
package import MVCC
internal import Synchronization

/// What the KV service needs from the node to write: hand over a request, get its result once it
/// is durable and applied. The single-node group-commit writer implements it today; the Raft node
/// loop implements it once the cluster exists.
package protocol WriteProposer: Sendable {
    func propose(_ request: WriteRequest) async throws(APIError) -> WriteResult
}

/// Single-member write path (DESIGN §2 without replication): every request waiting when the
/// writer thread wakes is applied in one round and made durable with one fsync (group commit),
/// then all of them are answered. The cost per write falls as concurrent clients grow.
package final class GroupCommitWriter: WriteProposer {
    private typealias Waiter = CheckedContinuation<Result<WriteResult, APIError>, Never>

    private struct Queue {
        var pending: [(WriteRequest, Waiter)] = []
        var stopped = false
    }

    private let store: MVCCStore
    private let queue = Mutex(Queue())
    private let wakeup = DispatchSemaphore(value: 0)
    /// Bound on requests waiting for the writer; beyond it clients get "too many requests".
    private let pendingMax: Int
    /// Requests applied per round, at most: bounds the latency of the first request in a round.
    private let roundMax: Int
    private let onApplied: @Sendable ([Event]) -> Void

    package init(store: MVCCStore, pendingMax: Int = 16_384, roundMax: Int = 1_024, onApplied: @escaping @Sendable ([Event]) -> Void = { _ in }) {
        self.store = store
        self.pendingMax = pendingMax
        self.roundMax = roundMax
        self.onApplied = onApplied
    }

    /// Runs the writer on a dedicated thread: RocksDB writes and fsyncs block, so they stay off
    /// the cooperative pool (STYLE §6).
    package func start() {
        let thread = Thread { [self] in self.run() }
        thread.name = "kvd-writer"
        thread.start()
    }

    /// Stops taking requests; the ones already queued are still applied.
    package func stop() {
        queue.withLock { $0.stopped = true }
        wakeup.signal()
    }

    package func propose(_ request: WriteRequest) async throws(APIError) -> WriteResult {
        let result = await withCheckedContinuation { (waiter: Waiter) in
            let admitted = queue.withLock { queue -> Bool in
                guard !queue.stopped, queue.pending.count < pendingMax else { return false }
                queue.pending.append((request, waiter))
                return true
            }
            if admitted {
                wakeup.signal()
            } else {
                waiter.resume(returning: .failure(.tooManyRequests))
            }
        }
        return try result.get()
    }

    private func run() {
        while true {
            wakeup.wait()
            while true {
                let (round, stopped) = queue.withLock { queue in
                    let count = min(queue.pending.count, roundMax)
                    let round = Array(queue.pending.prefix(count))
                    queue.pending.removeFirst(count)
                    return (round, queue.stopped && queue.pending.isEmpty)
                }
                if !round.isEmpty {
                    let (results, events) = store.apply(round.map(\.0), sync: true)
                    onApplied(events)
                    for ((_, waiter), result) in zip(round, results) {
                        waiter.resume(returning: result.mapError(APIError.init))
                    }
                }
                if stopped { return }
                if round.isEmpty { break }
            }
        }
    }
}
