// Lease expiry decisions on an explicit timeline: only the leader decides, an election extends
// every lease, keep-alives renew a full TTL, and an expired lease is revoked once (then retried
// only if its revocation was lost); `lease list` in etcd's order.
import Lease
import Testing

@Suite struct LeaseExpiryTests {
    @Test func leaseListIsInExpiryOrderOnTheLeaderAndIDOrderElsewhere() {
        var expiry = LeaseExpiry()
        #expect(expiry.byExpiry([3, 1, 2]) == [1, 2, 3])
        expiry.promote(leases: [(1, 30), (2, 10)], now: Millis(0), extendMillis: 0)
        expiry.granted(3, ttlSeconds: 20, now: Millis(0))
        expiry.granted(4, ttlSeconds: 10, now: Millis(0))
        // 2 and 4 expire together (by ID), then 3, then 1; 5 is unknown here (last).
        #expect(expiry.byExpiry([5, 1, 2, 3, 4]) == [2, 4, 3, 1, 5])
        _ = expiry.renew(2, ttlSeconds: 10, now: Millis(5_000))
        #expect(expiry.byExpiry([1, 2, 3, 4]) == [4, 2, 3, 1])
    }

    @Test func followersNeverExpireLeases() {
        var expiry = LeaseExpiry()
        expiry.granted(1, ttlSeconds: 1, now: Millis(0))
        #expect(expiry.takeExpired(now: Millis(10_000)).isEmpty)
        #expect(expiry.remainingSeconds(1, now: Millis(0)) == nil)
    }

    @Test func promotionGivesEveryLeaseItsTTLPlusAnElectionTimeout() {
        var expiry = LeaseExpiry()
        expiry.promote(leases: [(1, 5), (2, 10)], now: Millis(1_000), extendMillis: 1_000)
        #expect(expiry.takeExpired(now: Millis(6_999)).isEmpty)
        #expect(expiry.takeExpired(now: Millis(7_000)) == [1])
        #expect(expiry.remainingSeconds(2, now: Millis(7_000)) == 5)
    }

    @Test func keepAliveRenewsAFullTTL() {
        var expiry = LeaseExpiry()
        expiry.promote(leases: [], now: Millis(0), extendMillis: 0)
        expiry.granted(7, ttlSeconds: 3, now: Millis(0))
        let renewedInTime = expiry.renew(7, ttlSeconds: 3, now: Millis(2_500))
        #expect(renewedInTime)
        #expect(expiry.takeExpired(now: Millis(5_000)).isEmpty)
        #expect(expiry.takeExpired(now: Millis(5_500)) == [7])
        // Once its revocation is under way, a lease cannot be kept alive.
        let renewedWhileRevoking = expiry.renew(7, ttlSeconds: 3, now: Millis(5_600))
        #expect(!renewedWhileRevoking)
        let renewedUnknown = expiry.renew(99, ttlSeconds: 3, now: Millis(5_600))
        #expect(!renewedUnknown)
    }

    @Test func anExpiredLeaseIsProposedOnceThenRetriedIfLost() {
        var expiry = LeaseExpiry()
        expiry.retryMillis = 1_000
        expiry.promote(leases: [(1, 1)], now: Millis(0), extendMillis: 0)
        #expect(expiry.takeExpired(now: Millis(1_000)) == [1])
        #expect(expiry.takeExpired(now: Millis(1_500)).isEmpty)
        #expect(expiry.takeExpired(now: Millis(2_000)) == [1])
        expiry.revoked(1)
        #expect(expiry.takeExpired(now: Millis(9_000)).isEmpty)
    }

    @Test func demotionForgetsDeadlines() {
        var expiry = LeaseExpiry()
        expiry.promote(leases: [(1, 1)], now: Millis(0), extendMillis: 0)
        expiry.demote()
        #expect(!expiry.isLeader)
        #expect(expiry.takeExpired(now: Millis(10_000)).isEmpty)
    }
}
