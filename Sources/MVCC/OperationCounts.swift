internal import Synchronization

/// The operations this member has executed, as etcd's mvcc metrics count them
/// (`etcd_mvcc_range_total`, `put_total`, `delete_total`, `txn_total`): every range, put and delete
/// of every request (writes where they are applied, reads where they are served), and one txn for
/// each request that ran more than one operation.
package final class OperationCounts: Sendable {
    package struct Counts: Sendable, Equatable {
        package var ranges = 0
        package var puts = 0
        package var deletes = 0
        package var txns = 0

        package init() {}
    }

    // Four counters rather than one lock: every Range on every event loop records here.
    private let ranges = Atomic(0)
    private let puts = Atomic(0)
    private let deletes = Atomic(0)
    private let txns = Atomic(0)

    package init() {}

    package var current: Counts {
        var counts = Counts()
        counts.ranges = ranges.load(ordering: .relaxed)
        counts.puts = puts.load(ordering: .relaxed)
        counts.deletes = deletes.load(ordering: .relaxed)
        counts.txns = txns.load(ordering: .relaxed)
        return counts
    }

    func record(ranges: Int, puts: Int, deletes: Int) {
        if ranges > 0 { self.ranges.wrappingAdd(ranges, ordering: .relaxed) }
        if puts > 0 { self.puts.wrappingAdd(puts, ordering: .relaxed) }
        if deletes > 0 { self.deletes.wrappingAdd(deletes, ordering: .relaxed) }
        if ranges + puts + deletes > 1 { txns.wrappingAdd(1, ordering: .relaxed) }
    }

    func record(_ txn: TxnWriter) {
        record(ranges: txn.ranges, puts: txn.puts, deletes: txn.deletes)
    }
}
