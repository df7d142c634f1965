internal import CRocksDB
#if canImport(Glibc)
internal import Glibc
#endif

/// How a database is opened.
package struct DatabaseOptions: Sendable {
    /// Create the directory and missing column families on first open.
    package var createIfMissing = true
    /// Upper bound on open table files; RocksDB's default (-1, unlimited) can exhaust descriptors.
    package var maxOpenFilesMax: Int32 = 512
    /// One LRU cache of uncompressed blocks shared by every column family. What does not fit is
    /// still in the kernel's page cache, so this trades resident memory for fewer decompressions.
    package var blockCacheBytes = 32 * 1024 * 1024
    /// The unit a memtable takes memory in. RocksDB's default (1 MiB here) made a family with one
    /// small write count as 1 MiB in the database's size, which etcd's space quota is checked
    /// against; in 4 KiB blocks the size follows the data (one allocation per ~4 KiB written).
    package var memtableBlockBytes = 4096
    /// Once the write-ahead log files together exceed this, RocksDB flushes the column families
    /// that pin the oldest one. All families share one log, and a rarely written family (the
    /// membership, the lease table) otherwise keeps every log file since its last write alive:
    /// unbounded, that was most of a data directory after a bulk load. Since a family's memtable
    /// is only freed by its flush, this also bounds the memory all memtables hold.
    package var walBytesMax: UInt64 = 64 * 1024 * 1024
    /// Where the write-ahead log files go (etcd's `--wal-dir`: the synced log on a device of its
    /// own); nil keeps them beside the tables. RocksDB recovers only from this directory, so a
    /// database must always be opened with the one it was created with.
    package var walDirectory: String?

    package init() {}
}

/// A column family handle, valid for the lifetime of the `Database` that returned it.
package struct ColumnFamily: @unchecked Sendable {
    // @unchecked: a RocksDB column family handle is immutable and thread-safe once created; the
    // owning `Database` keeps it alive until it closes.
    let handle: OpaquePointer
    /// The name it was opened under.
    package let name: String
}

