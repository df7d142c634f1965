/// A point on the leader's monotonic clock, in milliseconds. Time comes from the caller: this
/// module reads no clock, so its decisions can be tested with any timeline.
package struct Millis: Comparable, Hashable, Sendable {
    package var value: Int64
    package init(_ value: Int64) { self.value = value }
    package static func < (lhs: Millis, rhs: Millis) -> Bool { lhs.value < rhs.value }
    package static func + (lhs: Millis, rhs: Int64) -> Millis { Millis(lhs.value + rhs) }
}

/// The leader's lease deadlines: only the leader tracks them, and it revokes an
/// expired lease by proposing the revocation through Raft, so every member deletes the same keys.
///
/// Invariant: `deadlines` is empty unless `isLeader`.
package struct LeaseExpiry: Sendable {
    /// Lease ID → when it expires.
    private(set) var deadlines: [Int64: Millis] = [:]
    /// Leases whose revocation was proposed and not yet applied, with when to propose again.
    private var revoking: [Int64: Millis] = [:]
    /// Whether this member leads and so decides expiry.
    package private(set) var isLeader = false
    /// How long a proposed revocation may stay unapplied before it is proposed again.
    package var retryMillis: Int64 = 3_000

    package init() {}

    /// Becoming leader: every lease gets its full TTL plus `extendMillis` (one election timeout),
    /// so that no lease expires because of the election (etcd `lessor.Promote`).
    package mutating func promote(leases: [(id: Int64, ttlSeconds: Int64)], now: Millis, extendMillis: Int64) {
        isLeader = true
        deadlines = [:]
        revoking = [:]
        for lease in leases { deadlines[lease.id] = now + lease.ttlSeconds * 1_000 + extendMillis }
    }

    /// Losing leadership: the next leader decides.
    package mutating func demote() {
        isLeader = false
        deadlines = [:]
        revoking = [:]
    }

    /// A grant was applied.
    package mutating func granted(_ id: Int64, ttlSeconds: Int64, now: Millis) {
        if isLeader { deadlines[id] = now + ttlSeconds * 1_000 }
    }

    /// A revocation was applied.
    package mutating func revoked(_ id: Int64) {
        deadlines.removeValue(forKey: id)
        revoking.removeValue(forKey: id)
    }

    /// A keep-alive on the leader: the lease lives a full TTL from now. Returns false if the
    /// lease is unknown or already expired (being revoked).
    package mutating func renew(_ id: Int64, ttlSeconds: Int64, now: Millis) -> Bool {
        guard isLeader, let deadline = deadlines[id], deadline > now, revoking[id] == nil else { return false }
        deadlines[id] = now + ttlSeconds * 1_000
        return true
    }

    /// `ids` in etcd's `lease list` order: soonest expiry first (etcd's lessor sorts by expiry),
    /// then by ID; leases without a deadline here (every lease on a follower) last, by ID.
    package func byExpiry(_ ids: [Int64]) -> [Int64] {
        ids.sorted { a, b in
            switch (deadlines[a], deadlines[b]) {
            case let (x?, y?) where x != y: return x < y
            case (.some, nil): return true
            case (nil, .some): return false
            default: return a < b
            }
        }
    }

    /// Seconds left, rounded up as etcd reports them (nil if unknown here).
    package func remainingSeconds(_ id: Int64, now: Millis) -> Int64? {
        guard let deadline = deadlines[id] else { return nil }
        let left = max(0, deadline.value - now.value)
        return (left + 999) / 1_000
    }

    /// Leases to revoke now: expired and not already being revoked (or whose revocation was
    /// proposed long ago without being applied, e.g. lost in a leader change).
    package mutating func takeExpired(now: Millis, limit: Int = 1_000) -> [Int64] {
        guard isLeader else { return [] }
        var due: [Int64] = []
        for (id, deadline) in deadlines where deadline <= now {
            if let retry = revoking[id], retry > now { continue }
            due.append(id)
            if due.count >= limit { break }
        }
        for id in due { revoking[id] = now + retryMillis }
        return due.sorted()
    }
}
