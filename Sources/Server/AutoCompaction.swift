/// etcd's automatic compaction (`--auto-compaction-mode`, `--auto-compaction-retention`), as a
/// schedule driven by a clock: every `pollInterval` the member calls `poll`, and compacts to the
/// revision it returns, if any. Only the leader compacts (etcd pauses the compactor elsewhere);
/// revisions are still sampled on every member, so a new leader starts with a full window.
package struct AutoCompaction: Sendable {
    package enum Mode: Sendable, Equatable {
        /// Keep `retention` of history: compact to the revision seen `retention` ago.
        case periodic(retention: Duration)
        /// Keep the last `retention` revisions, checked every 5 minutes.
        case revision(retention: Int64)
    }

    let mode: Mode
    /// Revisions sampled once per poll, oldest first; the first is `retention` old (periodic).
    private var samples: [Int64] = []
    private var lastSuccess: ContinuousClock.Instant
    private var waitBeforeCompacting: Duration
    private var lastCompacted: Int64 = 0

    init(mode: Mode, now: ContinuousClock.Instant) {
        self.mode = mode
        lastSuccess = now
        switch mode {
        case .periodic(let retention): waitBeforeCompacting = retention  // the first window is whole
        case .revision: waitBeforeCompacting = .zero
        }
    }

    /// etcd polls every tenth of the retention (at most every 6 minutes), or every 5 minutes
    /// in revision mode.
    var pollInterval: Duration {
        switch mode {
        case .periodic(let retention): min(retention, .seconds(3600)) / 10
        case .revision: .seconds(300)
        }
    }

    /// Samples `currentRevision`; returns the revision to compact to now, if any.
    mutating func poll(currentRevision: Int64, isLeader: Bool, now: ContinuousClock.Instant) -> Int64? {
        switch mode {
        case .periodic(let retention):
            samples.append(currentRevision)
            let kept = Int(retention / pollInterval) + 1
            if samples.count > kept { samples.removeFirst(samples.count - kept) }
            guard isLeader, lastSuccess.duration(to: now) >= waitBeforeCompacting else { return nil }
            waitBeforeCompacting = min(retention, .seconds(3600))
            let target = samples[0]
            return target > lastCompacted ? target : nil
        case .revision(let retention):
            let target = currentRevision - retention
            guard isLeader, target > 0, target != lastCompacted else { return nil }
            return target
        }
    }

    /// The compaction to `revision` succeeded (or the store was already compacted past it).
    mutating func compacted(to revision: Int64, now: ContinuousClock.Instant) {
        lastCompacted = revision
        lastSuccess = now
    }

    /// etcd's `--auto-compaction-retention`: a plain number is hours (periodic) or revisions
    /// (revision), otherwise a Go duration such as "30m"; "0" turns compaction off.
    package static func parse(mode: String, retention: String) throws(ConfigurationError) -> Mode? {
        if let number = Int64(retention), number >= 0 {
            guard number > 0 else { return nil }
            switch mode {
            case "periodic", "": return .periodic(retention: .seconds(number * 3600))
            case "revision": return .revision(retention: number)
            default: throw .invalid("unknown auto-compaction-mode \(mode)")
            }
        }
        guard mode == "periodic" || mode == "" else {
            throw .invalid("error parsing CompactionRetention: \(retention) is not a revision count")
        }
        guard let duration = goDuration(retention), duration > .zero else {
            throw .invalid("error parsing CompactionRetention: time: invalid duration \"\(retention)\"")
        }
        return .periodic(retention: duration)
    }

    /// Go's `time.ParseDuration` for the units retention uses (h, m, s, ms), possibly combined.
    private static func goDuration(_ text: String) -> Duration? {
        var total = Duration.zero
        var rest = Substring(text)
        guard !rest.isEmpty else { return nil }
        while !rest.isEmpty {
            let digits = rest.prefix { $0.isNumber || $0 == "." }
            guard let value = Double(digits) else { return nil }
            rest = rest.dropFirst(digits.count)
            let unit = rest.prefix { $0.isLetter }
            rest = rest.dropFirst(unit.count)
            let scale: Double
            switch unit {
            case "h": scale = 3600
            case "m": scale = 60
            case "s": scale = 1
            case "ms": scale = 0.001
            default: return nil
            }
            total += .milliseconds(Int64(value * scale * 1000))
        }
        return total
    }
}
