internal import CRocksDB

/// A cursor over one column family within optional bounds `[lowerBound, upperBound)`. Keys and
/// values are copied out, so they stay valid after the cursor moves. Not thread-safe.
package final class DatabaseIterator {
    private let iterator: OpaquePointer
    private let readOptions: OpaquePointer
    // RocksDB keeps pointers to the bounds: they must outlive the iterator.
    private let lowerBound: UnsafeMutableBufferPointer<UInt8>?
    private let upperBound: UnsafeMutableBufferPointer<UInt8>?
    // Keep the database and the snapshot alive while we iterate.
    private let view: ConsistentView?
    private let database: Database

    init(database: Database, family: ColumnFamily, lowerBound: [UInt8]?, upperBound: [UInt8]?, view: ConsistentView?) {
        self.database = database
        self.view = view
        let options = rocksdb_readoptions_create()!
        if let view { rocksdb_readoptions_set_snapshot(options, view.snapshot) }
        let lower = lowerBound.map(Self.copy)
        let upper = upperBound.map(Self.copy)
        if let lower {
            lower.withMemoryRebound(to: CChar.self) { rocksdb_readoptions_set_iterate_lower_bound(options, $0.baseAddress, $0.count) }
        }
        if let upper {
            upper.withMemoryRebound(to: CChar.self) { rocksdb_readoptions_set_iterate_upper_bound(options, $0.baseAddress, $0.count) }
        }
        readOptions = options
        self.lowerBound = lower
        self.upperBound = upper
        iterator = rocksdb_create_iterator_cf(database.db, readOptions, family.handle)!
    }

    private static func copy(_ bytes: [UInt8]) -> UnsafeMutableBufferPointer<UInt8> {
        let buffer = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: bytes.count)
        _ = buffer.initialize(from: bytes)
        return buffer
    }

    deinit {
        rocksdb_iter_destroy(iterator)
        rocksdb_readoptions_destroy(readOptions)
        lowerBound?.deallocate()
        upperBound?.deallocate()
    }

    package var isValid: Bool { rocksdb_iter_valid(iterator) != 0 }

    package func seekToFirst() { rocksdb_iter_seek_to_first(iterator) }
    package func seekToLast() { rocksdb_iter_seek_to_last(iterator) }

    /// Positions at the first key >= `target`.
    package func seek(_ target: [UInt8]) {
        target.withUnsafeBufferPointer { t in
            t.withMemoryRebound(to: CChar.self) { rocksdb_iter_seek(iterator, $0.baseAddress, $0.count) }
        }
    }

    /// Positions at the last key <= `target`.
    package func seekForPrev(_ target: [UInt8]) {
        target.withUnsafeBufferPointer { t in
            t.withMemoryRebound(to: CChar.self) { rocksdb_iter_seek_for_prev(iterator, $0.baseAddress, $0.count) }
        }
    }

    package func next() { rocksdb_iter_next(iterator) }
    package func previous() { rocksdb_iter_prev(iterator) }

    /// The current key. Only valid while `isValid`.
    package var key: [UInt8] {
        var length = 0
        let pointer = rocksdb_iter_key(iterator, &length)!
        return [UInt8](UnsafeRawBufferPointer(start: pointer, count: length))
    }

    /// The current value. Only valid while `isValid`.
    package var value: [UInt8] {
        var length = 0
        let pointer = rocksdb_iter_value(iterator, &length)!
        return [UInt8](UnsafeRawBufferPointer(start: pointer, count: length))
    }

    /// Calls `body` with the current key without copying it; the pointer dies when the cursor moves.
    package func withKey<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        var length = 0
        let pointer = rocksdb_iter_key(iterator, &length)!
        return try body(UnsafeRawBufferPointer(start: pointer, count: length))
    }

    /// Calls `body` with the current value without copying it; the pointer dies when the cursor moves.
    package func withValue<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        var length = 0
        let pointer = rocksdb_iter_value(iterator, &length)!
        return try body(UnsafeRawBufferPointer(start: pointer, count: length))
    }

    /// Throws if iteration stopped because of an error rather than the end of the range.
    package func checkError() throws {
        var error: UnsafeMutablePointer<CChar>?
        rocksdb_iter_get_error(iterator, &error)
        if let error { throw StorageError(takeMessage(error)) }
    }
}
