/// A lease identifier as etcd uses it (0 means "no lease").
package struct LeaseID: Hashable, Sendable, CustomStringConvertible {
    package var value: Int64
    package init(_ value: Int64) { self.value = value }
    package static let none = LeaseID(0)
    package var description: String { String(value) }
}

/// One version of a key, with etcd's `mvccpb.KeyValue` fields.
package struct KeyValue: Equatable, Sendable {
    package var key: [UInt8]
    package var createRevision: Revision
    package var modRevision: Revision
    /// Number of modifications since creation; a delete resets it (the next put starts at 1).
    package var version: Int64
    package var value: [UInt8]
    package var lease: LeaseID

    package init(
        key: [UInt8], createRevision: Revision, modRevision: Revision, version: Int64, value: [UInt8],
        lease: LeaseID
    ) {
        self.key = key
        self.createRevision = createRevision
        self.modRevision = modRevision
        self.version = version
        self.value = value
        self.lease = lease
    }
}

/// A stored change: a key's new version or its deletion (a tombstone carries only the key and
/// the revision, as etcd's tombstones do).
struct StoredChange: Equatable {
    var keyValue: KeyValue
    var isTombstone: Bool

    // Layout: flags (bit 0 = tombstone), then varints create, mod, version, lease (zig-zag),
    // key length, then key bytes and value bytes. Compact on purpose: smaller on disk than
    // etcd's protobuf-in-bbolt record for the same data.
    func encoded() -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(keyValue.key.count + keyValue.value.count + 24)
        out.append(isTombstone ? 1 : 0)
        appendVarint(UInt64(bitPattern: keyValue.createRevision.value), to: &out)
        appendVarint(UInt64(bitPattern: keyValue.modRevision.value), to: &out)
        appendVarint(UInt64(bitPattern: keyValue.version), to: &out)
        appendVarint(zigZag(keyValue.lease.value), to: &out)
        appendVarint(UInt64(keyValue.key.count), to: &out)
        out.append(contentsOf: keyValue.key)
        out.append(contentsOf: keyValue.value)
        return out
    }

    init(keyValue: KeyValue, isTombstone: Bool) {
        self.keyValue = keyValue
        self.isTombstone = isTombstone
    }

    init(decoding bytes: [UInt8]) {
        var reader = ByteReader(bytes: bytes)
        let flags = reader.readByte()
        let create = Int64(bitPattern: reader.readVarint())
        let mod = Int64(bitPattern: reader.readVarint())
        let version = Int64(bitPattern: reader.readVarint())
        let lease = unZigZag(reader.readVarint())
        let keyCount = Int(reader.readVarint())
        let key = reader.readBytes(keyCount)
        let value = reader.readRest()
        isTombstone = flags & 1 != 0
        keyValue = KeyValue(
            key: key, createRevision: Revision(create), modRevision: Revision(mod), version: version,
            value: value, lease: LeaseID(lease)
        )
    }
}

func appendVarint(_ value: UInt64, to out: inout [UInt8]) {
    var v = value
    while v >= 0x80 {
        out.append(UInt8(truncatingIfNeeded: v) | 0x80)
        v >>= 7
    }
    out.append(UInt8(v))
}

func zigZag(_ value: Int64) -> UInt64 { UInt64(bitPattern: (value << 1) ^ (value >> 63)) }
func unZigZag(_ value: UInt64) -> Int64 { Int64(bitPattern: value >> 1) ^ -Int64(bitPattern: value & 1) }

/// Reads what `StoredChange.encoded` wrote. A short record is corruption: crash.
struct ByteReader {
    let bytes: [UInt8]
    var offset = 0

    mutating func readByte() -> UInt8 {
        precondition(offset < bytes.count, "stored record truncated")
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func readVarint() -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let byte = readByte()
            result |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 { return result }
            shift += 7
            precondition(shift < 64, "stored varint too long")
        }
    }

    mutating func readBytes(_ count: Int) -> [UInt8] {
        precondition(offset + count <= bytes.count, "stored record truncated")
        defer { offset += count }
        return Array(bytes[offset..<(offset + count)])
    }

    mutating func readRest() -> [UInt8] {
        defer { offset = bytes.count }
        return Array(bytes[offset...])
    }
}
