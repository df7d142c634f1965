// A small binary encoding of messages, entries and conf changes, for the peer transport and the log store.
// Stdlib only. Layout (all integers big-endian, so that encoded indexes sort numerically):
//
//   Entry    := term u64 | index u64 | type u8 | dataLength u32 | data
//   Message  := version u8 (=1) | type u8 | to u64 | from u64 | term u64 | logTerm u64 | index u64
//               | commit u64 | reject u8 | rejectHint u64 | contextLength u32 | context
//               | entryCount u32 | Entry* | hasSnapshot u8 | [Snapshot]
//   Snapshot := index u64 | term u64 | voterCount u32 | u64* | learnerCount u32 | u64* | dataLength u32 | data
//   ConfChange := kind u8 (0 addVoter, 1 addLearner, 2 promote, 3 remove) | nodeID u64

/// A malformed encoding (truncated input, unknown tag, trailing bytes).
package enum DecodingError: Error, Sendable, Hashable {
    case truncated
    case invalidTag(UInt8)
    case trailingBytes
}

struct ByteWriter {
    /// The encoded bytes so far.
    var bytes: [UInt8] = []

    /// A writer whose buffer holds `capacity` bytes before it must grow.
    init(capacity: Int = 0) {
        bytes.reserveCapacity(capacity)
    }

