@testable import Server
import Testing

/// etcd's strict reconfiguration check, case by case (etcd `mayAddMember`, `mayRemoveMember`,
/// `IsReadyToPromoteMember`).
@Suite struct ReconfigurationChecksTests {
    private func membership(started: [UInt64], unstarted: [UInt64] = [], learners: [UInt64] = []) -> Membership {
        var membership = Membership()
        for id in started {
            membership.upsert(MemberRecord(id: MemberID(id), name: "n\(id)", peerURLs: ["https://n\(id):2380"], clientURLs: [], isLearner: false))
        }
        for id in unstarted {
            membership.upsert(MemberRecord(id: MemberID(id), name: "", peerURLs: ["https://n\(id):2380"], clientURLs: [], isLearner: false))
        }
        for id in learners {
            membership.upsert(MemberRecord(id: MemberID(id), name: "n\(id)", peerURLs: ["https://n\(id):2380"], clientURLs: [], isLearner: true))
        }
        return membership
    }

    @Test("adding a voter needs every voter connected, and enough started voters")
    func add() throws {
        let three = membership(started: [1, 2, 3])
        try three.checkAdd(isLearner: false, connected: { _ in true })
        #expect(throws: APIError.unhealthy) { try three.checkAdd(isLearner: false, connected: { $0 != MemberID(3) }) }
        #expect(throws: APIError.unhealthy) { try three.checkAdd(isLearner: true, connected: { $0 != MemberID(3) }) }
        // Two of three voters never started: a fourth voter would leave 1 started of 4.
        let mostlyNew = membership(started: [1], unstarted: [2, 3])
        #expect(throws: APIError.notEnoughStartedMembers) { try mostlyNew.checkAdd(isLearner: false, connected: { _ in true }) }
        try mostlyNew.checkAdd(isLearner: true, connected: { _ in true })
        // A one-member cluster may always grow to two.
        try membership(started: [1]).checkAdd(isLearner: false, connected: { _ in true })
    }

    @Test("removing a live voter while another is down would break the quorum")
    func remove() throws {
        let three = membership(started: [1, 2, 3])
        let withoutThree: (MemberID) -> Bool = { $0 != MemberID(3) }
        #expect(throws: APIError.unhealthy) {
            try three.checkRemove(MemberID(2), localID: MemberID(1), active: withoutThree, connected: withoutThree)
        }
        // The member that is down is safe to remove.
        try three.checkRemove(MemberID(3), localID: MemberID(1), active: withoutThree, connected: withoutThree)
        // All up: fine.
        try three.checkRemove(MemberID(2), localID: MemberID(1), active: { _ in true }, connected: { _ in true })
        // Learners are never checked.
        let withLearner = membership(started: [1, 2], learners: [4])
        try withLearner.checkRemove(MemberID(4), localID: MemberID(1), active: { _ in true }, connected: { _ in false })
        // Removing a started voter when the others never started leaves no started quorum.
        let mostlyNew = membership(started: [1, 2], unstarted: [3, 4])
        #expect(throws: APIError.notEnoughStartedMembers) {
            try mostlyNew.checkRemove(MemberID(2), localID: MemberID(1), active: { _ in true }, connected: { _ in true })
        }
    }

    @Test("a learner may be promoted when it and the started voters make a quorum")
    func promote() {
        #expect(membership(started: [1, 2, 3], learners: [4]).isReadyToPromote())
        #expect(!membership(started: [1], unstarted: [2, 3, 5], learners: [4]).isReadyToPromote())
    }
}

@Suite struct MemberAddIDTests {
    @Test("a member re-added with a removed member's URLs in the same second gets a new ID")
    func reAddSameSecond() {
        let urls = ["https://127.0.0.1:29999"]
        var membership = Membership()
        let first = ClusterService.newMemberID(peerURLs: urls, membership: membership, now: 1_700_000_000)
        #expect(first == ClusterIdentity.memberID(peerURLs: urls, token: "1700000000"))
        membership.removed.insert(first.value)
        let second = ClusterService.newMemberID(peerURLs: urls, membership: membership, now: 1_700_000_000)
        #expect(second != first)
        #expect(second == ClusterIdentity.memberID(peerURLs: urls, token: "1700000001"))
    }
}
