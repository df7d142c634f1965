// Table tests for the classic cases of the Raft paper and thesis, driven by hand through TestCluster:
// figures 7 and 8, pre-vote, check-quorum, snapshot catch-up, leader transfer, learners, ReadIndex, proposals.

import Testing
@testable import Raft

@Suite("Classic cases")
struct ClassicCasesTests {
    // MARK: Elections

    @Test("a campaign elects a leader, which commits an empty entry of its term") // Raft §5.2, §8
    func electionCommitsNoOp() throws {
        let cluster = TestCluster(voters: [1, 2, 3])
        cluster.campaign(1)
        #expect(cluster.leaders == [1])
        let leader = cluster[1]
        #expect(leader.commitIndex == leader.lastIndex)
        let last = try leader.raft.raftLog.term(at: leader.lastIndex)
        #expect(last == leader.term)
        #expect(cluster.violations.isEmpty)
    }

    @Test("an isolated node with pre-vote does not bump its term or disrupt the leader") // thesis §9.6
    func preVotePreventsDisruption() throws {
        let cluster = TestCluster(voters: [1, 2, 3])
        cluster.campaign(1)
        let term = cluster[1].term
        cluster.isolate([3])
        cluster.tick(3, times: 50)
        #expect(cluster[3].term == term)
        cluster.heal()
        cluster.tickAll(times: 5)
        #expect(cluster.leaders == [1])
        #expect(cluster[1].term == term)
    }

    @Test("without pre-vote, the same isolated node rejoins with a higher term and forces an election")
    func withoutPreVoteTheTermIsBumped() {
        let cluster = TestCluster(voters: [1, 2, 3]) { $0.preVote = false; $0.checkQuorum = false }
        cluster.campaign(1)
        let term = cluster[1].term
        cluster.isolate([3])
        cluster.tick(3, times: 50)
        #expect(cluster[3].term > term)
        cluster.heal()
        cluster.tickAll(times: 30)
        #expect(cluster.nodes.values.allSatisfy { $0.term > term })
    }

    @Test("a leader cut off from its quorum steps down after an election timeout") // thesis §6.2
    func checkQuorumStepDown() {
        let cluster = TestCluster(voters: [1, 2, 3])
        cluster.campaign(1)
        cluster.isolate([1])
        cluster.tick(1, times: 9)
        #expect(cluster[1].role == .leader)
        cluster.tick(1, times: 12)
        #expect(cluster[1].role == .follower)
    }

    @Test("votes wait for persistence: a vote response is in messagesAfterPersist") // thesis §3.8
    func voteAfterPersist() throws {
        let cluster = TestCluster(voters: [1, 2, 3]) { $0.preVote = false }
        cluster[1].campaign()
        var candidate = cluster[1]
        let candidateReady = candidate.ready()
        #expect(candidateReady.messages.isEmpty)
        #expect(candidateReady.messagesAfterPersist.filter { $0.type == .vote }.count == 2)
        #expect(candidateReady.mustSync)
        let request = try #require(candidateReady.messagesAfterPersist.first { $0.to == 2 })
        try cluster[2].step(request)
        var voter = cluster[2]
        let voterReady = voter.ready()
        #expect(voterReady.hardState?.vote == 1)
        #expect(voterReady.messages.isEmpty)
        #expect(voterReady.messagesAfterPersist.map(\.type) == [.voteResponse])
    }

    // MARK: Figure 7 and figure 8

    static let figure7Followers: [[UInt64]] = [
        [1, 1, 1, 4, 4, 5, 5, 6, 6],            // (a) missing entries
        [1, 1, 1, 4],                           // (b) missing more
        [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],      // (c) an extra uncommitted entry
        [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],   // (d) extra entries of a later term
        [1, 1, 1, 4, 4, 4, 4],                  // (e) missing and conflicting
        [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],      // (f) a different history
    ]

