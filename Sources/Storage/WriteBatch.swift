internal import CRocksDB

/// A set of puts and deletes across column families, applied atomically by `Database.write`.
/// Not thread-safe: one writer builds it.
package final class WriteBatch {
    let batch: OpaquePointer

    package init() {
        batch = rocksdb_writebatch_create()!
    }

    deinit {
        rocksdb_writebatch_destroy(batch)
    }

    package var count: Int { Int(rocksdb_writebatch_count(batch)) }

    package func put(_ family: ColumnFamily, _ key: [UInt8], _ value: [UInt8]) {
        key.withUnsafeBufferPointer { k in
            value.withUnsafeBufferPointer { v in
                k.withMemoryRebound(to: CChar.self) { kc in
                    v.withMemoryRebound(to: CChar.self) { vc in
                        rocksdb_writebatch_put_cf(batch, family.handle, kc.baseAddress, kc.count, vc.baseAddress, vc.count)
                    }
                }
            }
        }
    }

    package func delete(_ family: ColumnFamily, _ key: [UInt8]) {
        key.withUnsafeBufferPointer { k in
            k.withMemoryRebound(to: CChar.self) { kc in
                rocksdb_writebatch_delete_cf(batch, family.handle, kc.baseAddress, kc.count)
            }
        }
    }

    /// Deletes every key in `[start, end)`.
    package func deleteRange(_ family: ColumnFamily, from start: [UInt8], to end: [UInt8]) {
        start.withUnsafeBufferPointer { s in
            end.withUnsafeBufferPointer { e in
                s.withMemoryRebound(to: CChar.self) { sc in
                    e.withMemoryRebound(to: CChar.self) { ec in
                        rocksdb_writebatch_delete_range_cf(batch, family.handle, sc.baseAddress, sc.count, ec.baseAddress, ec.count)
                    }
                }
            }
        }
    }

    /// Marks the current end of the batch, so that what follows can be undone on its own.
    package func setSavePoint() {
        rocksdb_writebatch_set_save_point(batch)
    }

    /// Undoes everything added since the latest save point, and drops that save point.
    package func rollbackToSavePoint() throws {
        var error: UnsafeMutablePointer<CChar>?
        rocksdb_writebatch_rollback_to_save_point(batch, &error)
        if let error { throw StorageError(takeMessage(error)) }
    }

    /// Keeps everything added since the latest save point, and drops that save point.
    package func popSavePoint() throws {
        var error: UnsafeMutablePointer<CChar>?
        rocksdb_writebatch_pop_save_point(batch, &error)
        if let error { throw StorageError(takeMessage(error)) }
    }

    package func clear() {
        rocksdb_writebatch_clear(batch)
    }
}
