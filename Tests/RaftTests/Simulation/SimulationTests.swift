// Seeded simulation runs. `RAFT_SEEDS=n` sets how many scenarios run (default 2,000, split across parallel
// chunks), starting at `RAFT_SEED_START` (default 0); `RAFT_SEED=s` replays one scenario (`RAFT_TRACE=1`
// prints its events). A failure prints its seed and the replay command.

import Foundation
import Testing
@testable import Raft

enum SimulationEnvironment {
    static let defaultSeeds = 2_000
    static let chunks = 8

    static var seedCount: Int {
        ProcessInfo.processInfo.environment["RAFT_SEEDS"].flatMap { Int($0) } ?? defaultSeeds
    }

    /// The first seed of the range, so that soak runs can cover fresh ranges.
    static var firstSeed: Int {
        ProcessInfo.processInfo.environment["RAFT_SEED_START"].flatMap { Int($0) } ?? 0
    }

    static var replaySeed: UInt64? {
        ProcessInfo.processInfo.environment["RAFT_SEED"].flatMap { UInt64($0) }
    }

    static func replayCommand(_ seed: UInt64) -> String {
        "RAFT_SEED=\(seed) swift test --filter RaftTests.Simulation"
    }
}

/// Runs one scenario and returns a failure report, or nil.
func runScenario(seed: UInt64, options: ScenarioOptions? = nil, verbose: Bool = false) -> String? {
    let simulator = Simulator(seed: seed, options: options)
    simulator.verbose = verbose
    do {
        try simulator.run()
        return nil
    } catch {
        let trace = simulator.trace.suffix(15).joined(separator: "\n  ")
        return "seed \(seed) failed: \(error.description)\n  replay: \(SimulationEnvironment.replayCommand(seed))"
            + "\n  last events:\n  \(trace)"
    }
}

@Suite("Simulation")
struct Simulation {
    @Test("seeded scenarios keep every invariant and recover after healing", arguments: 0..<SimulationEnvironment.chunks)
    func seededScenarios(chunk: Int) {
        if let seed = SimulationEnvironment.replaySeed {
            guard chunk == 0 else { return }
            let verbose = ProcessInfo.processInfo.environment["RAFT_TRACE"] != nil
            let failure = runScenario(seed: seed, verbose: verbose)
            #expect(failure == nil, "\(failure ?? "")")
            return
        }
        let total = SimulationEnvironment.seedCount
        var failures: [String] = []
        CrashReporter.install()
        defer { CrashReporter.setSeed(nil, slot: chunk) }
        let first = SimulationEnvironment.firstSeed
        for seed in stride(from: first + chunk, to: first + total, by: SimulationEnvironment.chunks) {
            CrashReporter.setSeed(UInt64(seed), slot: chunk)
            if let failure = runScenario(seed: UInt64(seed)) {
                print(failure)
                failures.append(failure)
                if failures.count >= 3 { break }
            }
        }
        #expect(failures.isEmpty, "\(failures.joined(separator: "\n"))")
    }

    @Test("a scenario is a pure function of its seed")
    func determinism() throws {
        for seed: UInt64 in [1, 7, 42] {
            let first = Simulator(seed: seed)
            let second = Simulator(seed: seed)
            try first.run()
            try second.run()
            #expect(first.trace == second.trace)
            #expect(first.checker.maxCommit == second.checker.maxCommit)
            #expect(first.proposalCounter == second.proposalCounter)
            #expect(first.checker.maxCommit > .zero)
        }
    }
}

@Suite("Simulation coverage")
struct SimulationCoverage {
    @Test("the random scenarios reach elections, snapshots, membership changes, transfers, crashes and reads")
    func scenariosExerciseEveryFeature() throws {
        var total = SimulationStats()
        var readsChecked = 0
        for seed: UInt64 in 10_000..<10_060 {
            let simulator = Simulator(seed: seed)
            try simulator.run()
            total = total + simulator.stats
            readsChecked += simulator.checker.readsChecked
        }
        #expect(total.leadersElected > 60)
        #expect(total.snapshotsInstalled > 0)
        #expect(total.confChangesApplied > 0)
        #expect(total.crashes > 0)
        #expect(total.timeoutNowDelivered > 0)
        #expect(total.entriesApplied > 1_000)
        #expect(readsChecked > 0)
    }
}

@Suite("Simulation catches bugs")
struct SimulationCatchesBugs {
    /// Runs seeds with a deliberately broken rule until the checker reports a safety violation.
    static func firstViolation(seeds: Range<UInt64>, breakRule: (inout ScenarioOptions) -> Void) -> (UInt64, String)? {
        for seed in seeds {
            var random = SplitMix64(seed: seed)
            var options = ScenarioOptions.random(using: &random)
            breakRule(&options)
            // Liveness failures do not count: the point is that a safety check fires.
            if let failure = runScenario(seed: seed, options: options), !failure.contains("liveness") {
                return (seed, failure)
            }
        }
        return nil
    }

    /// The election restriction (Raft §5.4.1): granting votes without comparing logs elects leaders that
    /// lack committed entries, and random scenarios find it quickly.
    @Test("granting votes without the log check is reported")
    func brokenElectionRestrictionIsCaught() {
        let caught = Self.firstViolation(seeds: 0..<500) { options in
            options.unsafeGrantVotesWithoutLogCheck = true
        }
        #expect(caught != nil, "the simulator did not notice the broken election restriction")
    }

    /// Committing an older-term entry by counting replicas (Raft §5.4.2, figure 8). The interleaving is rare
    /// under random faults, so the scenario is biased: one entry per append, five voters, heavy faults.
    @Test("committing previous-term entries by count is reported")
    func brokenCommitRuleIsCaught() {
        let caught = Self.firstViolation(seeds: 0..<3_000) { options in
            Self.biasTowardFigure8(&options)
            options.unsafeCommitPreviousTermByCount = true
        }
        #expect(caught != nil, "the simulator did not notice the broken commit rule")
        if let (seed, failure) = caught { print("broken commit rule caught by seed \(seed): \(failure.prefix(200))") }
    }

    /// The same biased scenarios with the rule intact stay clean, so the violation above is the rule's fault.
    @Test("the figure 8 biased scenarios pass with the rule intact")
    func biasedScenariosPassWithCorrectRule() {
        let caught = Self.firstViolation(seeds: 0..<600) { options in Self.biasTowardFigure8(&options) }
        #expect(caught == nil, "\(caught?.1 ?? "")")
    }

    /// One entry per append lets old-term entries reach a quorum ahead of a new leader's no-op; crashing
    /// leaders right after election or commit leaves their fresh entries on too few nodes.
    static func biasTowardFigure8(_ options: inout ScenarioOptions) {
        options.messageBytesMax = 1
        options.voters = 5
        options.dropRate = 0.2
        options.delayRoundsMax = 6
        options.proposeRate = 0.6
        options.crashRate = 0.05
        options.partitionRate = 0.1
        options.leaderCrashRate = 0.3
        options.membershipRate = 0
    }
}
