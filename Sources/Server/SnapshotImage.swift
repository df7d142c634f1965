internal import Foundation
internal import Storage

/// A point-in-time image of the applied state (the MVCC and membership column families) as one
/// file: what a follower behind the leader's log compaction receives and installs (clients get
/// etcd's backend format instead, `EtcdBackupFile`). Records: family index (u8), key length (u32), key, value
/// length (u32), value; all big-endian. A family index of 0xFF ends the image (what follows is
/// padding).
enum SnapshotImage {
    /// Writes every entry of `families` as seen by `view` to `path`, then fsyncs it.
    static func write(_ database: Database, families: [String], view: ConsistentView, to path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: nil), let file = FileHandle(forWritingAtPath: path) else {
            throw StorageError("cannot create snapshot image \(path)")
        }
        defer { try? file.close() }  // closed after synchronize below; a second close is harmless
        var buffer: [UInt8] = []
        buffer.reserveCapacity(1 << 20)
        for (position, name) in families.enumerated() {
            let iterator = database.makeIterator(database.columnFamily(name), in: view)
            iterator.seekToFirst()
            while iterator.isValid {
                let key = iterator.key
                let value = iterator.value
                buffer.append(UInt8(position))
                appendLength(key.count, to: &buffer)
                buffer.append(contentsOf: key)
                appendLength(value.count, to: &buffer)
                buffer.append(contentsOf: value)
                if buffer.count >= 1 << 20 {
                    try file.write(contentsOf: buffer)
                    buffer.removeAll(keepingCapacity: true)
                }
                iterator.next()
            }
            try iterator.checkError()
        }
        try file.write(contentsOf: buffer)
        try file.synchronize()
    }

    /// Adds to `batch` the replacement of `families` by the image at `path`.
    static func install(from path: String, into batch: WriteBatch, database: Database, families: [String]) throws {
        let handles = families.map { database.columnFamily($0) }
        // RocksDB has no "delete everything": delete a range covering all realistic keys, then
        // any key sorting after its end one by one.
        let bound = [UInt8](repeating: 0xFF, count: 64)
        for handle in handles {
            batch.deleteRange(handle, from: [], to: bound)
            let stragglers = database.makeIterator(handle, lowerBound: bound)
            stragglers.seekToFirst()
            while stragglers.isValid {
                batch.delete(handle, stragglers.key)
                stragglers.next()
            }
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw StorageError("cannot read snapshot image \(path)")
        }
        let bytes = [UInt8](data)
        var offset = 0
        func length() throws -> Int {
            guard offset + 4 <= bytes.count else { throw StorageError("snapshot image \(path) is truncated") }
            defer { offset += 4 }
            return bytes[offset..<(offset + 4)].reduce(0) { $0 << 8 | Int($1) }
        }
        func take(_ count: Int) throws -> [UInt8] {
            guard offset + count <= bytes.count else { throw StorageError("snapshot image \(path) is truncated") }
            defer { offset += count }
            return Array(bytes[offset..<(offset + count)])
        }
        while offset < bytes.count {
            let family = Int(bytes[offset])
            offset += 1
            if family == Self.endMarker { break }
            guard family < handles.count else { throw StorageError("snapshot image \(path) names unknown family \(family)") }
            let key = try take(try length())
            let value = try take(try length())
            batch.put(handles[family], key, value)
        }
    }

    static let endMarker = 0xFF

    private static func appendLength(_ count: Int, to buffer: inout [UInt8]) {
        for shift in stride(from: 24, through: 0, by: -8) { buffer.append(UInt8(truncatingIfNeeded: count >> shift)) }
    }
}
