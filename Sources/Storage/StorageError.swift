/// An error reported by RocksDB, carrying RocksDB's own message so that an operator sees the
/// real cause ("IO error: lock ... : Resource temporarily unavailable", "Corruption: ...").
package struct StorageError: Error, CustomStringConvertible, Sendable, Equatable {
    /// RocksDB's message, or ours when the failure happened before RocksDB was called.
    package let message: String

    package init(_ message: String) {
        self.message = message
    }

    package var description: String { message }
}
