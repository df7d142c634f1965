internal import Storage

extension ReadView {
    /// The changes with revisions in `[from, to]`, in revision order, as watch events; with
    /// `prevKV`, each carries the key's previous version. Watchers that fell behind catch up
    /// through this. `from` below the compaction point fails with `.compacted`.
    package func events(from: Revision, to: Revision, prevKV: Bool, limit: Int = 10_000) throws(MVCCError) -> [Event] {
        if from.value < compacted.value { throw .compacted }  // as etcd: watching from the compaction point itself is allowed
        let upper = min(to, current)
        guard from <= upper else { return [] }
        return try mapStorage {
            let reader = KeySpaceReader(store: store, view: view)
            let iterator = store.database.makeIterator(
                store.kv, lowerBound: RevisionKey(main: from, sub: 0).bytes,
                upperBound: RevisionKey(main: upper.next, sub: 0).bytes, in: view
            )
            iterator.seekToFirst()
            var events: [Event] = []
            var lastMain = Revision(0)
            while iterator.isValid {
                let revision = RevisionKey(bytes: iterator.key)
                // Stop only between revisions: one revision's changes are never split.
                if events.count >= limit && revision.main != lastMain { break }
                lastMain = revision.main
                let change = StoredChange(decoding: iterator.value)
                let previous = prevKV ? try reader.get(change.keyValue.key, at: Revision(revision.main.value - 1)) : nil
                events.append(Event(kind: change.isTombstone ? .delete : .put, keyValue: change.keyValue, prevKV: previous))
                iterator.next()
            }
            try iterator.checkError()
            return events
        }
    }
}
