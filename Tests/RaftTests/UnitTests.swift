// Unit and differential tests of the pieces under the core: codec round trips, the inflight window,
// the quorum commit index against sort-and-pick, log storage and the unstable log.

import Testing
@testable import Raft

@Suite("Units")
struct UnitTests {
    @Test("messages and entries survive an encode/decode round trip")
    func codecRoundTrip() throws {
        let snapshot = Snapshot(metadata: SnapshotMetadata(index: 9, term: 3,
                                                          confState: ConfState(voters: [1, 2, 3], learners: [4])),
                                data: [1, 2, 3])
        let messages = [
            Message(type: .append, to: 2, from: 1, term: 5, logTerm: 4, index: 7,
                    entries: [Entry(term: 5, index: 8, data: Array("hello".utf8)),
                              Entry(term: 5, index: 9, type: .confChange, data: encodeConfChange(.promote(4)))],
                    commit: 6),
            Message(type: .appendResponse, to: 1, from: 2, term: 5, logTerm: 2, index: 7, reject: true, rejectHint: 3),
            Message(type: .snapshot, to: 3, from: 1, term: 5, snapshot: snapshot),
            Message(type: .heartbeat, to: 3, from: 1, term: Term(UInt64.max), context: [0, 255]),
        ]
        for message in messages {
            #expect(try Message(decoding: message.encoded) == message)
        }
        let entry = Entry(term: 1, index: 2, data: [9])
        #expect(try Entry(decoding: entry.encoded) == entry)
        for change in [ConfChange.addVoter(1), .addLearner(2), .promote(3), .remove(4)] {
            #expect(try decodeConfChange(encodeConfChange(change)) == change)
        }
    }

    @Test("malformed encodings are rejected, not misread")
    func codecRejectsGarbage() {
        let encoded = Message(type: .append, to: 2, from: 1, entries: [Entry(term: 1, index: 1)]).encoded
        #expect(throws: DecodingError.truncated) { try Message(decoding: Array(encoded.dropLast())) }
        #expect(throws: DecodingError.trailingBytes) { try Message(decoding: encoded + [0]) }
        #expect(throws: DecodingError.invalidTag(99)) { try Message(decoding: [1, 99]) }
    }

    @Test("the inflight window bounds messages and bytes and frees by index")
    func inflights() {
        var window = Inflights(messagesMax: 3, bytesMax: 100)
        window.add(index: 1, bytes: 10)
        window.add(index: 2, bytes: 10)
        #expect(!window.isFull)
        window.add(index: 3, bytes: 10)
        #expect(window.isFull)
        window.freeLE(2)
        #expect(window.count == 1 && window.bytes == 10)
        window.add(index: 4, bytes: 95)
        #expect(window.isFull)
        window.freeLE(4)
        #expect(window.count == 0 && window.bytes == 0)
        // Wrap around the ring many times.
        for index in UInt64(5)..<200 {
            window.add(index: LogIndex(index), bytes: 1)
            if index % 2 == 0 { window.freeLE(LogIndex(index)) }
        }
        #expect(window.count <= 3)
    }

    @Test("quorum commit index equals sort-and-pick on random inputs", arguments: 0..<20)
    func quorumDifferential(seed: Int) {
        var random = SplitMix64(seed: UInt64(seed))
        let voterCount = Int.random(in: 1...7, using: &random)
        var tracker = ProgressTracker(inflightMessagesMax: 4, inflightBytesMax: 1000)
        let voters = (1...voterCount).map { NodeID(UInt64($0)) }
        tracker.reset(to: ConfState(voters: voters), nextIndex: 1)
        var matches: [UInt64] = []
        for voter in voters {
            let match = UInt64.random(in: 0...50, using: &random)
            matches.append(match)
            _ = tracker.progress[voter]!.maybeUpdate(LogIndex(match))
        }
        // Naive reference: the largest value that at least a majority reach.
        let majority = voterCount / 2 + 1
        let reference = matches.filter { candidate in matches.filter { $0 >= candidate }.count >= majority }.max()!
        #expect(tracker.committedIndex() == LogIndex(reference))
    }

