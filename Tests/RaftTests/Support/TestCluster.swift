// A hand-driven cluster for table tests: messages sit in a queue until the test delivers them, a filter can
// drop any of them, and every Ready goes through the same invariant checker as the simulator.

@testable import Raft

final class TestCluster {
    /// Persisted state per node; survives `crash`.
    var storages: [NodeID: MemoryLogStorage] = [:]
    /// Running nodes; absent while crashed.
    var nodes: [NodeID: RawNode] = [:]
    /// Applied index persisted per node (with the state machine).
    var applied: [NodeID: LogIndex] = [:]
    /// Entries applied per node, in order (after bootstrap).
    var appliedEntries: [NodeID: [Entry]] = [:]
    /// Read states received per node.
    var readStates: [NodeID: [ReadState]] = [:]
    /// Snapshots installed per node.
    var snapshotsInstalled: [NodeID: Int] = [:]
    /// Messages waiting for delivery.
    var queue: [Message] = []
    /// Drops a message when it returns true.
    var dropFilter: (Message) -> Bool = { _ in false }
    var checker = InvariantChecker()
    /// Violations found by the checker (tests assert on them).
    var violations: [String] = []
    /// Config tweaks applied to every node at (re)start.
    var configure: (inout Config) -> Void

    init(voters: [NodeID], learners: [NodeID] = [], bootstrap: Bool = true,
         configure: @escaping (inout Config) -> Void = { _ in }) {
        self.configure = configure
        for id in voters + learners {
            let storage = MemoryLogStorage()
            if bootstrap {
                applied[id] = storage.bootstrap(ConfState(voters: voters, learners: learners))
            } else {
                storage.confState = ConfState(voters: voters, learners: learners)
            }
            storages[id] = storage
        }
        for id in voters + learners { start(id) }
    }

    func config(for id: NodeID) -> Config {
        var config = Config(id: id, seed: id.rawValue)
        config.electionTicks = 10
        config.heartbeatTicks = 1
        config.applied = applied[id] ?? .zero
        configure(&config)
        return config
    }

    func start(_ id: NodeID) {
        if storages[id] == nil { storages[id] = MemoryLogStorage() }
        nodes[id] = RawNode(config: config(for: id), storage: storages[id]!)
        checker.nodeRestarted(id)
    }

    /// Loses everything not persisted, and the messages in flight to the node.
    func crash(_ id: NodeID) {
        nodes[id] = nil
        queue.removeAll { $0.to == id }
    }

    subscript(id: NodeID) -> RawNode {
        get { nodes[id]! }
        set { nodes[id] = newValue }
    }

    func processReady(_ id: NodeID) {
        while var node = nodes[id], node.hasReady {
            let ready = node.ready()
            let storage = storages[id]!
            do {
                try checker.checkAppended(ready.entries, node: node)
            } catch {
                violations.append(error.description)
            }
            if let snapshot = ready.snapshot {
                storage.applySnapshot(snapshot)
                applied[id] = snapshot.metadata.index
                snapshotsInstalled[id, default: 0] += 1
            }
            storage.append(ready.entries)
            if let hardState = ready.hardState { storage.setHardState(hardState) }
            queue.append(contentsOf: ready.messages)
            queue.append(contentsOf: ready.messagesAfterPersist)
            for entry in ready.committedEntries {
                do {
                    try checker.checkApplied(entry, node: id, nodeTerm: node.term)
                } catch {
                    violations.append(error.description)
                }
                if entry.type == .confChange, let change = try? decodeConfChange(entry.data) {
                    storage.confState = node.applyConfChange(change)
                }
                appliedEntries[id, default: []].append(entry)
                applied[id] = entry.index
            }
            readStates[id, default: []].append(contentsOf: ready.readStates)
            node.advance(ready)
            nodes[id] = node
            do {
                try checker.checkNode(node)
            } catch {
                violations.append(error.description)
            }
        }
    }

    func processAllReadies() {
        for id in nodes.keys.sorted() { processReady(id) }
    }

    /// Delivers queued messages (and whatever they cause) until the cluster is quiet.
    func stabilize(maxRounds: Int = 1_000) {
        for _ in 0..<maxRounds {
            processAllReadies()
            if queue.isEmpty { return }
            let batch = queue
            queue = []
            for message in batch { deliver(message) }
        }
    }

    func deliver(_ message: Message) {
        guard nodes[message.to] != nil, !dropFilter(message) else {
            if message.type == .snapshot, nodes[message.from] != nil {
                nodes[message.from]!.reportSnapshot(to: message.to, failed: true)
            }
            return
        }
        // Errors here are stale responses from removed peers; the table tests do not depend on them.
        try? nodes[message.to]!.step(message)
        if message.type == .snapshot, nodes[message.from] != nil {
            nodes[message.from]!.reportSnapshot(to: message.to, failed: false)
        }
        processReady(message.to)
    }

    func tick(_ id: NodeID, times: Int = 1) {
        for _ in 0..<times {
            nodes[id]?.tick()
            processReady(id)
        }
    }

    /// Ticks every running node and delivers everything, `times` times.
    func tickAll(times: Int = 1) {
        for _ in 0..<times {
            for id in nodes.keys.sorted() { tick(id) }
            stabilize()
        }
    }

    func campaign(_ id: NodeID) {
        nodes[id]!.campaign()
        stabilize()
    }

    /// Drops every message to or from any of `ids` (both directions).
    func isolate(_ ids: Set<NodeID>) {
        dropFilter = { ids.contains($0.from) != ids.contains($0.to) }
    }

    func heal() { dropFilter = { _ in false } }

    func propose(_ id: NodeID, _ text: String) throws(ProposalDropped) {
        try nodes[id]!.propose(Array(text.utf8))
        processReady(id)
    }

    func appliedTexts(_ id: NodeID) -> [String] {
        (appliedEntries[id] ?? []).filter { $0.type == .normal && !$0.data.isEmpty }.map { String(decoding: $0.data, as: UTF8.self) }
    }

    func logTerms(_ id: NodeID) -> [UInt64] {
        let node = nodes[id]!
        let log = node.raft.raftLog
        var terms: [UInt64] = []
        var index = log.firstIndex
        while index <= log.lastIndex {
            terms.append((try? log.term(at: index))?.rawValue ?? 0)
            index = index + 1
        }
        return terms
    }

    var leaders: [NodeID] { nodes.keys.sorted().filter { nodes[$0]!.role == .leader } }
}