    mutating func write(_ value: UInt64) {
        withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func write(_ value: UInt32) {
        withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func write(_ value: UInt8) { bytes.append(value) }

    mutating func writeBytes(_ value: [UInt8]) {
        precondition(value.count <= Int(UInt32.max), "field too large to encode")
        write(UInt32(value.count))
        bytes.append(contentsOf: value)
    }
}

struct ByteReader {
    /// The input.
    let bytes: [UInt8]
    /// The next byte to read.
    var position = 0

    mutating func readUInt64() throws(DecodingError) -> UInt64 {
        guard bytes.count - position >= 8 else { throw .truncated }
        var value: UInt64 = 0
        for offset in 0..<8 { value = value << 8 | UInt64(bytes[position + offset]) }
        position += 8
        return value
    }

    mutating func readUInt32() throws(DecodingError) -> UInt32 {
        guard bytes.count - position >= 4 else { throw .truncated }
        var value: UInt32 = 0
        for offset in 0..<4 { value = value << 8 | UInt32(bytes[position + offset]) }
        position += 4
        return value
    }

    mutating func readUInt8() throws(DecodingError) -> UInt8 {
        guard position < bytes.count else { throw .truncated }
        position += 1
        return bytes[position - 1]
    }

    mutating func readBytes() throws(DecodingError) -> [UInt8] {
        let count = Int(try readUInt32())
        guard bytes.count - position >= count else { throw .truncated }
        position += count
        return Array(bytes[(position - count)..<position])
    }

    mutating func readIDs() throws(DecodingError) -> [NodeID] {
        let count = Int(try readUInt32())
        // Each ID takes 8 bytes; reject absurd counts before allocating.
        guard (bytes.count - position) / 8 >= count else { throw .truncated }
        var ids: [NodeID] = []
        for _ in 0..<count { ids.append(NodeID(try readUInt64())) }
        return ids
    }

    func finish() throws(DecodingError) {
        if position != bytes.count { throw .trailingBytes }
    }
}

extension Entry {
    /// Bytes `encode` writes: term, index, type, data length, data.
    var encodedByteCount: Int { 8 + 8 + 1 + 4 + data.count }

    func encode(into writer: inout ByteWriter) {
        writer.write(term.rawValue)
        writer.write(index.rawValue)
        writer.write(type.rawValue)
        writer.writeBytes(data)
    }

    static func decode(from reader: inout ByteReader) throws(DecodingError) -> Entry {
        let term = Term(try reader.readUInt64())
        let index = LogIndex(try reader.readUInt64())
        let tag = try reader.readUInt8()
        guard let type = EntryType(rawValue: tag) else { throw .invalidTag(tag) }
        return Entry(term: term, index: index, type: type, data: try reader.readBytes())
    }

    /// The entry's standalone encoding (for a log store).
    package var encoded: [UInt8] {
        var writer = ByteWriter(capacity: encodedByteCount)
        encode(into: &writer)
        return writer.bytes
    }

    package init(decoding bytes: [UInt8]) throws(DecodingError) {
        var reader = ByteReader(bytes: bytes)
        self = try Entry.decode(from: &reader)
        try reader.finish()
    }
}

extension Snapshot {
    func encode(into writer: inout ByteWriter) {
        writer.write(metadata.index.rawValue)
        writer.write(metadata.term.rawValue)
        writer.write(UInt32(metadata.confState.voters.count))
        for voter in metadata.confState.voters { writer.write(voter.rawValue) }
        writer.write(UInt32(metadata.confState.learners.count))
        for learner in metadata.confState.learners { writer.write(learner.rawValue) }
        writer.writeBytes(data)
    }

    static func decode(from reader: inout ByteReader) throws(DecodingError) -> Snapshot {
        let index = LogIndex(try reader.readUInt64())
        let term = Term(try reader.readUInt64())
        let voters = try reader.readIDs()
        let learners = try reader.readIDs()
        let data = try reader.readBytes()
        let confState = ConfState(voters: voters, learners: learners)
        return Snapshot(metadata: SnapshotMetadata(index: index, term: term, confState: confState), data: data)
    }
}

extension Message {
    /// Format version, so a future change can be detected instead of misread.
    static let encodingVersion: UInt8 = 1

    package var encoded: [UInt8] {
        // The fixed fields, the context, the entries; a snapshot grows the buffer once more.
        var capacity = 2 + 6 * 8 + 1 + 8 + 4 + context.count + 4 + 1
        for entry in entries { capacity += entry.encodedByteCount }
        var writer = ByteWriter(capacity: capacity)
        writer.write(Message.encodingVersion)
        writer.write(type.rawValue)
        writer.write(to.rawValue)
        writer.write(from.rawValue)
        writer.write(term.rawValue)
        writer.write(logTerm.rawValue)
        writer.write(index.rawValue)
        writer.write(commit.rawValue)
        writer.write(reject ? UInt8(1) : UInt8(0))
        writer.write(rejectHint.rawValue)
        writer.writeBytes(context)
        writer.write(UInt32(entries.count))
        for entry in entries { entry.encode(into: &writer) }
        if let snapshot {
            writer.write(UInt8(1))
            snapshot.encode(into: &writer)
        } else {
            writer.write(UInt8(0))
        }
        return writer.bytes
    }

    package init(decoding bytes: [UInt8]) throws(DecodingError) {
        var reader = ByteReader(bytes: bytes)
        let version = try reader.readUInt8()
        guard version == Message.encodingVersion else { throw .invalidTag(version) }
        let tag = try reader.readUInt8()
        guard let type = MessageType(rawValue: tag) else { throw .invalidTag(tag) }
        self.init(type: type)
        to = NodeID(try reader.readUInt64())
        from = NodeID(try reader.readUInt64())
        term = Term(try reader.readUInt64())
        logTerm = Term(try reader.readUInt64())
        index = LogIndex(try reader.readUInt64())
        commit = LogIndex(try reader.readUInt64())
        reject = try reader.readUInt8() != 0
        rejectHint = LogIndex(try reader.readUInt64())
        context = try reader.readBytes()
        let entryCount = Int(try reader.readUInt32())
        // An entry takes at least 21 bytes; reject absurd counts before allocating.
        guard (bytes.count - reader.position) / 21 >= entryCount else { throw .truncated }
        entries.reserveCapacity(entryCount)
        for _ in 0..<entryCount { entries.append(try Entry.decode(from: &reader)) }
        if try reader.readUInt8() != 0 { snapshot = try Snapshot.decode(from: &reader) }
        try reader.finish()
    }
}

/// Encodes a conf change as the data of a `.confChange` entry.
package func encodeConfChange(_ change: ConfChange) -> [UInt8] {
    var writer = ByteWriter()
    let kind: UInt8
    switch change {
    case .addVoter: kind = 0
    case .addLearner: kind = 1
    case .promote: kind = 2
    case .remove: kind = 3
    }
    writer.write(kind)
    writer.write(change.nodeID.rawValue)
    return writer.bytes
}

/// Decodes the data of a `.confChange` entry.
package func decodeConfChange(_ bytes: [UInt8]) throws(DecodingError) -> ConfChange {
    var reader = ByteReader(bytes: bytes)
    let kind = try reader.readUInt8()
    let member = NodeID(try reader.readUInt64())
    try reader.finish()
    switch kind {
    case 0: return .addVoter(member)
    case 1: return .addLearner(member)
    case 2: return .promote(member)
    case 3: return .remove(member)
    default: throw .invalidTag(kind)
    }
}