/// A RocksDB database with named column families. RocksDB's `DB` is safe for concurrent use, so
/// this wrapper is too: reads may run on any thread while one writer applies batches.
package final class Database: @unchecked Sendable {
    // @unchecked: every stored property is set once in `init` and only read afterwards; RocksDB
    // documents `DB*` and column family handles as thread-safe.
    let db: OpaquePointer
    private let options: OpaquePointer
    private let syncWrite: OpaquePointer
    private let asyncWrite: OpaquePointer
    let defaultRead: OpaquePointer
    private let families: [String: ColumnFamily]
    /// The directory the database lives in.
    package let path: String

    /// Opens (or creates) the database at `path` with exactly these column families besides
    /// "default". A locked or corrupt directory throws RocksDB's message.
    package init(path: String, columnFamilies: [String], options databaseOptions: DatabaseOptions = .init()) throws {
        self.path = path
        let options = rocksdb_options_create()!
        rocksdb_options_set_create_if_missing(options, databaseOptions.createIfMissing ? 1 : 0)
        rocksdb_options_set_create_missing_column_families(options, 1)
        rocksdb_options_set_max_open_files(options, databaseOptions.maxOpenFilesMax)
        rocksdb_options_increase_parallelism(options, 2)
        rocksdb_options_set_max_total_wal_size(options, databaseOptions.walBytesMax)
        rocksdb_options_set_arena_block_size(options, databaseOptions.memtableBlockBytes)
        if let walDirectory = databaseOptions.walDirectory { rocksdb_options_set_wal_dir(options, walDirectory) }
        // LZ4 where data is rewritten soon (cheap to compress again), zstd at the bottom level,
        // which holds most of the data and is rewritten least.
        rocksdb_options_set_compression(options, Int32(rocksdb_lz4_compression))
        rocksdb_options_set_bottommost_compression(options, Int32(rocksdb_zstd_compression))
        // Level targets sized from the bottom level up: at most ~10% of the data is obsolete
        // versions in upper levels, against up to 100% with fixed targets on a growing database.
        rocksdb_options_set_level_compaction_dynamic_level_bytes(options, 1)
        // No bloom filters: `kv` keys are revisions, written in order, so each level has at most one
        // table whose key range holds a revision, and `key_index` is read by seeks, which a
        // whole-key filter cannot answer.
        let table = rocksdb_block_based_options_create()!
        let cache = rocksdb_cache_create_lru(databaseOptions.blockCacheBytes)!
        rocksdb_block_based_options_set_block_cache(table, cache)
        rocksdb_options_set_block_based_table_factory(options, table)  // copies the table options and the cache reference
        rocksdb_block_based_options_destroy(table)
        rocksdb_cache_destroy(cache)

        let names = ["default"] + columnFamilies.filter { $0 != "default" }
        var handles = [OpaquePointer?](repeating: nil, count: names.count)
        var error: UnsafeMutablePointer<CChar>?
        let cNames = names.map { strdup($0) }
        defer { cNames.forEach { free($0) } }
        var constNames = cNames.map { UnsafePointer($0) }
        var familyOptions = [OpaquePointer?](repeating: options, count: names.count)
        let opened = constNames.withUnsafeMutableBufferPointer { namePointers in
            familyOptions.withUnsafeMutableBufferPointer { optionPointers in
                handles.withUnsafeMutableBufferPointer { handlePointers in
                    rocksdb_open_column_families(
                        options, path, Int32(names.count), namePointers.baseAddress,
                        optionPointers.baseAddress, handlePointers.baseAddress, &error
                    )
                }
            }
        }
        if let error {
            rocksdb_options_destroy(options)
            throw StorageError(takeMessage(error))
        }
        guard let opened else {
            rocksdb_options_destroy(options)
            throw StorageError("rocksdb: open of \(path) failed without a message")
        }
        self.db = opened
        self.options = options
        var families: [String: ColumnFamily] = [:]
        for (name, handle) in zip(names, handles) {
            families[name] = ColumnFamily(handle: handle!, name: name)
        }
        self.families = families
        self.syncWrite = rocksdb_writeoptions_create()!
        rocksdb_writeoptions_set_sync(syncWrite, 1)
        self.asyncWrite = rocksdb_writeoptions_create()!
        rocksdb_writeoptions_set_sync(asyncWrite, 0)
        self.defaultRead = rocksdb_readoptions_create()!
    }

    deinit {
        for family in families.values {
            rocksdb_column_family_handle_destroy(family.handle)
        }
        rocksdb_close(db)
        rocksdb_options_destroy(options)
        rocksdb_writeoptions_destroy(syncWrite)
        rocksdb_writeoptions_destroy(asyncWrite)
        rocksdb_readoptions_destroy(defaultRead)
    }

    /// The column family opened under `name`. Asking for one that was not opened is a programmer error.
    package func columnFamily(_ name: String) -> ColumnFamily {
        guard let family = families[name] else {
            preconditionFailure("column family \(name) was not opened")
        }
        return family
    }

    /// Writes `batch` atomically. With `sync`, returns only after the WAL is fsynced.
    package func write(_ batch: WriteBatch, sync: Bool) throws {
        var error: UnsafeMutablePointer<CChar>?
        rocksdb_write(db, sync ? syncWrite : asyncWrite, batch.batch, &error)
        if let error { throw StorageError(takeMessage(error)) }
    }

    /// Fsyncs everything written so far: the group-commit point after several unsynced batches.
    package func syncWAL() throws {
        var error: UnsafeMutablePointer<CChar>?
        rocksdb_flush_wal(db, 1, &error)
        if let error { throw StorageError(takeMessage(error)) }
    }

    /// The value stored under `key`, or nil. Reads the latest state, or `view`'s when given.
    package func get(_ family: ColumnFamily, _ key: [UInt8], in view: ConsistentView? = nil) throws -> [UInt8]? {
        var error: UnsafeMutablePointer<CChar>?
        var length = 0
        let readOptions = view?.readOptions ?? defaultRead
        let value = key.withUnsafeBufferPointer { keyBuffer in
            keyBuffer.withMemoryRebound(to: CChar.self) { chars in
                rocksdb_get_cf(db, readOptions, family.handle, chars.baseAddress, chars.count, &length, &error)
            }
        }
        if let error { throw StorageError(takeMessage(error)) }
        guard let value else { return nil }
        defer { rocksdb_free(value) }
        return [UInt8](UnsafeRawBufferPointer(start: value, count: length))
    }

    /// The values stored under `keys` (nil where absent), in the order of `keys`, read as one
    /// batch: RocksDB looks the keys up level by level and block by block together, where one
    /// `get` per key searched every level's index for each (most of a 10,000-key page's time).
    /// `keys` must be in ascending byte order.
    package func get(_ family: ColumnFamily, sortedKeys keys: [[UInt8]], in view: ConsistentView? = nil) throws -> [[UInt8]?] {
        guard !keys.isEmpty else { return [] }
        precondition(zip(keys, keys.dropFirst()).allSatisfy { !$1.lexicographicallyPrecedes($0) }, "keys out of order")
        let readOptions = view?.readOptions ?? defaultRead
        var slices = [OpaquePointer?](repeating: nil, count: keys.count)
        var errors = [UnsafeMutablePointer<CChar>?](repeating: nil, count: keys.count)
        var sizes = keys.map(\.count)
        // The keys' storage, pinned for the call: one buffer, each key at its offset.
        var bytes = [CChar]()
        bytes.reserveCapacity(sizes.reduce(0, +))
        for key in keys { bytes.append(contentsOf: key.lazy.map { CChar(bitPattern: $0) }) }
        bytes.withUnsafeBufferPointer { buffer in
            var pointers: [UnsafePointer<CChar>?] = []
            pointers.reserveCapacity(keys.count)
            var offset = 0
            for size in sizes {
                pointers.append(buffer.baseAddress.map { $0 + offset })
                offset += size
            }
            pointers.withUnsafeBufferPointer { keyPointers in
                sizes.withUnsafeMutableBufferPointer { sizePointers in
                    slices.withUnsafeMutableBufferPointer { slicePointers in
                        errors.withUnsafeMutableBufferPointer { errorPointers in
                            rocksdb_batched_multi_get_cf(
                                db, readOptions, family.handle, keys.count, keyPointers.baseAddress, sizePointers.baseAddress,
                                slicePointers.baseAddress, errorPointers.baseAddress, true)
                        }
                    }
                }
            }
        }
        defer { for slice in slices { if let slice { rocksdb_pinnableslice_destroy(slice) } } }
        var failure: String?
        for case let error? in errors {
            if failure == nil { failure = takeMessage(error) } else { rocksdb_free(error) }
        }
        if let failure { throw StorageError(failure) }
        return slices.map { slice in
            guard let slice else { return nil }
            var length = 0
            guard let value = rocksdb_pinnableslice_value(slice, &length) else { return [] }
            return [UInt8](UnsafeRawBufferPointer(start: value, count: length))
        }
    }

    /// An iterator over `family` restricted to `[lowerBound, upperBound)` (nil means unbounded).
    package func makeIterator(
        _ family: ColumnFamily,
        lowerBound: [UInt8]? = nil,
        upperBound: [UInt8]? = nil,
        in view: ConsistentView? = nil
    ) -> DatabaseIterator {
        DatabaseIterator(database: self, family: family, lowerBound: lowerBound, upperBound: upperBound, view: view)
    }

    /// A consistent point-in-time view for reads; released when the value is dropped.
    package func makeConsistentView() -> ConsistentView {
        ConsistentView(database: self)
    }

    /// Writes an openable copy of the database to `path` (hard links where possible).
    package func checkpoint(to path: String) throws {
        var error: UnsafeMutablePointer<CChar>?
        guard let checkpoint = rocksdb_checkpoint_object_create(db, &error) else {
            throw StorageError(error.map(takeMessage) ?? "rocksdb: checkpoint object creation failed")
        }
        defer { rocksdb_checkpoint_object_destroy(checkpoint) }
        rocksdb_checkpoint_create(checkpoint, path, 0, &error)
        if let error { throw StorageError(takeMessage(error)) }
    }

    /// Compacts the whole of `family`, reclaiming space held by deleted entries.
    package func compact(_ family: ColumnFamily) {
        rocksdb_compact_range_cf(db, family.handle, nil, 0, nil, 0)
    }

    /// Bytes of live SST files plus memtables in `names`' families: what etcd reports as the db
    /// size when they are the ones its backend file holds.
    package func approximateSizeBytes(of names: [String]) -> Int64 {
        var total: Int64 = 0
        for family in names.map(columnFamily) {
            for property in ["rocksdb.total-sst-files-size", "rocksdb.cur-size-all-mem-tables"] {
                if let value = rocksdb_property_value_cf(db, family.handle, property) {
                    total += Int64(String(cString: value)) ?? 0
                    rocksdb_free(value)
                }
            }
        }
        return total
    }
}

/// Copies RocksDB's error string and frees it.
func takeMessage(_ error: UnsafeMutablePointer<CChar>) -> String {
    defer { rocksdb_free(error) }
    return String(cString: error)
}
