// A deterministic cluster simulator: N RawNodes on one thread, a virtual network (delay, drop, duplicate,
// reorder, symmetric and one-way partitions), a virtual disk (a crash loses everything not yet persisted),
// tick-based time, and random client traffic (proposals, reads, leader transfers, membership changes).
// Every decision comes from one SplitMix64 seeded by the scenario seed, so a seed replays exactly.

@testable import Raft

/// The knobs of one scenario, all derived from its seed.
struct ScenarioOptions {
    var voters = 3
    var learners = 0
    var chaosTicks = 150
    var livenessTicks = 400
    var dropRate = 0.0
    var duplicateRate = 0.0
    /// Maximum delivery delay in rounds (there are `roundsPerTick` rounds per tick).
    var delayRoundsMax = 2
    var crashRate = 0.0
    var partitionRate = 0.0
    var proposeRate = 0.3
    var readRate = 0.1
    var transferRate = 0.0
    var membershipRate = 0.0
    /// Entries kept past a snapshot before compaction.
    var compactThreshold = 20
    var unsafeCommitPreviousTermByCount = false
    var unsafeGrantVotesWithoutLogCheck = false
    /// Chance of crashing a leader right after it is elected or after its commit index moves: the moments
    /// when a leader's fresh entries exist on too few nodes (the figure 8 interleaving).
    var leaderCrashRate = 0.0
    /// Bytes per append message; 1 means one entry per message.
    var messageBytesMax = 512

    static func random(using random: inout SplitMix64) -> ScenarioOptions {
        var options = ScenarioOptions()
        options.voters = Bool.random(using: &random) ? 3 : 5
        options.learners = Int.random(in: 0...1, using: &random)
        options.chaosTicks = Int.random(in: 60...160, using: &random)
        options.dropRate = [0.0, 0.02, 0.1].randomElement(using: &random)!
        options.duplicateRate = [0.0, 0.02, 0.05].randomElement(using: &random)!
        options.delayRoundsMax = Int.random(in: 1...4, using: &random)
        options.crashRate = [0.0, 0.005, 0.02].randomElement(using: &random)!
        options.partitionRate = [0.0, 0.01, 0.03].randomElement(using: &random)!
        options.proposeRate = Double.random(in: 0.1...0.6, using: &random)
        options.readRate = Double.random(in: 0.0...0.3, using: &random)
        options.transferRate = [0.0, 0.01, 0.03].randomElement(using: &random)!
        options.membershipRate = [0.0, 0.01, 0.03].randomElement(using: &random)!
        options.compactThreshold = Int.random(in: 3...40, using: &random)
        options.leaderCrashRate = [0.0, 0.0, 0.05].randomElement(using: &random)!
        options.messageBytesMax = [512, 512, 1].randomElement(using: &random)!
        return options
    }
}

/// One member: its disk survives crashes, its RawNode does not.
final class SimulatedNode {
    let id: NodeID
    /// The persisted log, hard state and snapshot.
    let storage = MemoryLogStorage()
    /// Persisted with each apply round (the Applier's single batch): applied index and membership.
    var persistedApplied: LogIndex = .zero
    /// The running node, nil while crashed.
    var node: RawNode?
    /// Ticks until a crashed node restarts.
    var downTicks = 0
    /// Removed from the cluster: never restarts, takes no traffic.
    var removed = false
    /// Incarnation count, mixed into the election seed so each restart jitters differently.
    var incarnation: UInt64 = 0

    init(id: NodeID) { self.id = id }
}

struct InFlight {
    var deliverAtRound: Int
    var message: Message
}

/// What a run exercised, so tests can prove the scenarios reach the interesting paths.
struct SimulationStats {
    var leadersElected = 0
    var snapshotsInstalled = 0
    var confChangesApplied = 0
    var crashes = 0
    var entriesApplied = 0
    var timeoutNowDelivered = 0

