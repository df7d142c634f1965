/// etcd's strict reconfiguration check (`--strict-reconfig-check`, on by default): a membership
/// change that would leave fewer started voters than a quorum, or that this member cannot judge
/// because it has not been connected to the voters it counts on, is refused before it is proposed.
/// A member counts as started once it has published its name (etcd `Member.IsStarted`).
extension Membership {
    private var voters: [MemberRecord] { members.filter { !$0.isLearner } }

    /// etcd `IsReadyToAddVotingMember`: after adding one voter (not started yet), the started
    /// voters must still be a quorum. A one-member cluster may always grow to two (restores).
    func isReadyToAddVoter() -> Bool {
        let total = voters.count + 1
        let started = voters.filter { !$0.name.isEmpty }.count
        if started == 1 && total == 2 { return true }
        return started >= total / 2 + 1
    }

    /// etcd `IsReadyToRemoveVotingMember`: the started voters left must be a quorum of those left.
    func isReadyToRemoveVoter(_ id: MemberID) -> Bool {
        let remaining = voters.filter { $0.id != id }
        return remaining.filter { !$0.name.isEmpty }.count >= remaining.count / 2 + 1
    }

    /// etcd `IsReadyToPromoteMember`: the learner counts as a started voter of the new cluster.
    func isReadyToPromote() -> Bool {
        let total = voters.count + 1
        let started = voters.filter { !$0.name.isEmpty }.count + 1
        return started >= total / 2 + 1
    }

    /// etcd `mayAddMember`. `connected` says whether this member's stream to a peer has been up
    /// for etcd's health interval (5 s); this member itself always counts.
    func checkAdd(isLearner: Bool, connected: (MemberID) -> Bool) throws(APIError) {
        if !isLearner && !isReadyToAddVoter() { throw .notEnoughStartedMembers }
        if !voters.allSatisfy({ connected($0.id) }) { throw .unhealthy }
    }

    /// etcd `mayRemoveMember`. `active` says whether this member has a live stream to a peer at
    /// all: a voter that is down is not part of the active quorum and is safe to remove.
    func checkRemove(_ id: MemberID, localID: MemberID, active: (MemberID) -> Bool, connected: (MemberID) -> Bool) throws(APIError) {
        guard let member = member(id), !member.isLearner else { return }
        if !isReadyToRemoveVoter(id) { throw .notEnoughStartedMembers }
        if id != localID && !active(id) { return }
        let connectedVoters = voters.filter { $0.id == localID || connected($0.id) }.count
        if connectedVoters - 1 < 1 + (voters.count - 1) / 2 { throw .unhealthy }
    }
}
