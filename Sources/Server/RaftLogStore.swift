internal import Raft
internal import Storage

/// The Raft log and Raft state on RocksDB: `raft_log` maps a big-endian index to an
/// encoded entry; `raft_state` holds the hard state, the membership and the latest snapshot's
/// metadata. Reads serve the core's `LogStorage` protocol; writes go into the caller's batch so
/// that entries and hard state become durable together in one synced write.
///
/// The newest entries also stay in memory (`recent`): the core asks for the log's tail all the
/// time (the term at an index to commit or to send AppendEntries, the committed entries to
/// apply), and serving that from RocksDB cost a memtable search and a decode per question.
///
/// Owned by the node loop alone (not thread-safe), like the `RawNode` that reads it.
final class RaftLogStore: LogStorage {
    static let columnFamilies = ["raft_log", "raft_state"]

    private let database: Database
    private let log: ColumnFamily
    private let state: ColumnFamily
    /// The persisted hard state (as of the last write handed to `persist`).
    private(set) var hardState: HardState
    /// The membership as of the applied index.
    private(set) var confState: ConfState
    /// The latest snapshot of the applied state (what a lagging follower is sent).
    private(set) var latestSnapshot: SnapshotMetadata
    /// The snapshot whose image is on disk: the only one Raft may be given to send.
    var imageIndex: LogIndex?
    /// Raft asked for the latest snapshot before its image existed: the node loop makes one.
    var imageWanted = false
    /// Where the log starts: entries up to `compacted.index` were dropped; its term stays known.
    /// Invariant: compacted.index <= latestSnapshot.index (a tail stays for slow followers).
    private(set) var compacted: (index: LogIndex, term: Term)
    /// Invariant: entries `compacted.index + 1 ... last` are in `raft_log`.
    private(set) var last: LogIndex
    /// The newest entries, as written to `raft_log`: `recent[recentStart...]` is contiguous and
    /// ends at `last` (or is empty). Bounded by `recentBytesMax`; older entries are read back.
    private var recent: [Entry] = []
    private var recentStart = 0
    private var recentBytes = 0
    private let recentBytesMax: Int

    private static let hardStateKey = Array("hard_state".utf8)
    private static let confStateKey = Array("conf_state".utf8)
    private static let snapshotKey = Array("snapshot".utf8)
    private static let compactedKey = Array("compacted".utf8)

    /// `recentBytesMax`: how many bytes of the newest entries stay in memory (at least one entry).
    init(database: Database, recentBytesMax: Int = 8 << 20) throws {
        self.database = database
        self.recentBytesMax = recentBytesMax
        log = database.columnFamily("raft_log")
        state = database.columnFamily("raft_state")
        hardState = try database.get(state, Self.hardStateKey).map(Self.decodeHardState) ?? HardState()
        let snapshot = try database.get(state, Self.snapshotKey).map { Snapshot(metadata: try Self.decodeMetadata($0)) } ?? Snapshot()
        latestSnapshot = snapshot.metadata
        let compactedMetadata = try database.get(state, Self.compactedKey).map(Self.decodeMetadata) ?? SnapshotMetadata()
        compacted = (compactedMetadata.index, compactedMetadata.term)
        confState = try database.get(state, Self.confStateKey).map { try Self.decodeMetadata($0).confState }
            ?? snapshot.metadata.confState
        let iterator = database.makeIterator(log)
        iterator.seekToLast()
        last = iterator.isValid ? LogIndex(Self.index(from: iterator.key)) : compacted.index
        try iterator.checkError()
    }

    var isEmpty: Bool { last == .zero && compacted.index == .zero && hardState.isEmpty }

    // MARK: LogStorage

    func initialState() -> (hardState: HardState, confState: ConfState) { (hardState, confState) }

    func firstIndex() -> LogIndex { compacted.index + 1 }

    func lastIndex() -> LogIndex { last }

    func term(at index: LogIndex) throws(LogStorageError) -> Term {
        if index == compacted.index { return compacted.term }
        if index < compacted.index { throw .compacted }
        if index > last { throw .unavailable }
        if let entry = recentEntry(at: index) { return entry.term }
        return read(index).term
    }