    @Test("progress: probe to replicate, rejections, snapshot")
    func progressTransitions() {
        var progress = Progress(next: 10, inflightMessagesMax: 2, inflightBytesMax: 1000, isLearner: false)
        progress.sentEntries(entryCount: 1, bytes: 10)
        #expect(progress.isPaused)
        let updated = progress.maybeUpdate(9)
        #expect(updated)
        progress.acknowledged(index: 9, firstIndex: 1)
        #expect(progress.state == .replicate && progress.next == 10)
        progress.sentEntries(entryCount: 3, bytes: 30)
        progress.sentEntries(entryCount: 3, bytes: 30)
        #expect(progress.isPaused && progress.next == 16)
        // A stale rejection (at or below match) changes nothing.
        let staleDecreased = progress.maybeDecrease(rejected: 9, matchHint: 5)
        #expect(!staleDecreased)
        let decreased = progress.maybeDecrease(rejected: 12, matchHint: 5)
        #expect(decreased)
        #expect(progress.next == 10)
        progress.becomeSnapshot(index: 50)
        #expect(progress.isPaused)
        progress.snapshotFinished(failed: false)
        #expect(progress.state == .probe && progress.next == 51)
    }

    @Test("memory storage compacts, snapshots and truncates conflicting suffixes")
    func memoryStorage() throws {
        let storage = MemoryLogStorage()
        storage.append((1...10).map { Entry(term: 1, index: LogIndex(UInt64($0))) })
        storage.append([Entry(term: 2, index: 8)])
        #expect(storage.lastIndex() == 8)
        #expect(try storage.term(at: 8) == 2)
        try storage.createSnapshot(at: 5, confState: ConfState(voters: [1]), data: [7])
        #expect(storage.firstIndex() == 6)
        #expect(try storage.term(at: 5) == 1)
        #expect(throws: LogStorageError.compacted) { try storage.term(at: 4) }
        #expect(throws: LogStorageError.unavailable) { try storage.term(at: 9) }
        #expect(try storage.entries(from: 6, to: 9, bytesMax: 1).count == 1)
        #expect(try storage.entries(from: 6, to: 9, bytesMax: .max).map(\.index) == [6, 7, 8])
    }

    @Test("the unstable log truncates on conflict and stabilizes only matching entries")
    func unstableLog() {
        var unstable = UnstableLog(offset: 5)
        unstable.truncateAndAppend([Entry(term: 1, index: 5), Entry(term: 1, index: 6), Entry(term: 1, index: 7)][...])
        unstable.truncateAndAppend([Entry(term: 2, index: 6)][...])
        #expect(unstable.entries.map(\.term) == [1, 2])
        unstable.stableTo(index: 6, term: 1)
        #expect(unstable.entries.count == 2)
        unstable.stableTo(index: 6, term: 2)
        #expect(unstable.entries.isEmpty && unstable.offset == 7)
    }

    @Test("bootstrap writes one committed conf change per member")
    func bootstrap() throws {
        let storage = MemoryLogStorage()
        let applied = storage.bootstrap(ConfState(voters: [1, 2], learners: [3]))
        #expect(applied == 3)
        let entries = try storage.entries(from: 1, to: 4, bytesMax: .max)
        #expect(try entries.map { try decodeConfChange($0.data) } == [.addVoter(1), .addVoter(2), .addLearner(3)])
        var node = RawNode(config: Config(id: 1), storage: storage)
        #expect(node.confState == ConfState(voters: [1, 2], learners: [3]))
        #expect(node.commitIndex == 3 && node.appliedIndex == 0)
        #expect(node.ready().committedEntries.count == 3)
    }

    @Test("a single-voter cluster elects itself and commits after persisting")
    func singleNode() throws {
        let storage = MemoryLogStorage()
        let applied = storage.bootstrap(ConfState(voters: [1]))
        var config = Config(id: 1)
        config.applied = applied
        var node = RawNode(config: config, storage: storage)
        node.campaign()
        #expect(node.role == .leader)
        try node.propose(Array("x".utf8))
        var ready = node.ready()
        // Not committed until this node's own write is persisted.
        #expect(ready.committedEntries.isEmpty)
        storage.append(ready.entries)
        if let hardState = ready.hardState { storage.setHardState(hardState) }
        node.advance(ready)
        ready = node.ready()
        #expect(ready.committedEntries.map(\.data) == [[], Array("x".utf8)])
    }

    @Test("an installed snapshot must be synced before it is acknowledged")
    func snapshotReadyMustSync() throws {
        let storage = MemoryLogStorage()
        storage.bootstrap(ConfState(voters: [1, 2]))
        var config = Config(id: 2)
        config.applied = 2
        var node = RawNode(config: config, storage: storage)
        let snapshot = Snapshot(metadata: SnapshotMetadata(index: 50, term: 3, confState: ConfState(voters: [1, 2])))
        try node.step(Message(type: .snapshot, to: 2, from: 1, term: 3, snapshot: snapshot))
        let ready = node.ready()
        #expect(ready.snapshot == snapshot)
        #expect(ready.mustSync)
        #expect(ready.messages.isEmpty)
        #expect(ready.messagesAfterPersist.map(\.type) == [.appendResponse])
        #expect(ready.messagesAfterPersist.first?.index == 50)
    }
}
