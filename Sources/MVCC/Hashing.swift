internal import Storage

/// CRC-32C (Castagnoli), the checksum etcd's HashKV uses.
package struct CRC32C {
    private static let table: [UInt32] = (0..<256).map { index in
        var crc = UInt32(index)
        for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
        return crc
    }

    private(set) var value: UInt32 = 0xFFFF_FFFF

    package init() {}

    package mutating func update(_ bytes: [UInt8]) {
        var crc = value
        for byte in bytes { crc = Self.table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        value = crc
    }

    package var checksum: UInt32 { value ^ 0xFFFF_FFFF }
}

extension ReadView {
    /// etcd `HashKV`: a checksum of the key space's history up to `revision` (0: current), equal
    /// on every member that applied the same log, and equal to an etcd member's with the same
    /// history. Fails like a read below the compaction point. The view must hold no compacted
    /// history (`removingHistory`): etcd hashes what its compaction left.
    ///
    /// Records above the compaction point are all hashed. Of those at or below it, etcd hashes
    /// only the ones its key index would keep for a compaction at `revision` (mvcc `HashByRev`
    /// takes `Keep(rev)`): a key's latest revision up to `revision`, if that is not a deletion —
    /// so a compacted record whose key changed after the compaction point is left out; and if
    /// that set is empty (no key live at `revision`), every record.
    package func hashKV(upTo revision: Revision) throws(MVCCError) -> (hash: UInt32, compactRevision: Revision) {
        precondition(!removingHistory, "HashKV of a view whose compacted history is still being removed")
        let upTo = revision.value > 0 ? revision : current
        if upTo > current { throw .futureRevision }
        if revision.value > 0 && revision <= compacted { throw .compacted }
        return try mapStorage {
            // Keys changed above the compaction point, and whether each is live at `upTo`.
            var changedAbove: [[UInt8]: Bool] = [:]
            try forEachChange(from: compacted.next, through: upTo) { _, change in
                changedAbove[change.keyValue.key] = !change.isTombstone
            }
            func keptBelow(_ change: StoredChange) -> Bool {
                !change.isTombstone && changedAbove[change.keyValue.key] == nil
            }
            var keepsAny = changedAbove.values.contains(true)
            if !keepsAny && compacted.value > 0 {
                try forEachChange(from: Revision(1), through: compacted) { _, change in
                    keepsAny = keepsAny || keptBelow(change)
                }
            }
            var crc = CRC32C()
            crc.update(Array("key".utf8))
            try forEachChange(from: Revision(1), through: upTo) { revisionKey, change in
                guard revisionKey.main > compacted || !keepsAny || keptBelow(change) else { return }
                crc.update(Self.etcdRevisionKey(revisionKey, tombstone: change.isTombstone))
                crc.update(Self.etcdKeyValueRecord(change))
            }
            return (crc.checksum, compacted)
        }
    }

    /// Every stored change with a main revision in `from...through`, in revision order.
    func forEachChange(
        from: Revision, through: Revision, _ body: (RevisionKey, StoredChange) throws -> Void
    ) throws {
        guard from <= through else { return }
        let iterator = store.database.makeIterator(
            store.kv, lowerBound: RevisionKey(main: from, sub: 0).bytes,
            upperBound: RevisionKey(main: through.next, sub: 0).bytes, in: view)
        iterator.seekToFirst()
        while iterator.isValid {
            try body(RevisionKey(bytes: iterator.key), StoredChange(decoding: iterator.value))
            iterator.next()
        }
        try iterator.checkError()
    }
}

extension ReadView {
    // HashKV hashes each record as etcd's bbolt `key` bucket holds it, so that a kvd member and
    // an etcd member with the same history report the same hash (and operators can compare them
    // during a migration).

    /// etcd's revision key: main, '_', sub (big-endian), and 't' for a tombstone.
    static func etcdRevisionKey(_ revision: RevisionKey, tombstone: Bool) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(18)
        appendBigEndian(UInt64(bitPattern: revision.main.value), to: &out)
        out.append(UInt8(ascii: "_"))
        appendBigEndian(UInt64(bitPattern: revision.sub), to: &out)
        if tombstone { out.append(UInt8(ascii: "t")) }
        return out
    }

    /// The protobuf encoding of etcd's `mvccpb.KeyValue` for the record (proto3: zero fields are
    /// omitted; a tombstone carries only its key).
    static func etcdKeyValueRecord(_ change: StoredChange) -> [UInt8] {
        let keyValue = change.keyValue
        var out = [UInt8]()
        out.reserveCapacity(keyValue.key.count + keyValue.value.count + 40)
        func bytesField(_ number: UInt64, _ bytes: [UInt8]) {
            guard !bytes.isEmpty else { return }
            appendVarint(number << 3 | 2, to: &out)
            appendVarint(UInt64(bytes.count), to: &out)
            out.append(contentsOf: bytes)
        }
        func varintField(_ number: UInt64, _ value: Int64) {
            guard value != 0 else { return }
            appendVarint(number << 3, to: &out)
            appendVarint(UInt64(bitPattern: value), to: &out)
        }
        bytesField(1, keyValue.key)
        guard !change.isTombstone else { return out }
        varintField(2, keyValue.createRevision.value)
        varintField(3, keyValue.modRevision.value)
        varintField(4, keyValue.version)
        bytesField(5, keyValue.value)
        varintField(6, keyValue.lease.value)
        return out
    }
}