    func entries(from low: LogIndex, to high: LogIndex, bytesMax: Int) throws(LogStorageError) -> [Entry] {
        if low <= compacted.index { throw .compacted }
        precondition(high <= last + 1, "entries up to \(high) beyond last index \(last)")
        var result: [Entry] = []
        var total = 0
        if let first = recentFirstIndex, low >= first {
            let start = recentStart + low.distance(from: first)
            for entry in recent[start..<(start + high.distance(from: low))] {
                total += entry.byteCount
                if !result.isEmpty && total > bytesMax { break }
                result.append(entry)
            }
            return result
        }
        let iterator = database.makeIterator(log, lowerBound: Self.key(low), upperBound: Self.key(high))
        iterator.seekToFirst()
        var expected = low
        while iterator.isValid {
            let entry = Self.decodeEntry(iterator.value, at: expected)
            total += entry.byteCount
            if !result.isEmpty && total > bytesMax { break }
            result.append(entry)
            expected = expected + 1
            iterator.next()
        }
        precondition(result.count == high.distance(from: low) || total > bytesMax, "raft log has a gap at \(expected)")
        return result
    }

    /// Snapshots are recorded without an image (compacting the log only needs the metadata); the
    /// image is written when a follower first needs it, and until then the leader retries.
    func snapshot() throws(LogStorageError) -> Snapshot {
        if latestSnapshot.index != .zero && imageIndex != latestSnapshot.index {
            imageWanted = true
            throw .snapshotTemporarilyUnavailable
        }
        return Snapshot(metadata: latestSnapshot, data: [])
    }

    // MARK: writes (into the caller's batch; call `didPersist` after the batch is written)

    /// Appends entries, truncating any conflicting suffix first. Returns the new last index.
    func append(_ entries: [Entry], into batch: WriteBatch) {
        guard let first = entries.first, let newLast = entries.last else { return }
        precondition(first.index <= last + 1, "gap: append \(first.index) after \(last)")
        if first.index <= last {
            batch.deleteRange(log, from: Self.key(first.index), to: Self.key(last + 1))
            dropRecent(from: first.index)
        }
        for entry in entries where entry.index > compacted.index {
            batch.put(log, Self.key(entry.index), entry.encoded)
            // Contiguous with what `recent` holds: a conflicting suffix was dropped above.
            recent.append(entry)
            recentBytes += entry.byteCount
        }
        last = newLast.index
        trimRecent()
    }

    func setHardState(_ hardState: HardState, into batch: WriteBatch) {
        self.hardState = hardState
        batch.put(state, Self.hardStateKey, Self.encodeHardState(hardState))
    }

    func setConfState(_ confState: ConfState, into batch: WriteBatch) {
        self.confState = confState
        batch.put(state, Self.confStateKey, Self.encodeMetadata(SnapshotMetadata(confState: confState)))
    }

    /// Replaces the log with a snapshot received from the leader.
    func installSnapshot(_ metadata: SnapshotMetadata, into batch: WriteBatch) {
        batch.deleteRange(log, from: Self.key(LogIndex(0)), to: Self.key(LogIndex(UInt64.max)))
        dropRecent(from: LogIndex(0))
        latestSnapshot = metadata
        compacted = (metadata.index, metadata.term)
        last = metadata.index
        batch.put(state, Self.snapshotKey, Self.encodeMetadata(metadata))
        batch.put(state, Self.compactedKey, Self.encodeMetadata(metadata))
        setConfState(metadata.confState, into: batch)
    }

    /// Records a snapshot of the applied state at `index` and drops the log up to `compactTo`
    /// (<= index), keeping a tail for slow followers. Takes effect for readers at once: the caller
    /// writes the batch before the core reads again.
    func recordSnapshot(at index: LogIndex, confState: ConfState, compactTo: LogIndex, into batch: WriteBatch) throws {
        precondition(compactTo <= index && index <= last, "snapshot \(index) / compaction \(compactTo) outside the log")
        let metadata = SnapshotMetadata(index: index, term: try term(at: index), confState: confState)
        batch.put(state, Self.snapshotKey, Self.encodeMetadata(metadata))
        latestSnapshot = metadata
        if compactTo > compacted.index {
            let compactTerm = try term(at: compactTo)
            batch.deleteRange(log, from: Self.key(compacted.index + 1), to: Self.key(compactTo + 1))
            compacted = (compactTo, compactTerm)
            dropRecent(through: compactTo)
            batch.put(state, Self.compactedKey, Self.encodeMetadata(SnapshotMetadata(index: compactTo, term: compactTerm)))
        }
    }

    // MARK: the in-memory tail

    private var recentFirstIndex: LogIndex? { recentStart < recent.count ? recent[recentStart].index : nil }

    private func recentEntry(at index: LogIndex) -> Entry? {
        guard let first = recentFirstIndex, index >= first, index <= last else { return nil }
        return recent[recentStart + index.distance(from: first)]
    }

