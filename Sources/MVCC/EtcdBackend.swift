package import Storage

/// The key space as etcd's backend stores it (mvcc/kvstore.go, lease/lessor.go), for snapshots
/// an etcd member can be restored from and etcd snapshots kvd can be restored from:
/// - `key`: revision (main, '_', sub, big-endian; 't' appended for a tombstone) → `mvccpb.KeyValue`;
/// - `lease`: lease ID (big-endian) → `leasepb.Lease` (ID, TTL);
/// - `meta`: `consistent_index` (the applied Raft index), `scheduledCompactRev` and
///   `finishedCompactRev` (the compaction point and the one whose history is removed).
package enum EtcdBackend {
    package static let consistentIndexKey = Array("consistent_index".utf8)
    static let finishedCompactKey = Array("finishedCompactRev".utf8)
    static let scheduledCompactKey = Array("scheduledCompactRev".utf8)

    /// Calls `body` with every `key` bucket record of the view's history, in revision order.
    package static func forEachKeyRecord(
        of view: ReadView, _ body: (_ key: [UInt8], _ value: [UInt8]) throws -> Void
    ) throws(MVCCError) {
        // Up to the view's revision: the view may hold a round applied after it was published.
        try mapStorage {
            try view.forEachChange(from: Revision(1), through: view.current) { revision, change in
                try body(ReadView.etcdRevisionKey(revision, tombstone: change.isTombstone), ReadView.etcdKeyValueRecord(change))
            }
        }
    }

    /// The `lease` bucket's records, in ID order (signed IDs are positive: etcd never grants others).
    package static func leaseRecords(of view: ReadView) throws(MVCCError) -> [(key: [UInt8], value: [UInt8])] {
        try mapStorage {
            var records: [(key: [UInt8], value: [UInt8])] = []
            let iterator = view.store.database.makeIterator(view.store.lease, in: view.view)
            iterator.seekToFirst()
            while iterator.isValid {
                let id = Int64(bitPattern: readBigEndian(iterator.key, at: 0))
                let ttl = Int64(bitPattern: readBigEndian(iterator.value, at: 0))
                var lease = [UInt8]()
                appendVarintField(1, id, to: &lease)
                appendVarintField(2, ttl, to: &lease)
                records.append((iterator.key, lease))
                iterator.next()
            }
            try iterator.checkError()
            return records
        }
    }

    /// The `meta` bucket's records, in key order.
    package static func metaRecords(of view: ReadView, consistentIndex: UInt64) -> [(key: [UInt8], value: [UInt8])] {
        var index = [UInt8]()
        appendBigEndian(consistentIndex, to: &index)
        var records = [(key: consistentIndexKey, value: index)]
        // etcd writes the compaction keys with its first compaction; before one, kvd's point is -1.
        if view.compacted.value > 0 {
            records.append((finishedCompactKey, compactRevisionBytes(view.historyRemoved)))
            records.append((scheduledCompactKey, compactRevisionBytes(view.compacted)))
        }
        return records
    }

    private static func compactRevisionBytes(_ revision: Revision) -> [UInt8] {
        ReadView.etcdRevisionKey(RevisionKey(main: revision, sub: 0), tombstone: false)
    }

    private static func appendVarintField(_ number: UInt64, _ value: Int64, to out: inout [UInt8]) {
        guard value != 0 else { return }
        appendVarint(number << 3, to: &out)
        appendVarint(UInt64(bitPattern: value), to: &out)
    }
}

/// Why a record of an etcd backend could not be taken in.
package struct EtcdBackendError: Error, CustomStringConvertible {
    package var description: String
    init(_ description: String) { self.description = description }
}