    static func + (lhs: SimulationStats, rhs: SimulationStats) -> SimulationStats {
        SimulationStats(
            leadersElected: lhs.leadersElected + rhs.leadersElected,
            snapshotsInstalled: lhs.snapshotsInstalled + rhs.snapshotsInstalled,
            confChangesApplied: lhs.confChangesApplied + rhs.confChangesApplied,
            crashes: lhs.crashes + rhs.crashes,
            entriesApplied: lhs.entriesApplied + rhs.entriesApplied,
            timeoutNowDelivered: lhs.timeoutNowDelivered + rhs.timeoutNowDelivered)
    }
}

final class Simulator {
    var stats = SimulationStats()
    let seed: UInt64
    let options: ScenarioOptions
    var random: SplitMix64
    var nodes: [NodeID: SimulatedNode] = [:]
    var nextNodeID: UInt64
    var network: [InFlight] = []
    /// Directed links that drop everything: (from, to).
    var blocked: Set<[NodeID]> = []
    /// Nodes whose inbound messages are held back (not dropped) and then released in a burst (swizzle-clog).
    var clogged: Set<NodeID> = []
    var round = 0
    let roundsPerTick = 3
    var checker = InvariantChecker()
    var proposalCounter = 0
    var readCounter = 0
    var healed = false
    /// A step log for replay diagnostics (last few events).
    var trace: [String] = []
    let electionTicks = 10

    init(seed: UInt64, options: ScenarioOptions? = nil) {
        self.seed = seed
        var random = SplitMix64(seed: seed)
        self.options = options ?? ScenarioOptions.random(using: &random)
        self.random = random
        let total = self.options.voters + self.options.learners
        nextNodeID = UInt64(total + 1)
        let voters = (1...self.options.voters).map { NodeID(UInt64($0)) }
        let learners = (0..<self.options.learners).map { NodeID(UInt64(self.options.voters + 1 + $0)) }
        for id in voters + learners {
            let simulated = SimulatedNode(id: id)
            simulated.persistedApplied = simulated.storage.bootstrap(ConfState(voters: voters, learners: learners))
            nodes[id] = simulated
            start(simulated)
        }
    }

    var sortedIDs: [NodeID] { nodes.keys.sorted() }

    func config(for simulated: SimulatedNode) -> Config {
        var config = Config(id: simulated.id, seed: seed &+ simulated.incarnation &* 7919)
        config.electionTicks = electionTicks
        config.heartbeatTicks = 1
        config.inflightMessagesMax = 4
        config.inflightBytesMax = 4096
        config.messageBytesMax = options.messageBytesMax
        config.applied = simulated.persistedApplied
        config.unsafeCommitPreviousTermByCount = options.unsafeCommitPreviousTermByCount
        config.unsafeGrantVotesWithoutLogCheck = options.unsafeGrantVotesWithoutLogCheck
        return config
    }

    func start(_ simulated: SimulatedNode) {
        simulated.incarnation += 1
        simulated.node = RawNode(config: config(for: simulated), storage: simulated.storage)
        checker.nodeRestarted(simulated.id)
    }

    /// Print every event as it happens (set by the replay test through `RAFT_TRACE`).
    var verbose = false

    func note(_ event: @autoclosure () -> String) {
        if verbose { print("t\(round / roundsPerTick).\(round % roundsPerTick) " + event()) }
        trace.append("t\(round / roundsPerTick) " + event())
        if trace.count > 60 { trace.removeFirst(trace.count - 60) }
    }

    // MARK: Running

    /// Runs the scenario: chaos, then healing and a liveness check. Throws on the first violation.
    func run() throws(InvariantViolation) {
        for _ in 0..<options.chaosTicks {
            try randomActions()
            try runTick()
        }
        try heal()
        try checkLiveness()
    }

    func runTick() throws(InvariantViolation) {
        for _ in 0..<roundsPerTick {
            try deliverDueMessages()
            round += 1
        }
        for id in sortedIDs {
            guard let simulated = nodes[id], !simulated.removed else { continue }
            if simulated.node == nil {
                simulated.downTicks -= 1
                if simulated.downTicks <= 0 {
                    note("restart \(id)")
                    start(simulated)
                }
                continue
            }
            simulated.node!.tick()
            try handleReady(simulated)
        }
    }

    func chance(_ probability: Double) -> Bool {
        probability > 0 && Double.random(in: 0..<1, using: &random) < probability
    }

