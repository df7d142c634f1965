/// The live keys of the latest revision, in key order, counted by position: how many lie in a
/// range is two binary searches and a sum, not a walk of the range.
///
/// Why: etcd's Range returns the number of keys in the whole range with every page, and
/// kube-apiserver pages its lists; counting a prefix of a million keys by walking `key_index`
/// took 0.4-0.9 s per page. Only creations and deletions change this set (an update of a live
/// key does not), so the writer keeps it beside its index of live revisions and publishes a
/// copy with each round; a reader's copy is a snapshot that later writes do not change.
///
/// A sorted array cut into chunks of at most `chunkMax` keys: an insert or a removal moves at
/// most a chunk's keys, and copies (of the chunk list and the chunks it touches) happen only
/// while a published copy still shares them.
package struct LiveKeySet: @unchecked Sendable {
    // @unchecked: a chunk is mutated only while uniquely referenced (copied first otherwise),
    // so a copy handed to another thread never changes underneath it.
    private final class Chunk {
        var keys: [[UInt8]]
        init(_ keys: [[UInt8]]) { self.keys = keys }
    }

    /// Non-empty chunks; every key of a chunk precedes every key of the next.
    private var chunks: [Chunk] = []
    /// The number of keys.
    package private(set) var count = 0

    static let chunkMax = 512
    /// A chunk this small after a removal is merged into its neighbour when they fit in one.
    static let chunkMin = 64

    package init() {}

    /// A set of `sortedKeys` (ascending, distinct).
    package init<Keys: Sequence<[UInt8]>>(sortedKeys: Keys) {
        var chunk: [[UInt8]] = []
        chunk.reserveCapacity(Self.chunkMax / 2)
        for key in sortedKeys {
            chunk.append(key)
            if chunk.count == Self.chunkMax / 2 {
                chunks.append(Chunk(chunk))
                count += chunk.count
                chunk.removeAll(keepingCapacity: true)
            }
        }
        if !chunk.isEmpty {
            chunks.append(Chunk(chunk))
            count += chunk.count
        }
    }

    package func contains(_ key: [UInt8]) -> Bool {
        guard let c = chunkIndex(for: key) else { return false }
        let keys = chunks[c].keys
        let position = Self.lowerBound(key, in: keys)
        return position < keys.count && keys[position] == key
    }

    /// Adds `key`; false if it was there.
    @discardableResult
    package mutating func insert(_ key: [UInt8]) -> Bool {
        guard !chunks.isEmpty else {
            chunks = [Chunk([key])]
            count = 1
            return true
        }
        // The first chunk whose last key is not below `key`, or the last chunk.
        let c = chunkIndex(for: key) ?? chunks.count - 1
        let position = Self.lowerBound(key, in: chunks[c].keys)
        if position < chunks[c].keys.count && chunks[c].keys[position] == key { return false }
        let chunk = uniqueChunk(at: c)
        chunk.keys.insert(key, at: position)
        count += 1
        if chunk.keys.count > Self.chunkMax {
            let upper = Array(chunk.keys[(chunk.keys.count / 2)...])
            chunk.keys.removeLast(upper.count)
            chunks.insert(Chunk(upper), at: c + 1)
        }
        return true
    }

    /// Removes `key`; false if it was not there.
    @discardableResult
    package mutating func remove(_ key: [UInt8]) -> Bool {
        guard let c = chunkIndex(for: key) else { return false }
        let position = Self.lowerBound(key, in: chunks[c].keys)
        guard position < chunks[c].keys.count && chunks[c].keys[position] == key else { return false }
        let chunk = uniqueChunk(at: c)
        chunk.keys.remove(at: position)
        count -= 1
        if chunk.keys.isEmpty {
            chunks.remove(at: c)
        } else if chunk.keys.count < Self.chunkMin, c + 1 < chunks.count, chunk.keys.count + chunks[c + 1].keys.count <= Self.chunkMax {
            chunk.keys.append(contentsOf: chunks[c + 1].keys)
            chunks.remove(at: c + 1)
        }
        return true
    }

    /// The number of keys in `range`.
    package func count(in range: KeyRange) -> Int {
        switch range {
        case .key(let key): contains(key) ? 1 : 0
        case .from(let start): count - rank(start)
        case .range(let start, let end): max(0, rank(end) - rank(start))
        }
    }

    /// The number of keys below `key`.
    private func rank(_ key: [UInt8]) -> Int {
        guard let c = chunkIndex(for: key) else { return count }
        var below = 0
        for chunk in chunks[..<c] { below += chunk.keys.count }
        return below + Self.lowerBound(key, in: chunks[c].keys)
    }

    /// The first chunk whose last key is not below `key`; nil when every key is below it.
    private func chunkIndex(for key: [UInt8]) -> Int? {
        var low = 0, high = chunks.count
        while low < high {
            let middle = (low + high) / 2
            if chunks[middle].keys.last!.lexicographicallyPrecedes(key) { low = middle + 1 } else { high = middle }
        }
        return low < chunks.count ? low : nil
    }

    /// The position of the first key of `keys` not below `key`.
    private static func lowerBound(_ key: [UInt8], in keys: [[UInt8]]) -> Int {
        var low = 0, high = keys.count
        while low < high {
            let middle = (low + high) / 2
            if keys[middle].lexicographicallyPrecedes(key) { low = middle + 1 } else { high = middle }
        }
        return low
    }

    /// The chunk at `index`, copied first if a published copy of the set shares it.
    private mutating func uniqueChunk(at index: Int) -> Chunk {
        if !isKnownUniquelyReferenced(&chunks[index]) { chunks[index] = Chunk(chunks[index].keys) }
        return chunks[index]
    }
}
