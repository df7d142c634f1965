// Prints the seeds being simulated if the process dies on a trap (a broken precondition in the core is a
// crash, not a thrown error), so that even a crashing seed can be replayed with RAFT_SEED.

#if canImport(Glibc)
import Glibc

enum CrashReporter {
    static let slots = 64
    /// One slot per parallel chunk: the seed it is running, or -1. Written by test tasks, read by the handler.
    nonisolated(unsafe) static let runningSeeds: UnsafeMutablePointer<Int64> = {
        let pointer = UnsafeMutablePointer<Int64>.allocate(capacity: slots)
        pointer.initialize(repeating: -1, count: slots)
        return pointer
    }()
    /// Handlers that were installed before ours (Swift's backtracer); we chain to them.
    nonisolated(unsafe) static let previousActions = UnsafeMutablePointer<sigaction>.allocate(capacity: 32)
    nonisolated(unsafe) static var installed = false
    static let signals: [Int32] = [SIGILL, SIGTRAP, SIGSEGV, SIGABRT, SIGBUS]

    static func install() {
        if installed { return }
        installed = true
        for signal in signals {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { signal in
                CrashReporter.report()
                // Restore the previous handler; returning re-executes the trapping instruction.
                sigaction(signal, CrashReporter.previousActions + Int(signal), nil)
            }
            sigemptyset(&action.sa_mask)
            sigaction(signal, &action, previousActions + Int(signal))
        }
    }

    static func setSeed(_ seed: UInt64?, slot: Int) {
        runningSeeds[slot % slots] = seed.map { Int64(bitPattern: $0) } ?? -1
    }

    /// Async-signal-safe: formats digits by hand and writes with write(2).
    static func report() {
        writeString("\nRAFT simulation crashed while running seed(s):")
        for slot in 0..<slots where runningSeeds[slot] >= 0 {
            writeString(" ")
            writeNumber(UInt64(runningSeeds[slot]))
        }
        writeString("\nreplay one with: RAFT_SEED=<seed> swift test --filter RaftTests.Simulation\n")
    }

    static func writeString(_ string: StaticString) {
        _ = write(2, string.utf8Start, string.utf8CodeUnitCount)
    }

    static func writeNumber(_ value: UInt64) {
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &digits) { buffer in
            var remaining = value
            var position = buffer.count
            repeat {
                position -= 1
                buffer[position] = UInt8(48 + remaining % 10)
                remaining /= 10
            } while remaining > 0
            _ = write(2, buffer.baseAddress! + position, buffer.count - position)
        }
    }
}
#else
enum CrashReporter {
    static func install() {}
    static func setSeed(_ seed: UInt64?, slot: Int) {}
}
#endif