    // MARK: Network

    func send(_ message: Message) {
        let delay = Int.random(in: 1...options.delayRoundsMax, using: &random)
        network.append(InFlight(deliverAtRound: round + delay, message: message))
    }

    func deliverDueMessages() throws(InvariantViolation) {
        var due: [InFlight] = []
        var later: [InFlight] = []
        for inFlight in network {
            if inFlight.deliverAtRound <= round && !clogged.contains(inFlight.message.to) {
                due.append(inFlight)
            } else {
                later.append(inFlight)
            }
        }
        network = later
        // Reordering: due messages arrive in a random order.
        due.shuffle(using: &random)
        for inFlight in due {
            try deliver(inFlight.message)
        }
    }

    func deliver(_ message: Message) throws(InvariantViolation) {
        let isDropped = !healed && chance(options.dropRate)
        let isBlocked = blocked.contains([message.from, message.to])
        guard let target = nodes[message.to], !target.removed, target.node != nil, !isDropped, !isBlocked else {
            reportLoss(of: message)
            return
        }
        if !healed && chance(options.duplicateRate) {
            network.append(InFlight(deliverAtRound: round + 1, message: message))
        }
        if verbose {
            note("deliver \(message.type) \(message.from)->\(message.to) term \(message.term) index \(message.index) "
                 + "logTerm \(message.logTerm) entries \(message.entries.map { "\($0.index)/\($0.term)" }) "
                 + "commit \(message.commit) reject \(message.reject) hint \(message.rejectHint)"
                 + (message.snapshot.map { " snapshot \($0.metadata)" } ?? ""))
        }
        if message.type == .timeoutNow { stats.timeoutNowDelivered += 1 }
        do {
            try target.node!.step(message)
        } catch {
            // Responses from removed peers are expected after membership changes.
            return
        }
        if message.type == .snapshot, let sender = nodes[message.from], sender.node != nil {
            sender.node!.reportSnapshot(to: message.to, failed: false)
            try handleReady(sender)
        }
        try handleReady(target)
    }

    /// What a transport would tell the sender about a lost message.
    func reportLoss(of message: Message) {
        guard let sender = nodes[message.from], sender.node != nil else { return }
        if message.type == .snapshot {
            sender.node!.reportSnapshot(to: message.to, failed: true)
        } else if message.type == .append && chance(0.5) {
            sender.node!.reportUnreachable(message.to)
        }
    }

    // MARK: Ready handling (the NodeLoop's job, with crash points)

    func handleReady(_ simulated: SimulatedNode) throws(InvariantViolation) {
        while let node = simulated.node, node.hasReady {
            let ready = simulated.node!.ready()
            try checker.checkAppended(ready.entries, node: simulated.node!)
            for message in ready.messages { send(message) }
            if crashPoint(simulated, "before persist") { return }
            persist(ready, on: simulated)
            for message in ready.messagesAfterPersist { send(message) }
            if crashPoint(simulated, "before apply") { return }
            try apply(ready, on: simulated)
            if ready.softState?.role == .leader { stats.leadersElected += 1 }
            if verbose, let soft = ready.softState {
                note("node \(simulated.id) now \(soft.role) leader \(soft.leader) term \(simulated.node!.term)")
            }
            if verbose, let hardState = ready.hardState {
                note("node \(simulated.id) persists \(hardState) entries \(ready.entries.map { "\($0.index)/\($0.term)" })"
                     + " applies \(ready.committedEntries.map { "\($0.index)" })")
            }
            simulated.node!.advance(ready)
            if simulated.removed {
                simulated.node = nil
                return
            }
            if !healed, simulated.node!.role == .leader, ready.softState != nil || ready.hardState != nil,
               chance(options.leaderCrashRate) {
                note("crash leader \(simulated.id) after \(ready.softState != nil ? "election" : "commit")")
                stats.crashes += 1
                simulated.node = nil
                simulated.downTicks = Int.random(in: 1...30, using: &random)
                return
            }
            compactIfNeeded(simulated)
            try checker.checkNode(simulated.node!)
        }
        if let node = simulated.node { try checker.checkNode(node) }
        try checkNoElectableNodeLacksCommitted()
    }

