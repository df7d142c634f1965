/// Expected failures of MVCC operations. Each maps to one etcd gRPC status at the API edge.
package enum MVCCError: Error, Equatable, Sendable {
    /// The requested revision is at or below the compaction point.
    case compacted
    /// The requested revision is above the current one.
    case futureRevision
    /// A Put or a revoke names a lease that does not exist.
    case leaseNotFound(LeaseID)
    /// A grant names a lease ID already in use.
    case leaseExists(LeaseID)
    /// The NOSPACE alarm is active: Puts, Txns that put, and lease grants are refused.
    case noSpace
    /// The CORRUPT alarm is active: every write is refused until it is disarmed.
    case corrupt
    /// `ignore_value` / `ignore_lease` on a key that does not exist.
    case keyNotFound
    /// Storage failed underneath; carries RocksDB's message.
    case storage(String)
}