    /// Forgets the entries from `index` on (a conflicting suffix replaced, the log replaced).
    private func dropRecent(from index: LogIndex) {
        guard let first = recentFirstIndex, index <= last else { return }
        guard index > first else {
            recent.removeAll(keepingCapacity: true)
            recentStart = 0
            recentBytes = 0
            return
        }
        let cut = recentStart + index.distance(from: first)
        for entry in recent[cut...] { recentBytes -= entry.byteCount }
        recent.removeSubrange(cut...)
    }

    /// Forgets the entries up to `index` (compacted away).
    private func dropRecent(through index: LogIndex) {
        dropOldestRecent { $0.index <= index }
    }

    /// Keeps the newest entries within `recentBytesMax`, and always the last one.
    private func trimRecent() {
        dropOldestRecent { _ in recentBytes > recentBytesMax && recent.count - recentStart > 1 }
    }

    /// Forgets the oldest entry while `drop` holds for it, then moves the live entries to the
    /// front once the dropped ones outnumber them (amortised O(1) per entry).
    private func dropOldestRecent(while drop: (Entry) -> Bool) {
        while recentStart < recent.count && drop(recent[recentStart]) {
            recentBytes -= recent[recentStart].byteCount
            recentStart += 1
        }
        guard recentStart > 0 && recentStart * 2 >= recent.count else { return }
        recent.removeFirst(recentStart)
        recentStart = 0
    }

    // MARK: encoding

    private func read(_ index: LogIndex) -> Entry {
        guard let bytes = try? database.get(log, Self.key(index)) else {
            preconditionFailure("raft log entry \(index) unreadable")  // fail-stop: the log is the WAL
        }
        return Self.decodeEntry(bytes, at: index)
    }

    private static func decodeEntry(_ bytes: [UInt8], at index: LogIndex) -> Entry {
        guard let entry = try? Entry(decoding: bytes) else { preconditionFailure("raft log entry \(index) is corrupt") }
        // Pair assertion: the entry read back is the one stored under its index.
        precondition(entry.index == index, "raft log entry under \(index) claims index \(entry.index)")
        return entry
    }

    static func key(_ index: LogIndex) -> [UInt8] {
        var out: [UInt8] = []
        for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: index.rawValue >> UInt64(shift))) }
        return out
    }

    /// The index `key(_:)` encoded (also the applied marker's value).
    static func index(from key: [UInt8]) -> UInt64 {
        key.reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// index u64 | term u64 | voter count u64 | voters | learner count u64 | learners.
    private static func encodeMetadata(_ metadata: SnapshotMetadata) -> [UInt8] {
        var out = key(metadata.index) + key(LogIndex(metadata.term.rawValue))
        for group in [metadata.confState.voters, metadata.confState.learners] {
            out += key(LogIndex(UInt64(group.count)))
            for id in group { out += key(LogIndex(id.rawValue)) }
        }
        return out
    }

    private static func decodeMetadata(_ bytes: [UInt8]) throws -> SnapshotMetadata {
        var words: [UInt64] = []
        var offset = 0
        while offset + 8 <= bytes.count {
            words.append(index(from: Array(bytes[offset..<(offset + 8)])))
            offset += 8
        }
        precondition(offset == bytes.count && words.count >= 4, "snapshot metadata record is malformed")
        let voterCount = Int(words[2])
        precondition(words.count >= 4 + voterCount, "snapshot metadata record is malformed")
        let voters = words[3..<(3 + voterCount)].map { NodeID($0) }
        let learnerCount = Int(words[3 + voterCount])
        precondition(words.count == 4 + voterCount + learnerCount, "snapshot metadata record is malformed")
        let learners = words[(4 + voterCount)...].map { NodeID($0) }
        return SnapshotMetadata(index: LogIndex(words[0]), term: Term(words[1]), confState: ConfState(voters: Array(voters), learners: Array(learners)))
    }

    private static func encodeHardState(_ state: HardState) -> [UInt8] {
        key(LogIndex(state.term.rawValue)) + key(LogIndex(state.vote.rawValue)) + key(state.commit)
    }

    private static func decodeHardState(_ bytes: [UInt8]) throws -> HardState {
        precondition(bytes.count == 24, "hard state record is \(bytes.count) bytes")
        return HardState(
            term: Term(index(from: Array(bytes[0..<8]))),
            vote: NodeID(index(from: Array(bytes[8..<16]))),
            commit: LogIndex(index(from: Array(bytes[16..<24])))
        )
    }
}
