// Single-server membership changes (Raft thesis §4.1). A change takes effect when the application applies
// its entry and calls `applyConfChange`, on every member alike, as in etcd-io/raft.

extension Raft {
    /// Applies a committed change and returns the new membership. Invalid changes (promoting a non-learner,
    /// removing the last voter, demoting a voter) are no-ops, the same on every member.
    mutating func applyConfChange(_ change: ConfChange) -> ConfState {
        var voters = Set(tracker.voters)
        var learners = Set(tracker.learners)
        switch change {
        case .addVoter(let member):
            learners.remove(member)
            voters.insert(member)
        case .addLearner(let member):
            // Demoting a voter is not supported: it would need the joint-consensus machinery.
            if !voters.contains(member) { learners.insert(member) }
        case .promote(let member):
            if learners.remove(member) != nil { voters.insert(member) }
        case .remove(let member):
            // The last voter cannot leave: nobody would be left to commit anything.
            if voters != [member] {
                voters.remove(member)
                learners.remove(member)
            }
        }
        let added = voters.union(learners).subtracting(tracker.members)
        tracker.reset(to: ConfState(voters: Array(voters), learners: Array(learners)), nextIndex: raftLog.lastIndex + 1)
        for member in added {
            // A new member is assumed alive so that it can be sent a snapshot at once (etcd does the same).
            tracker.progress[member]?.recentActive = true
        }
        isLearner = tracker.isLearner(id)
        if role == .leader { afterLeaderConfChange() }
        return tracker.confState
    }

    private mutating func afterLeaderConfChange() {
        if !tracker.contains(id) || isLearner {
            // A removed leader steps down once its removal is committed and applied (thesis §4.2.2).
            becomeFollower(term: term, lead: .none)
            return
        }
        if leadTransferee != .none && !tracker.isVoter(leadTransferee) {
            leadTransferee = .none
        }
        // The quorum may have shrunk, so commit may move; otherwise probe the new members.
        if maybeCommit() {
            releasePendingReadIndexMessages()
            bcastAppend()
        } else {
            for member in tracker.members where member != id {
                _ = maybeSendAppend(to: member, sendIfEmpty: false)
            }
        }
    }
}
