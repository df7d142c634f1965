// Node configuration and the injected random generator. The core reads no global randomness:
// election jitter comes from `seed`, so a simulation replays exactly.

/// Settings of one Raft node.
package struct Config: Sendable {
    /// This node's ID; must not be `.none`.
    package var id: NodeID
    /// Ticks without hearing from a leader before campaigning; randomized in `[electionTicks, 2*electionTicks)`.
    package var electionTicks: Int = 10
    /// Ticks between leader heartbeats. Must be below `electionTicks`.
    package var heartbeatTicks: Int = 1
    /// Run a pre-vote round before bumping the term (thesis §9.6): a rejoining node does not disrupt the leader.
    package var preVote: Bool = true
    /// A leader that has not heard from a quorum within an election timeout steps down (thesis §6.2).
    package var checkQuorum: Bool = true
    /// Pipelined appends in flight per follower.
    package var inflightMessagesMax: Int = 256
    /// Bytes in flight per follower.
    package var inflightBytesMax: Int = 32 << 20
    /// Bytes of entries per append message (at least one entry is always sent).
    package var messageBytesMax: Int = 1 << 20
    /// Bytes of committed entries handed out per `Ready`.
    package var committedBytesMax: Int = 64 << 20
    /// The last index the application applied before a restart; committed entries after it are redelivered.
    package var applied: LogIndex = .zero
    /// Seed for election jitter.
    package var seed: UInt64 = 0
    /// TEST ONLY. Breaks Raft §5.4.2 by committing older-term entries once a quorum stores them, so the
    /// simulator can show that it catches the figure 8 bug. Never set outside tests.
    package var unsafeCommitPreviousTermByCount: Bool = false
    /// TEST ONLY. Breaks the election restriction (Raft §5.4.1) by granting votes without comparing logs,
    /// so the simulator can show that it catches a leader missing committed entries. Never set outside tests.
    package var unsafeGrantVotesWithoutLogCheck: Bool = false

    package init(id: NodeID, seed: UInt64 = 0) {
        self.id = id
        self.seed = seed
    }

    func validate() {
        precondition(id != .none, "config id must not be none")
        precondition(heartbeatTicks > 0 && electionTicks > heartbeatTicks, "need 0 < heartbeatTicks < electionTicks")
        precondition(inflightMessagesMax > 0 && inflightBytesMax > 0 && messageBytesMax > 0, "limits must be positive")
    }
}

/// SplitMix64: tiny, fast, and reproducible across platforms (unlike `SystemRandomNumberGenerator`).
package struct SplitMix64: RandomNumberGenerator, Sendable {
    /// The generator's whole state.
    private var state: UInt64

    package init(seed: UInt64) { state = seed }

    package mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
