internal import Foundation
internal import Lease
internal import MVCC
internal import Synchronization

/// The leader's lease deadlines, shared between the node loop (expiry on ticks, promotion on
/// leader change, grants and revocations as they apply) and the Lease service (keep-alives and
/// TTL queries). Decisions live in `LeaseExpiry`; this type only adds the clock and the lock.
final class LeaseKeeper: Sendable {
    private let expiry = Mutex(LeaseExpiry())
    private let start = ContinuousClock.now
    /// etcd's minimum TTL: 1.5 election timeouts, in whole seconds (rounded up).
    let minimumTTLSeconds: Int64
    /// How much a new leader extends every lease (one election timeout).
    let electionTimeoutMillis: Int64

    /// etcd's largest TTL (`MaxLeaseTTL`).
    static let maximumTTLSeconds: Int64 = 9_000_000_000

    init(electionTimeoutMillis: Int64) {
        self.electionTimeoutMillis = electionTimeoutMillis
        minimumTTLSeconds = max(1, (3 * electionTimeoutMillis / 2 + 999) / 1_000)
    }

    var now: Millis {
        let elapsed = start.duration(to: .now)
        return Millis(elapsed.components.seconds * 1_000 + elapsed.components.attoseconds / 1_000_000_000_000_000)
    }

    func promote(_ leases: [LeaseRecord]) {
        let now = self.now
        expiry.withLock { $0.promote(leases: leases.map { ($0.id.value, $0.ttlSeconds) }, now: now, extendMillis: electionTimeoutMillis) }
    }

    func demote() {
        expiry.withLock { $0.demote() }
    }

    func granted(_ id: LeaseID, ttlSeconds: Int64) {
        let now = self.now
        expiry.withLock { $0.granted(id.value, ttlSeconds: ttlSeconds, now: now) }
    }

    func revoked(_ id: LeaseID) {
        expiry.withLock { $0.revoked(id.value) }
    }

    func renew(_ id: LeaseID, ttlSeconds: Int64) -> Bool {
        let now = self.now
        return expiry.withLock { $0.renew(id.value, ttlSeconds: ttlSeconds, now: now) }
    }

    func remainingSeconds(_ id: LeaseID) -> Int64? {
        let now = self.now
        return expiry.withLock { $0.remainingSeconds(id.value, now: now) }
    }

    /// `ids` in etcd's `lease list` order (`LeaseExpiry.byExpiry`).
    func byExpiry(_ ids: [LeaseID]) -> [LeaseID] {
        expiry.withLock { $0.byExpiry(ids.map(\.value)) }.map { LeaseID($0) }
    }

    func takeExpired() -> [LeaseID] {
        let now = self.now
        return expiry.withLock { $0.takeExpired(now: now) }.map { LeaseID($0) }
    }

    var isLeader: Bool { expiry.withLock { $0.isLeader } }
}
