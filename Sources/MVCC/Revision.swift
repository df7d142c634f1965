/// A store revision: the logical clock of the key space. Every write request that changes
/// something takes the next one (etcd `mvcc/revision.go` "main" revision). Starts at 1.
package struct Revision: Hashable, Comparable, Sendable, CustomStringConvertible {
    package var value: Int64

    package init(_ value: Int64) {
        self.value = value
    }

    package static func < (lhs: Revision, rhs: Revision) -> Bool { lhs.value < rhs.value }
    package var description: String { String(value) }
    package var next: Revision { Revision(value + 1) }
}

/// The position of one change in history: a main revision and the index of the change within
/// the request that made it (a Txn's several writes share the main revision).
package struct RevisionKey: Hashable, Comparable, Sendable {
    package var main: Revision
    package var sub: Int64

    package init(main: Revision, sub: Int64) {
        self.main = main
        self.sub = sub
    }

    package static func < (lhs: RevisionKey, rhs: RevisionKey) -> Bool {
        (lhs.main.value, lhs.sub) < (rhs.main.value, rhs.sub)
    }

    /// 16 bytes, big-endian, so that RocksDB's byte order is revision order.
    package var bytes: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(16)
        appendBigEndian(UInt64(bitPattern: main.value), to: &out)
        appendBigEndian(UInt64(bitPattern: sub), to: &out)
        return out
    }

    package init<C: Collection<UInt8>>(bytes: C) where C.Index == Int {
        precondition(bytes.count == 16, "a revision key is 16 bytes, got \(bytes.count)")
        let start = bytes.startIndex
        main = Revision(Int64(bitPattern: readBigEndian(bytes, at: start)))
        sub = Int64(bitPattern: readBigEndian(bytes, at: start + 8))
    }
}

func appendBigEndian(_ value: UInt64, to out: inout [UInt8]) {
    for shift in stride(from: 56, through: 0, by: -8) {
        out.append(UInt8(truncatingIfNeeded: value >> UInt64(shift)))
    }
}

func readBigEndian<C: Collection<UInt8>>(_ bytes: C, at start: Int) -> UInt64 where C.Index == Int {
    var value: UInt64 = 0
    for i in start..<(start + 8) {
        value = value << 8 | UInt64(bytes[i])
    }
    return value
}