    /// Leader completeness, checked before any election happens: no voter whose persisted log lacks the
    /// highest applied (so committed) entry may be at least as up to date (Raft §5.4.1) as a quorum of voters'
    /// persisted logs, or it could win a future election and overwrite a committed entry. This fires the moment
    /// an unsafe commit happens (figure 8), instead of waiting for the overwrite.
    func checkNoElectableNodeLacksCommitted() throws(InvariantViolation) {
        guard let (committedIndex, committedTerm) = checker.highestApplied else { return }
        for id in sortedIDs {
            guard let candidate = nodes[id], !candidate.removed else { continue }
            let voters = (candidate.node?.confState ?? candidate.storage.confState).voters
            guard voters.contains(id) else { continue }
            let storage = candidate.storage
            // Compacted past it: the candidate holds it in its snapshot.
            if committedIndex < storage.firstIndex() - 1 { continue }
            if committedIndex <= storage.lastIndex(), (try? storage.term(at: committedIndex)) == committedTerm { continue }
            let last = lastEntry(of: storage)
            var wouldGrant = 0
            for voter in voters {
                guard let other = nodes[voter], !other.removed else { continue }
                let otherLast = lastEntry(of: other.storage)
                if last.term > otherLast.term || (last.term == otherLast.term && last.index >= otherLast.index) {
                    wouldGrant += 1
                }
            }
            if wouldGrant >= voters.count / 2 + 1 {
                throw InvariantViolation(description:
                    "leader completeness: node \(id) lacks committed entry \(committedIndex) (term \(committedTerm)) "
                    + "but its log is as up to date as \(wouldGrant) of \(voters.count) voters")
            }
        }
    }

    func lastEntry(of storage: MemoryLogStorage) -> (index: LogIndex, term: Term) {
        let index = storage.lastIndex()
        // The last index is always readable (the snapshot's, if the log is empty).
        return (index, (try? storage.term(at: index)) ?? .zero)
    }

    func crashPoint(_ simulated: SimulatedNode, _ point: String) -> Bool {
        guard !healed, chance(options.crashRate / 4) else { return false }
        note("crash \(simulated.id) \(point)")
        stats.crashes += 1
        simulated.node = nil
        simulated.downTicks = Int.random(in: 1...30, using: &random)
        return true
    }

    func persist(_ ready: Ready, on simulated: SimulatedNode) {
        if let snapshot = ready.snapshot {
            // Installing a snapshot replaces the state machine: image, membership and applied index go to disk
            // together, or a restart would resume from an applied index the image no longer matches.
            simulated.storage.applySnapshot(snapshot)
            simulated.persistedApplied = snapshot.metadata.index
        }
        simulated.storage.append(ready.entries)
        if let hardState = ready.hardState { simulated.storage.setHardState(hardState) }
    }

    func apply(_ ready: Ready, on simulated: SimulatedNode) throws(InvariantViolation) {
        let id = simulated.id
        if let snapshot = ready.snapshot {
            stats.snapshotsInstalled += 1
            try checker.checkSnapshot(snapshot.metadata, node: id)
            simulated.persistedApplied = snapshot.metadata.index
            simulated.storage.confState = snapshot.metadata.confState
        }
        for entry in ready.committedEntries {
            // Applied prefixes have no holes: each entry follows the last applied one (or the snapshot).
            if entry.index != simulated.persistedApplied + 1 {
                throw InvariantViolation(description:
                    "node \(id) applies \(entry.index) after \(simulated.persistedApplied): a gap or a repeat")
            }
            try checker.checkApplied(entry, node: id, nodeTerm: simulated.node!.term)
            stats.entriesApplied += 1
            if entry.type == .confChange {
                stats.confChangesApplied += 1
                guard let change = try? decodeConfChange(entry.data) else {
                    throw InvariantViolation(description: "undecodable conf change at \(entry.index)")
                }
                let confState = simulated.node!.applyConfChange(change)
                simulated.storage.confState = confState
                noteMembership(change, confState: confState, appliedBy: id)
            }
            simulated.persistedApplied = entry.index
        }
        for state in ready.readStates {
            try checker.checkReadState(state, node: id)
        }
    }

