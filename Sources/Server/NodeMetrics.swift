internal import MVCC
internal import Prometheus
internal import Raft
internal import Synchronization

/// The member's Prometheus metrics, under etcd's names where the meaning is the same (so that
/// etcd dashboards and alerts work unchanged). Counters and histograms are updated where the
/// event happens; gauges that mirror the node's state are refreshed from `NodeFacts` when scraped.
final class NodeMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()

    let hasLeader: Gauge
    let isLeader: Gauge
    let leaderChanges: Gauge
    let proposalsCommitted: Gauge
    let proposalsApplied: Gauge
    let proposalsPending: Gauge
    let proposalsFailed: Counter
    let walFsyncDuration: DurationHistogram
    let backendCommitDuration: DurationHistogram
    /// kvd's own stages (etcd has no histogram for them): a write proposal from the node loop
    /// receiving it to its result, and one `Ready` handled (send, persist, apply, advance).
    let proposalDuration: DurationHistogram
    let readyDuration: DurationHistogram
    let databaseSize: Gauge
    let keysTotal: Gauge
    let healthSuccess: Counter
    let healthFailures: Counter
    /// KV calls the client port answered itself (`DirectKVCalls`); every call, either way, is in
    /// `grpc_server_started_total`.
    let directCalls: Counter
    /// etcd's mvcc operation counters, fed from the store's counts when scraped.
    private let ranges: Counter
    private let puts: Counter
    private let deletes: Counter
    private let txns: Counter
    private let operationsEmitted = Mutex(OperationCounts.Counts())

    /// etcd's disk latency buckets: 1 ms doubling to about 8 s.
    private static let diskBuckets: [Duration] = (0..<14).map { .microseconds(1_000 << $0) }

    /// etcd's full metric names, kept whole rather than split into namespace and unit.
    private static func named(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }

    init() {
        hasLeader = registry.makeGauge(descriptor: Self.named("etcd_server_has_leader", "Whether or not a leader exists. 1 is existence, 0 is not."))
        isLeader = registry.makeGauge(descriptor: Self.named("etcd_server_is_leader", "Whether or not this member is a leader. 1 if is, 0 otherwise."))
        // A counter in etcd; a gauge here because it mirrors the node loop's own count.
        leaderChanges = registry.makeGauge(descriptor: Self.named("etcd_server_leader_changes_seen_total", "The number of leader changes seen."))
        proposalsCommitted = registry.makeGauge(descriptor: Self.named("etcd_server_proposals_committed_total", "The total number of consensus proposals committed."))
        proposalsApplied = registry.makeGauge(descriptor: Self.named("etcd_server_proposals_applied_total", "The total number of consensus proposals applied."))
        proposalsPending = registry.makeGauge(descriptor: Self.named("etcd_server_proposals_pending", "The current number of pending proposals to commit."))
        proposalsFailed = registry.makeCounter(descriptor: Self.named("etcd_server_proposals_failed_total", "The total number of failed proposals seen."))
        walFsyncDuration = registry.makeDurationHistogram(descriptor: Self.named("etcd_disk_wal_fsync_duration_seconds", "The latency distributions of fsync called by WAL."), buckets: Self.diskBuckets)
        backendCommitDuration = registry.makeDurationHistogram(descriptor: Self.named("etcd_disk_backend_commit_duration_seconds", "The latency distributions of commit called by backend."), buckets: Self.diskBuckets)
        proposalDuration = registry.makeDurationHistogram(descriptor: Self.named("kvd_server_proposal_duration_seconds", "The latency distributions of write proposals, from the node loop receiving one to its applied result."), buckets: Self.roundTripBuckets)
        readyDuration = registry.makeDurationHistogram(descriptor: Self.named("kvd_raft_ready_duration_seconds", "The latency distributions of handling one Raft Ready: send, persist, apply, advance."), buckets: Self.roundTripBuckets)
        databaseSize = registry.makeGauge(descriptor: Self.named("etcd_mvcc_db_total_size_in_bytes", "Total size of the underlying database physically allocated in bytes."))
        keysTotal = registry.makeGauge(descriptor: Self.named("etcd_debugging_mvcc_keys_total", "Total number of keys."))
        healthSuccess = registry.makeCounter(descriptor: Self.named("etcd_server_health_success", "The total number of successful health checks"))
        healthFailures = registry.makeCounter(descriptor: Self.named("etcd_server_health_failures", "The total number of failed health checks"))
        directCalls = registry.makeCounter(descriptor: Self.named("kvd_grpc_direct_calls_total", "KV calls the client port answered on its event loop, without grpc-swift's tasks."))
        ranges = registry.makeCounter(descriptor: Self.named("etcd_mvcc_range_total", "Total number of ranges seen by this member."))
        puts = registry.makeCounter(descriptor: Self.named("etcd_mvcc_put_total", "Total number of puts seen by this member."))
        deletes = registry.makeCounter(descriptor: Self.named("etcd_mvcc_delete_total", "Total number of deletes seen by this member."))
        txns = registry.makeCounter(descriptor: Self.named("etcd_mvcc_txn_total", "Total number of txns seen by this member."))
        registry.makeGauge(
            descriptor: Self.named("etcd_server_version", "Which version is running. 1 for 'server_version' label with current version."),
            labels: [("server_version", MaintenanceService.etcdVersion)]
        ).set(Int64(1))
    }

    /// etcd's member identity gauge (1, with the member's ID in hex as its label), set at start.
    func identify(_ member: MemberID) {
        registry.makeGauge(
            descriptor: Self.named("etcd_server_id", "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID."),
            labels: [("server_id", String(member.value, radix: 16))]
        ).set(Int64(1))
    }

    /// etcd's peer round-trip histogram, per peer (label `To`, the member ID in hex).
    func peerRoundTrip(to peer: NodeID) -> DurationHistogram {
        registry.makeDurationHistogram(
            descriptor: Self.named(
                "etcd_network_peer_round_trip_time_seconds", "Round-Trip-Time histogram between peers"),
            labels: [("To", String(peer.rawValue, radix: 16))], buckets: Self.roundTripBuckets)
    }

    /// etcd's RTT buckets: 0.1 ms doubling to about 0.8 s.
    private static let roundTripBuckets: [Duration] = (0..<14).map { .microseconds(100 << $0) }

    /// Refreshes the state gauges, then renders every metric in Prometheus' text format.
    func render(facts: NodeFacts, databaseBytes: Int64, keys: Int64, operations: OperationCounts.Counts) -> [UInt8] {
        // The store counts; the counters take what it counted since the last scrape.
        operationsEmitted.withLock { emitted in
            ranges.increment(by: Int64(operations.ranges - emitted.ranges))
            puts.increment(by: Int64(operations.puts - emitted.puts))
            deletes.increment(by: Int64(operations.deletes - emitted.deletes))
            txns.increment(by: Int64(operations.txns - emitted.txns))
            emitted = operations
        }
        hasLeader.set(Int64(facts.leader == NodeID.none ? 0 : 1))
        isLeader.set(Int64(facts.role == .leader ? 1 : 0))
        leaderChanges.set(Int64(facts.leaderChanges))
        proposalsCommitted.set(Int64(facts.commitIndex.rawValue))
        proposalsApplied.set(Int64(facts.appliedIndex.rawValue))
        proposalsPending.set(Int64(facts.pendingProposals))
        databaseSize.set(databaseBytes)
        keysTotal.set(keys)
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return buffer
    }
}
