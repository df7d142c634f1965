@testable import Server
import Testing

@Suite struct AutoCompactionTests {
    @Test("retention parses as etcd does")
    func parse() throws {
        #expect(try AutoCompaction.parse(mode: "periodic", retention: "1") == .periodic(retention: .seconds(3600)))
        #expect(try AutoCompaction.parse(mode: "periodic", retention: "1h30m") == .periodic(retention: .seconds(5400)))
        #expect(try AutoCompaction.parse(mode: "periodic", retention: "2s") == .periodic(retention: .seconds(2)))
        #expect(try AutoCompaction.parse(mode: "revision", retention: "1000") == .revision(retention: 1000))
        #expect(try AutoCompaction.parse(mode: "periodic", retention: "0") == nil)
        #expect(throws: ConfigurationError.self) { try AutoCompaction.parse(mode: "revision", retention: "1h") }
        #expect(throws: ConfigurationError.self) { try AutoCompaction.parse(mode: "periodic", retention: "soon") }
    }

    @Test("periodic: after a whole window, the leader compacts to the revision seen one retention ago")
    func periodic() {
        let start = ContinuousClock.now
        var schedule = AutoCompaction(mode: .periodic(retention: .seconds(10)), now: start)
        #expect(schedule.pollInterval == .seconds(1))
        var compactions: [Int64] = []
        for second in 1...25 {
            // Revision 100 + 10 per second; leadership lost between seconds 12 and 15.
            let target = schedule.poll(currentRevision: 100 + Int64(second) * 10, isLeader: !(12...15).contains(second), now: start + .seconds(second))
            if let target {
                compactions.append(target)
                schedule.compacted(to: target, now: start + .seconds(second))
            }
        }
        // Second 10: the oldest sample is the first poll's (second 1: 110). Second 20: the one
        // taken a retention earlier (second 10: 200). Leadership was back by then.
        #expect(compactions == [110, 200])
    }

    @Test("revision: keeps the last `retention` revisions, once per target")
    func revision() {
        let now = ContinuousClock.now
        var schedule = AutoCompaction(mode: .revision(retention: 30), now: now)
        #expect(schedule.pollInterval == .seconds(300))
        #expect(schedule.poll(currentRevision: 20, isLeader: true, now: now) == nil)
        #expect(schedule.poll(currentRevision: 100, isLeader: false, now: now) == nil)
        #expect(schedule.poll(currentRevision: 100, isLeader: true, now: now) == 70)
        schedule.compacted(to: 70, now: now)
        #expect(schedule.poll(currentRevision: 100, isLeader: true, now: now) == nil)
        #expect(schedule.poll(currentRevision: 101, isLeader: true, now: now) == 71)
    }
}