/// Fills an empty store's families from an etcd backend's `key`, `lease` and `meta` records, in
/// batches (a backend of any size), then writes the revisions they imply. The store opened on
/// the result rebuilds its key index and lease attachments from them, as after any restart.
package struct EtcdBackendImporter {
    private let database: Database
    private let kv: ColumnFamily
    private let keyIndex: ColumnFamily
    private let lease: ColumnFamily
    private let meta: ColumnFamily
    private let batch = WriteBatch()
    /// The highest main revision seen in the `key` bucket (1: an empty store, as etcd).
    private var current = Revision(1)
    private var compacted: Revision?
    private var historyRemoved: Revision?

    package init(database: Database) {
        self.database = database
        kv = database.columnFamily("kv")
        keyIndex = database.columnFamily("key_index")
        lease = database.columnFamily("lease")
        meta = database.columnFamily("meta")
    }

    /// One record of the `key` bucket.
    package mutating func addKeyRecord(key: [UInt8], value: [UInt8]) throws {
        guard key.count == 17 || key.count == 18 && key[17] == UInt8(ascii: "t"), key[8] == UInt8(ascii: "_") else {
            throw EtcdBackendError("key bucket: malformed revision \(key)")
        }
        let revision = RevisionKey(
            main: Revision(Int64(bitPattern: readBigEndian(key, at: 0))),
            sub: Int64(bitPattern: readBigEndian(key, at: 9)))
        let isTombstone = key.count == 18
        var keyValue = try Self.decodeKeyValue(value)
        guard revision.main.value > 0, revision.sub >= 0, !keyValue.key.isEmpty else {
            throw EtcdBackendError("key bucket: invalid record at revision \(revision.main)")
        }
        // etcd's tombstone holds only the key; kvd's also its revision.
        if isTombstone { keyValue = KeyValue(key: keyValue.key, createRevision: Revision(0), modRevision: revision.main, version: 0, value: [], lease: .none) }
        batch.put(kv, revision.bytes, StoredChange(keyValue: keyValue, isTombstone: isTombstone).encoded())
        batch.put(keyIndex, KeyEncoding.encode(keyValue.key) + revision.bytes, [isTombstone ? KeyIndexFlag.tombstone : KeyIndexFlag.live])
        current = max(current, revision.main)
        if batch.count >= 20_000 { try write() }
    }

    /// One record of the `lease` bucket.
    package mutating func addLeaseRecord(key: [UInt8], value: [UInt8]) throws {
        var id: Int64 = 0
        var ttl: Int64 = 0
        try ProtobufFields.forEach(in: value) { number, field in
            guard case .varint(let raw) = field else { return }
            if number == 1 { id = Int64(bitPattern: raw) } else if number == 2 { ttl = Int64(bitPattern: raw) }
        }
        guard id > 0 else { throw EtcdBackendError("lease bucket: invalid lease ID") }
        batch.put(lease, LeaseTable.key(LeaseID(id)), Revision(ttl).bytesBigEndian)
    }

    /// One record of the `meta` bucket (the compaction revisions; the rest is the old cluster's).
    package mutating func addMetaRecord(key: [UInt8], value: [UInt8]) throws {
        guard key == EtcdBackend.scheduledCompactKey || key == EtcdBackend.finishedCompactKey else { return }
        guard value.count >= 8 else { throw EtcdBackendError("meta bucket: malformed \(String(decoding: key, as: UTF8.self))") }
        let revision = Revision(Int64(bitPattern: readBigEndian(value, at: 0)))
        if key == EtcdBackend.scheduledCompactKey { compacted = revision } else { historyRemoved = revision }
    }

    /// Writes what is left and the store's revisions: current is the newest revision stored, or
    /// the compaction point if that is newer (etcd's restore does the same).
    package mutating func finish() throws {
        let compacted = compacted ?? historyRemoved
        if let compacted {
            current = max(current, compacted)
            batch.put(meta, MVCCStore.compactedRevisionKey, compacted.bytesBigEndian)
            // A compaction scheduled but not finished: the store removes its history when it opens.
            batch.put(meta, MVCCStore.historyRemovedRevisionKey, min(historyRemoved ?? Revision(-1), compacted).bytesBigEndian)
        }
        batch.put(meta, MVCCStore.currentRevisionKey, current.bytesBigEndian)
        try write()
    }

    private func write() throws {
        try database.write(batch, sync: false)
        batch.clear()
    }

    /// `mvccpb.KeyValue`: key 1, create_revision 2, mod_revision 3, version 4, value 5, lease 6.
    static func decodeKeyValue(_ bytes: [UInt8]) throws -> KeyValue {
        var keyValue = KeyValue(key: [], createRevision: Revision(0), modRevision: Revision(0), version: 0, value: [], lease: .none)
        try ProtobufFields.forEach(in: bytes) { number, field in
            switch (number, field) {
            case (1, .bytes(let key)): keyValue.key = key
            case (2, .varint(let value)): keyValue.createRevision = Revision(Int64(bitPattern: value))
            case (3, .varint(let value)): keyValue.modRevision = Revision(Int64(bitPattern: value))
            case (4, .varint(let value)): keyValue.version = Int64(bitPattern: value)
            case (5, .bytes(let value)): keyValue.value = value
            case (6, .varint(let value)): keyValue.lease = LeaseID(Int64(bitPattern: value))
            default: break  // a field this version does not know, as protobuf readers skip it
            }
        }
        return keyValue
    }
}

/// A bounds-checked reader of protobuf's wire format, for the few etcd records read here.
enum ProtobufFields {
    enum Field {
        case varint(UInt64)
        case bytes([UInt8])
        case fixed
    }

    static func forEach(in bytes: [UInt8], _ body: (_ number: UInt64, _ field: Field) throws -> Void) throws {
        var offset = 0
        func varint() throws -> UInt64 {
            var result: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                guard offset < bytes.count, shift < 64 else { throw EtcdBackendError("malformed protobuf record") }
                let byte = bytes[offset]
                offset += 1
                result |= UInt64(byte & 0x7F) << shift
                if byte < 0x80 { return result }
                shift += 7
            }
        }
        func skip(_ count: Int) throws {
            guard count >= 0, count <= bytes.count - offset else { throw EtcdBackendError("malformed protobuf record") }
            offset += count
        }
        while offset < bytes.count {
            let tag = try varint()
            switch tag & 7 {
            case 0: try body(tag >> 3, .varint(try varint()))
            case 1: try skip(8); try body(tag >> 3, .fixed)
            case 2:
                let length = try varint()
                guard length <= UInt64(bytes.count - offset) else { throw EtcdBackendError("malformed protobuf record") }
                let start = offset
                try skip(Int(length))
                try body(tag >> 3, .bytes(Array(bytes[start..<offset])))
            case 5: try skip(4); try body(tag >> 3, .fixed)
            default: throw EtcdBackendError("malformed protobuf record")
            }
        }
    }
}
