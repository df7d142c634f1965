internal import Storage

/// A granted lease as the applied state knows it: its TTL and the keys attached to it.
package struct LeaseRecord: Sendable, Equatable {
    package var id: LeaseID
    package var ttlSeconds: Int64
    /// Keys whose current version names this lease.
    package var keys: Set<[UInt8]>
}

/// The applied lease table (the `lease` column family: ID → granted TTL) and the keys attached
/// to each lease, which are derived from the live keys and rebuilt at open (as etcd does), so that
/// nothing but the key space itself records an attachment.
struct LeaseTable {
    var records: [LeaseID: LeaseRecord] = [:]

    static func key(_ id: LeaseID) -> [UInt8] { Revision(id.value).bytesBigEndian }

    /// The table as of `revision`: the store's state being loaded, which is not yet the one it
    /// publishes while it reloads.
    static func load(store: MVCCStore, at revision: Revision) throws -> LeaseTable {
        var table = LeaseTable()
        let iterator = store.database.makeIterator(store.lease)
        iterator.seekToFirst()
        while iterator.isValid {
            let id = LeaseID(Int64(bitPattern: readBigEndian(iterator.key, at: 0)))
            let ttl = Int64(bitPattern: readBigEndian(iterator.value, at: 0))
            table.records[id] = LeaseRecord(id: id, ttlSeconds: ttl, keys: [])
            iterator.next()
        }
        try iterator.checkError()
        guard !table.records.isEmpty else { return table }
        let reader = KeySpaceReader(store: store, view: nil)
        for keyValue in try reader.range(.from([0]), at: revision, limit: 0).keyValues where keyValue.lease != .none {
            table.records[keyValue.lease]?.keys.insert(keyValue.key)
        }
        return table
    }

    /// Moves `key` from the lease of its previous version to the lease of its new one (nil: deleted).
    mutating func reattach(_ key: [UInt8], from old: LeaseID?, to new: LeaseID?) {
        if let old, old != .none { records[old]?.keys.remove(key) }
        if let new, new != .none { records[new]?.keys.insert(key) }
    }
}