    func noteMembership(_ change: ConfChange, confState: ConfState, appliedBy id: NodeID) {
        guard case .remove(let removed) = change, let target = nodes[removed], !target.removed else { return }
        // A removed member shuts down, as etcd's does, once the removal is applied anywhere.
        if !confState.voters.contains(removed) && !confState.learners.contains(removed) {
            note("removed \(removed) (applied by \(id))")
            target.removed = true
            // The node applying its own removal stops once this Ready is done (see handleReady).
            if removed != id { target.node = nil }
        }
    }

    func compactIfNeeded(_ simulated: SimulatedNode) {
        let storage = simulated.storage
        let applied = simulated.persistedApplied
        guard applied >= storage.firstIndex(), applied.distance(from: storage.firstIndex()) >= options.compactThreshold
        else { return }
        // Compaction failing here would be a simulator bug (applied entries are persisted).
        do {
            try storage.createSnapshot(at: applied, confState: storage.confState, data: [])
        } catch {
            preconditionFailure("compaction at \(applied) failed: \(error)")
        }
    }

    // MARK: Client traffic and faults

    var liveNodes: [SimulatedNode] {
        sortedIDs.compactMap { nodes[$0] }.filter { !$0.removed && $0.node != nil }
    }

    var leaderNode: SimulatedNode? {
        // The leader with the highest term (a stale one may linger until it hears of the new term).
        liveNodes.filter { $0.node!.role == .leader }.max { $0.node!.term < $1.node!.term }
    }

    func randomActions() throws(InvariantViolation) {
        // Any action may crash a node (crash points in handleReady), so pick targets afresh each time.
        if chance(options.proposeRate), let target = liveNodes.randomElement(using: &random) {
            try propose(on: target, count: Int.random(in: 1...3, using: &random))
        }
        if chance(options.readRate), let target = liveNodes.randomElement(using: &random) {
            readCounter += 1
            let context = Array("r\(readCounter)".utf8)
            checker.recordReadRequest(context: context)
            do {
                try target.node!.readIndex(context: context)
            } catch {
                // No leader known: the read is refused, which is an expected outcome.
            }
            try handleReady(target)
        }
        if chance(options.transferRate), let leader = leaderNode {
            let voters = leader.node!.confState.voters
            let target = voters.randomElement(using: &random)!
            note("transfer \(leader.id) -> \(target)")
            leader.node!.transferLeader(to: target)
            try handleReady(leader)
        }
        if chance(options.membershipRate) { try changeMembership() }
        if chance(options.crashRate), let target = liveNodes.randomElement(using: &random) {
            note("crash \(target.id)")
            stats.crashes += 1
            target.node = nil
            target.downTicks = Int.random(in: 1...40, using: &random)
        }
        if chance(options.partitionRate) { makePartition() }
        if chance(options.partitionRate), let target = liveNodes.randomElement(using: &random) {
            note("clog \(target.id)")
            clogged.insert(target.id)
        }
        if !clogged.isEmpty && chance(0.1) {
            note("unclog \(clogged.sorted())")
            clogged = []
        }
        if chance(options.partitionRate * 2) {
            note("heal partitions")
            blocked = []
        }
    }

    func propose(on target: SimulatedNode, count: Int) throws(InvariantViolation) {
        var batch: [[UInt8]] = []
        for _ in 0..<count {
            proposalCounter += 1
            batch.append(Array("p\(proposalCounter)".utf8))
        }
        do {
            try target.node!.propose(batch)
        } catch {
            // Dropped proposals are an expected outcome (no leader, transfer in progress).
        }
        try handleReady(target)
    }

