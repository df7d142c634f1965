internal import Storage

/// CRC-32C (Castagnoli), the checksum etcd's HashKV uses.
struct CRC32C {
    private static let table: [UInt32] = (0..<256).map { index in
        var crc = UInt32(index)
        for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
        return crc
    }

    private(set) var value: UInt32 = 0xFFFF_FFFF

    mutating func update(_ bytes: [UInt8]) {
        var crc = value
        for byte in bytes { crc = Self.table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        value = crc
    }

    var checksum: UInt32 { value ^ 0xFFFF_FFFF }
}

extension ReadView {
    /// etcd `HashKV`: a checksum of the key space's history up to `revision` (0: current), equal
    /// on every member that applied the same log. Fails like a read below the compaction point.
    package func hashKV(upTo revision: Revision) throws(MVCCError) -> (hash: UInt32, compactRevision: Revision) {
        let upTo = revision.value > 0 ? revision : current
        if upTo > current { throw .futureRevision }
        if revision.value > 0 && revision <= compacted { throw .compacted }
        return try mapStorage {
            var crc = CRC32C()
            crc.update(Array("key".utf8))
            let iterator = store.database.makeIterator(store.kv, upperBound: RevisionKey(main: upTo.next, sub: 0).bytes, in: view)
            iterator.seekToFirst()
            while iterator.isValid {
                crc.update(iterator.key)
                crc.update(iterator.value)
                iterator.next()
            }
            try iterator.checkError()
            return (crc.checksum, compacted)
        }
    }
}
