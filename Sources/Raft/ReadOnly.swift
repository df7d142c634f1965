// Pending ReadIndex requests on the leader (Raft thesis §6.4). Requests queue in arrival order; one heartbeat
// round carrying the newest request's context confirms leadership for it and for every older request.

struct ReadIndexRequest {
    /// The leader's commit index when the request arrived.
    var index: LogIndex
    /// Who asked: this node, or a follower waiting for a `.readIndexResponse`.
    var from: NodeID
    /// The caller's tag.
    var context: [UInt8]
    /// Members that acknowledged a heartbeat carrying this context (the leader included).
    var acks: Set<NodeID>
}

struct ReadOnly {
    /// Requests by context.
    private var pending: [[UInt8]: ReadIndexRequest] = [:]
    /// Contexts in arrival order.
    /// Invariant: Set(queue) == Set(pending.keys).
    private var queue: [[UInt8]] = []
    /// The newest context not yet broadcast in a heartbeat; batching sends one round for many reads.
    var unsentContext: [UInt8]?

    var isEmpty: Bool { queue.isEmpty }

    mutating func add(index: LogIndex, from: NodeID, context: [UInt8], leaderID: NodeID) {
        // Duplicate contexts are the caller's bug; keep the first request.
        if pending[context] != nil { return }
        pending[context] = ReadIndexRequest(index: index, from: from, context: context, acks: [leaderID])
        queue.append(context)
        unsentContext = context
    }

    /// Records a heartbeat acknowledgment; returns how many members acked this context.
    mutating func recordAck(from id: NodeID, context: [UInt8]) -> Set<NodeID>? {
        guard pending[context] != nil else { return nil }
        pending[context]?.acks.insert(id)
        return pending[context]?.acks
    }

    /// Releases the request for `context` and every request queued before it.
    mutating func advance(through context: [UInt8]) -> [ReadIndexRequest] {
        guard let position = queue.firstIndex(of: context) else { return [] }
        let released = queue[...position].compactMap { pending.removeValue(forKey: $0) }
        queue.removeFirst(position + 1)
        if queue.isEmpty { unsentContext = nil }
        return released
    }

    mutating func reset() {
        pending = [:]
        queue = []
        unsentContext = nil
    }
}
