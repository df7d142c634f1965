internal import CRocksDB

/// A RocksDB snapshot: reads through it see the database as it was when it was taken.
/// (Named apart from Raft snapshots on purpose.)
package final class ConsistentView: @unchecked Sendable {
    // @unchecked: RocksDB snapshots are immutable and may be read from any thread; both pointers
    // are set once in init.
    private let database: Database
    let snapshot: OpaquePointer
    let readOptions: OpaquePointer

    init(database: Database) {
        self.database = database
        snapshot = rocksdb_create_snapshot(database.db)!
        readOptions = rocksdb_readoptions_create()!
        rocksdb_readoptions_set_snapshot(readOptions, snapshot)
    }

    deinit {
        rocksdb_readoptions_destroy(readOptions)
        rocksdb_release_snapshot(database.db, snapshot)
    }
}