    /// Raft §5.3 figure 7: whatever the follower's log, the leader brings it into line with its own.
    @Test("figure 7: the leader makes every follower log match its own", arguments: figure7Followers)
    func figure7(followerTerms: [UInt64]) throws {
        let leaderTerms: [UInt64] = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6]
        let cluster = TestCluster(voters: [1, 2, 3], bootstrap: false) { $0.preVote = false }
        func load(_ id: NodeID, _ terms: [UInt64]) {
            let storage = cluster.storages[id]!
            storage.append(terms.enumerated().map { Entry(term: Term($1), index: LogIndex(UInt64($0 + 1))) })
            storage.setHardState(HardState(term: Term(8)))
            cluster.start(id)
        }
        load(1, leaderTerms)
        load(2, followerTerms)
        load(3, [])
        cluster.campaign(1)
        #expect(cluster.leaders == [1])
        #expect(cluster.logTerms(2) == cluster.logTerms(1))
        #expect(cluster.logTerms(1) == leaderTerms + [9])
        #expect(cluster.violations.isEmpty)
    }

    /// Raft §5.4.2 figure 8 as a script. With the rule broken, a term-2 entry is "committed" by counting
    /// replicas and later overwritten, and the checker reports it; with the rule kept, nothing is reported.
    @Test("figure 8: only current-term entries commit by counting replicas", arguments: [false, true])
    func figure8(unsafeRule: Bool) throws {
        let cluster = TestCluster(voters: [1, 2, 3, 4, 5]) {
            $0.preVote = false
            $0.checkQuorum = false
            $0.messageBytesMax = 1
            $0.unsafeCommitPreviousTermByCount = unsafeRule
        }
        cluster.campaign(1)
        // (a) Leader 1 replicates entry A (term 2) to node 2 only.
        cluster.dropFilter = { $0.from == 1 && $0.to != 2 }
        try cluster.propose(1, "A")
        cluster.stabilize()
        let indexA = cluster[1].lastIndex
        // (b) 1 crashes; 5 wins with votes from 3 and 4 and appends its no-op (term 3) but replicates nothing.
        cluster.crash(1)
        cluster.dropFilter = { ($0.from == 5 && $0.type == .append) || $0.to == 1 || $0.to == 2 }
        cluster.campaign(5)
        #expect(cluster[5].role == .leader)
        // (c) 5 crashes; 1 restarts and wins; A reaches node 3, but 1's own no-op reaches nobody.
        cluster.crash(5)
        cluster.start(1)
        let storage3 = cluster.storages[3]!
        cluster.dropFilter = { message in
            if message.to == 5 { return true }
            guard message.type == .append, message.entries.contains(where: { $0.term > Term(2) }) else { return false }
            // Node 2 gets the new no-op; node 3 only sees (and rejects) the first probe, so the leader backs
            // off and sends it A alone; node 4 gets nothing new.
            return message.to == 4 || (message.to == 3 && storage3.lastIndex() >= indexA)
        }
        for _ in 0..<3 where cluster[1].role != .leader { cluster.campaign(1) }
        #expect(cluster[1].role == .leader)
        cluster.stabilize()
        let committedA = cluster[1].commitIndex >= indexA
        #expect(committedA == unsafeRule)
        // (d) 1 crashes; 5 restarts and wins with its term-3 entry, overwriting A everywhere.
        cluster.crash(1)
        cluster.start(5)
        cluster.heal()
        cluster.dropFilter = { $0.to == 1 }
        for _ in 0..<3 where cluster[5].role != .leader { cluster.campaign(5) }
        #expect(cluster[5].role == .leader)
        cluster.stabilize()
        #expect(cluster.violations.isEmpty == !unsafeRule, "\(cluster.violations)")
    }

    // MARK: Replication

    @Test("a follower far behind is caught up by a snapshot and then by the log")
    func snapshotCatchUp() throws {
        let cluster = TestCluster(voters: [1, 2, 3])
        cluster.campaign(1)
        cluster.isolate([3])
        for number in 0..<30 { try cluster.propose(1, "v\(number)") }
        cluster.stabilize()
        let leaderStorage = cluster.storages[1]!
        try leaderStorage.createSnapshot(at: cluster.applied[1]!, confState: leaderStorage.confState, data: [])
        cluster.heal()
        cluster.tickAll(times: 3)
        #expect(cluster.snapshotsInstalled[3] == 1)
        try cluster.propose(1, "after")
        cluster.stabilize()
        #expect(cluster.appliedTexts(3) == ["after"])
        #expect(cluster[3].appliedIndex == cluster[1].appliedIndex)
        #expect(cluster.violations.isEmpty)
    }

    @Test("a rejected append backs off a whole term at a time using the conflict hint") // thesis §5.3
    func fastBackOff() throws {
        let cluster = TestCluster(voters: [1, 2, 3], bootstrap: false) { $0.preVote = false }
        let leaderTerms: [UInt64] = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6]
        let followerTerms: [UInt64] = [1, 1, 1, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3]
        for (id, terms) in [(NodeID(1), leaderTerms), (NodeID(2), followerTerms), (NodeID(3), [])] {
            cluster.storages[id]!.append(terms.enumerated().map { Entry(term: Term($1), index: LogIndex(UInt64($0 + 1))) })
            cluster.storages[id]!.setHardState(HardState(term: Term(8)))
            cluster.start(id)
        }
        var rejections = 0
        cluster.dropFilter = { message in
            if message.type == .appendResponse && message.reject && message.from == 2 { rejections += 1 }
            return false
        }
        cluster.campaign(1)
        #expect(cluster.logTerms(2) == cluster.logTerms(1))
        // Without hints a probe walks back one index per round trip (14 here); with them it takes two.
        #expect(rejections <= 3)
    }

    @Test("appends are pipelined within the inflight window") // thesis §10.2.1
    func pipelining() throws {
        let cluster = TestCluster(voters: [1, 2]) { $0.inflightMessagesMax = 3 }
        cluster.campaign(1)
        #expect(cluster[1].status.progress[2]?.state == .replicate)
        for number in 0..<5 { try cluster.propose(1, "p\(number)") }
        let appends = cluster.queue.filter { $0.type == .append && $0.to == 2 && !$0.entries.isEmpty }
        // Three sent without waiting for acknowledgment; the window is full for the rest.
        #expect(appends.count == 3)
        cluster.stabilize()
        #expect(cluster.appliedTexts(2) == ["p0", "p1", "p2", "p3", "p4"])
    }

    // MARK: Proposals

    @Test("proposals and reads without a leader are dropped with a reason")
    func proposalWithoutLeader() {
        let cluster = TestCluster(voters: [1, 2, 3])
        #expect(throws: ProposalDropped.noLeader) { try cluster.propose(1, "x") }
        #expect(throws: ProposalDropped.noLeader) { try cluster[1].readIndex(context: [1]) }
    }

    @Test("a follower forwards a batch of proposals to the leader")
    func forwarding() throws {
        let cluster = TestCluster(voters: [1, 2, 3])
        cluster.campaign(1)
        try cluster.nodes[2]!.propose([Array("a".utf8), Array("b".utf8)])
        cluster.stabilize()
        #expect(cluster.appliedTexts(1) == ["a", "b"])
        #expect(cluster.appliedTexts(3) == ["a", "b"])
    }

    @Test("only one membership change may be pending")
    func oneConfChangeAtATime() throws {
        let cluster = TestCluster(voters: [1, 2, 3])
        cluster.campaign(1)
        try cluster.nodes[1]!.proposeConfChange(.addLearner(4))
        #expect(throws: ProposalDropped.confChangePending) { try cluster.nodes[1]!.proposeConfChange(.addLearner(5)) }
        cluster.stabilize()
        try cluster.nodes[1]!.proposeConfChange(.addLearner(5))
    }

    // MARK: Leader transfer

    @Test("leader transfer to a lagging node catches it up, then hands over with TimeoutNow") // thesis §3.10
    func transferToLaggingNode() throws {
        let cluster = TestCluster(voters: [1, 2, 3])
        cluster.campaign(1)
        cluster.isolate([3])
        for number in 0..<5 { try cluster.propose(1, "v\(number)") }
        cluster.stabilize()
        cluster.heal()
        cluster[1].transferLeader(to: 3)
        #expect(throws: ProposalDropped.leaderTransferInProgress) { try cluster.propose(1, "blocked") }
        cluster.stabilize()
        #expect(cluster.leaders == [3])
        #expect(cluster[3].appliedIndex >= cluster[1].appliedIndex)
        #expect(cluster.violations.isEmpty)
    }

    @Test("a leader transfer to an unreachable node is abandoned after an election timeout")
    func transferAborts() throws {
        let cluster = TestCluster(voters: [1, 2, 3])
        cluster.campaign(1)
        cluster.isolate([3])
        cluster[1].transferLeader(to: 3)
        cluster.stabilize()
        #expect(cluster[1].status.leadTransferee == 3)
        cluster.tick(1, times: 10)
        #expect(cluster[1].status.leadTransferee == .none)
        try cluster.propose(1, "accepted again")
    }

    // MARK: Learners and membership

    @Test("a learner receives the log without voting, then is promoted to voter")
    func learnerPromoted() throws {
        let cluster = TestCluster(voters: [1, 2, 3])
        cluster.campaign(1)
        cluster.start(4)
        try cluster.nodes[1]!.proposeConfChange(.addLearner(4))
        cluster.stabilize()
        try cluster.propose(1, "x")
        cluster.stabilize()
        #expect(cluster.appliedTexts(4) == ["x"])
        #expect(cluster[4].confState.learners == [4])
        // A learner never campaigns.
        cluster.tick(4, times: 50)
        #expect(cluster[4].role == .follower)
        try cluster.nodes[1]!.proposeConfChange(.promote(4))
        cluster.stabilize()
        #expect(cluster[1].confState.voters == [1, 2, 3, 4])
        // Now a voter, it can lead.
        cluster[1].transferLeader(to: 4)
        cluster.stabilize()
        #expect(cluster.leaders == [4])
    }

    @Test("a removed leader steps down once its removal is applied")
    func removedLeaderStepsDown() throws {
        let cluster = TestCluster(voters: [1, 2, 3])
        cluster.campaign(1)
        try cluster.nodes[1]!.proposeConfChange(.remove(1))
        cluster.stabilize()
        #expect(cluster[1].role == .follower)
        #expect(cluster[2].confState.voters == [2, 3])
        cluster.crash(1)
        cluster.tickAll(times: 40)
        #expect(cluster.leaders.count == 1)
    }

    // MARK: ReadIndex

    @Test("ReadIndex: many reads share one heartbeat round; a follower read is answered by the leader") // §6.4
    func readIndex() throws {
        let cluster = TestCluster(voters: [1, 2, 3])
        cluster.campaign(1)
        try cluster.propose(1, "x")
        cluster.stabilize()
        for number in 0..<5 { try cluster[1].readIndex(context: Array("r\(number)".utf8)) }
        cluster.processReady(1)
        let heartbeats = cluster.queue.filter { $0.type == .heartbeat }
        #expect(heartbeats.count == 2)
        cluster.stabilize()
        #expect(cluster.readStates[1]?.count == 5)
        #expect(cluster.readStates[1]?.allSatisfy { $0.index == cluster[1].commitIndex } == true)
        try cluster[2].readIndex(context: Array("follower".utf8))
        cluster.stabilize()
        #expect(cluster.readStates[2]?.map(\.requestContext) == [Array("follower".utf8)])
    }

    @Test("a new leader serves no read until it commits an entry of its term")
    func readIndexWaitsForCurrentTermCommit() throws {
        let cluster = TestCluster(voters: [1, 2, 3])
        cluster.dropFilter = { $0.type == .append || $0.type == .appendResponse }
        cluster.campaign(1)
        #expect(cluster[1].role == .leader)
        try cluster[1].readIndex(context: [1])
        cluster.stabilize()
        #expect(cluster.readStates[1, default: []].isEmpty)
        cluster.heal()
        cluster.tickAll(times: 2)
        #expect(cluster.readStates[1]?.count == 1)
        #expect(cluster.readStates[1]?.first?.index == cluster[1].commitIndex)
    }

    // MARK: Restart

    @Test("a node restarted from its persisted state rejoins and keeps its log")
    func restart() throws {
        let cluster = TestCluster(voters: [1, 2, 3])
        cluster.campaign(1)
        try cluster.propose(1, "a")
        cluster.stabilize()
        let lastIndex = cluster[2].lastIndex
        let term = cluster[2].term
        cluster.crash(2)
        cluster.start(2)
        #expect(cluster[2].lastIndex == lastIndex)
        #expect(cluster[2].term == term)
        try cluster.propose(1, "b")
        cluster.stabilize()
        #expect(cluster.appliedTexts(2) == ["a", "b"])
    }
}
