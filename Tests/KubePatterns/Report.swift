// One line per check, in the TAP-like shape Tests/Cluster/kube-patterns.sh counts:
//   ok   - what held
//   FAIL - what did not, with what was seen
// Lines starting with "# " are progress notes (the suite waits for "# churn: started").

internal import Foundation
internal import Synchronization

/// The checks of one run. Shared by the concurrent tasks of a phase, hence the lock.
final class Report: Sendable {
    private struct Counts {
        var passed = 0
        var failed = 0
    }

    /// Checks passed and failed so far.
    private let counts = Mutex(Counts())

    var failed: Int { counts.withLock { $0.failed } }
    var passed: Int { counts.withLock { $0.passed } }

    /// Records one check; returns `condition` so callers can stop a step whose premise failed.
    @discardableResult
    func check(_ condition: Bool, _ description: @autoclosure () -> String, seen: @autoclosure () -> String = "")
        -> Bool
    {
        let line: String
        if condition {
            line = "ok   - \(description())"
        } else {
            let detail = seen()
            line = "FAIL - \(description())" + (detail.isEmpty ? "" : " (seen: \(detail))")
        }
        counts.withLock { condition ? ($0.passed += 1) : ($0.failed += 1) }
        Self.write(line)
        return condition
    }

    func expectEqual<Value: Equatable>(_ actual: Value, _ expected: Value, _ description: String) {
        check(actual == expected, "\(description): \(expected)", seen: "\(actual)")
    }

    /// A step that threw before it could check anything counts as one failure.
    func failure(_ description: String, _ error: any Error) {
        check(false, description, seen: "\(error)")
    }

    func note(_ text: String) {
        Self.write("# \(text)")
    }

    /// One unbuffered write per line: the suite watches our output for the churn marker while we
    /// run, and lines from concurrent tasks must not interleave.
    static func write(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }
}