    func changeMembership() throws(InvariantViolation) {
        guard let leader = leaderNode else { return }
        let confState = leader.node!.confState
        let change: ConfChange
        switch Int.random(in: 0..<4, using: &random) {
        case 0 where confState.voters.count + confState.learners.count < 7:
            let id = NodeID(nextNodeID)
            nextNodeID += 1
            let simulated = SimulatedNode(id: id)
            nodes[id] = simulated
            start(simulated)
            change = Bool.random(using: &random) ? .addLearner(id) : .addVoter(id)
        case 1 where !confState.learners.isEmpty:
            change = .promote(confState.learners.randomElement(using: &random)!)
        case 2 where confState.voters.count > 3:
            change = .remove(confState.voters.randomElement(using: &random)!)
        case 3 where !confState.learners.isEmpty:
            change = .remove(confState.learners.randomElement(using: &random)!)
        default:
            return
        }
        note("propose \(change) on \(leader.id)")
        do {
            try leader.node!.proposeConfChange(change)
        } catch {
            // confChangePending and friends: fine, try again later.
        }
        try handleReady(leader)
    }

    func makePartition() {
        let ids = sortedIDs.filter { !nodes[$0]!.removed }
        guard ids.count > 1 else { return }
        blocked = []
        switch Int.random(in: 0..<3, using: &random) {
        case 0:
            // Isolate one node both ways.
            let isolated = ids.randomElement(using: &random)!
            for other in ids where other != isolated {
                blocked.insert([isolated, other])
                blocked.insert([other, isolated])
            }
            note("isolate \(isolated)")
        case 1:
            // Split into two random groups.
            let shuffled = ids.shuffled(using: &random)
            let cut = Int.random(in: 1..<shuffled.count, using: &random)
            for a in shuffled[..<cut] {
                for b in shuffled[cut...] {
                    blocked.insert([a, b])
                    blocked.insert([b, a])
                }
            }
            note("split \(shuffled[..<cut]) | \(shuffled[cut...])")
        default:
            // One-way: a node can send but not receive (asymmetric).
            let deaf = ids.randomElement(using: &random)!
            for other in ids where other != deaf { blocked.insert([other, deaf]) }
            note("deafen \(deaf)")
        }
    }

    // MARK: Healing and liveness

    func heal() throws(InvariantViolation) {
        healed = true
        blocked = []
        clogged = []
        note("heal")
        for id in sortedIDs {
            guard let simulated = nodes[id], !simulated.removed, simulated.node == nil else { continue }
            start(simulated)
        }
    }

    /// After healing, a leader must emerge and a new proposal must be applied by every member (thesis §3.6.2
    /// liveness under a stable network).
    func checkLiveness() throws(InvariantViolation) {
        let marker = Array("live-\(seed)".utf8)
        var proposed = false
        for tick in 0..<options.livenessTicks {
            if !proposed || tick % (electionTicks * 3) == 0, let leader = leaderNode, leader.node!.leader == leader.id {
                // Re-propose now and then: the first attempt may be lost with a leader that steps down.
                if !proposed || !isMarkerApplied(marker, anywhere: true) {
                    do {
                        try leader.node!.propose(marker)
                        proposed = true
                    } catch {
                        // Not accepted (e.g. transfer in progress): try again next tick.
                    }
                    try handleReady(leader)
                }
            }
            try runTick()
            if proposed, let leader = leaderNode, isMarkerApplied(marker, by: members(of: leader)) { return }
        }
        let leaderDescription = leaderNode.map { "leader \($0.id) term \($0.node!.term)" } ?? "no leader"
        throw InvariantViolation(description:
            "liveness: after healing, the marker was not applied by all members within \(options.livenessTicks) "
            + "ticks (\(leaderDescription), proposed: \(proposed))")
    }

    func members(of leader: SimulatedNode) -> [SimulatedNode] {
        let confState = leader.node!.confState
        return (confState.voters + confState.learners).compactMap { nodes[$0] }
    }

    /// Marker applied: the node's applied index has passed an index whose applied entry is the marker.
    func isMarkerApplied(_ marker: [UInt8], anywhere: Bool) -> Bool {
        checker.appliedRecord.values.contains { $0.data == marker }
    }

    func isMarkerApplied(_ marker: [UInt8], by members: [SimulatedNode]) -> Bool {
        guard let index = checker.appliedRecord.first(where: { $0.value.data == marker })?.key else { return false }
        return members.allSatisfy { ($0.node?.appliedIndex ?? .zero) >= index }
    }
}
