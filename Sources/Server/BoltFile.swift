internal import Foundation

// bbolt's file format (go.etcd.io/bbolt, version 2), the container of etcd's backend and so of
// every etcd `snapshot.db`: fixed-size pages, each with a 16-byte header (id u64, flags u16,
// count u16, overflow u32; little-endian, as bbolt writes it on the machines etcd runs on).
// Pages 0 and 1 are meta pages (bbolt commits by alternating them), the freelist page lists
// unused pages, and every bucket is a B+tree of branch and leaf pages whose root page the
// parent's leaf names. A node bigger than one page spans `overflow` more pages.

/// Layout constants of bbolt's pages.
enum BoltLayout {
    static let pageSize = 4096
    static let headerSize = 16
    static let elementSize = 16
    static let magic: UInt32 = 0xED0C_DAED
    static let version: UInt32 = 2
    static let branchPage: UInt16 = 0x01
    static let leafPage: UInt16 = 0x02
    static let metaPage: UInt16 = 0x04
    static let freelistPage: UInt16 = 0x10
    /// A leaf element whose value is a nested bucket (its root page and sequence).
    static let bucketElement: UInt32 = 0x01
    /// The bucket header at the front of a bucket's value: root page id, sequence.
    static let bucketHeaderSize = 16
    /// Bytes of the meta that its FNV-1a checksum covers (everything before the checksum).
    static let metaChecksummed = 56
    /// The pages of an empty database's frame: meta 0, meta 1, the freelist.
    static let firstDataPage: UInt64 = 3
}

/// Why a file could not be read as a bbolt database.
struct BoltFormatError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Writes a bbolt database of top-level buckets, each filled in key order, as pages fill: memory
/// holds one page and each tree's branch keys, never the data (a snapshot of any size).
/// Pages are packed full (bbolt's writes leave them half full; any fill reads the same).
final class BoltWriter {
    private let file: FileHandle
    private var pending: [UInt8] = []
    /// The next page id to allocate. Invariant: every page below it is written or is 0-2.
    private var nextPage = BoltLayout.firstDataPage
    /// The top-level buckets written so far, with their root pages, in name order.
    private var buckets: [(name: [UInt8], root: UInt64)] = []
    /// The bucket being filled.
    private var tree: TreeBuilder?

    init(path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: nil), let file = FileHandle(forWritingAtPath: path)
        else { throw BoltFormatError("cannot create \(path)") }
        self.file = file
        // The frame (metas, freelist) is written last, once the roots are known.
        try file.write(contentsOf: [UInt8](repeating: 0, count: Int(BoltLayout.firstDataPage) * BoltLayout.pageSize))
    }

    deinit { try? file.close() }  // after finish() synchronised it; otherwise the file is abandoned

    /// Starts the next top-level bucket; names must come in byte order (bbolt's).
    func beginBucket(_ name: [UInt8]) {
        precondition(tree == nil, "a bucket is still open")
        precondition(buckets.last.map { $0.name.lexicographicallyPrecedes(name) } ?? true, "buckets out of order")
        tree = TreeBuilder(name: name)
    }

    /// Adds a key to the open bucket; keys must come in byte order.
    func put(_ key: [UInt8], _ value: [UInt8]) throws {
        try tree!.add(key: key, value: value, flags: 0, writer: self)
    }

    func endBucket() throws {
        let root = try tree!.finish(writer: self)
        buckets.append((tree!.name, root))
        tree = nil
    }

    /// Writes the root bucket, the freelist and both metas, and syncs. Returns the file's size.
    func finish() throws -> UInt64 {
        precondition(tree == nil, "a bucket is still open")
        var rootTree = TreeBuilder(name: [])
        for bucket in buckets {
            var header = [UInt8]()
            appendLittleEndian(bucket.root, to: &header)
            appendLittleEndian(UInt64(0), to: &header)  // sequence
            try rootTree.add(key: bucket.name, value: header, flags: BoltLayout.bucketElement, writer: self)
        }
        let root = try rootTree.finish(writer: self)
        try flush()
        var frame = [UInt8]()
        for txid in [UInt64(0), 1] { frame += Self.metaPage(id: txid, root: root, highWater: nextPage, txid: txid) }
        frame += Self.pageHeader(id: 2, flags: BoltLayout.freelistPage, count: 0, overflow: 0)
        frame += [UInt8](repeating: 0, count: BoltLayout.pageSize - BoltLayout.headerSize)
        try file.seek(toOffset: 0)
        try file.write(contentsOf: frame)
        try file.synchronize()
        return nextPage * UInt64(BoltLayout.pageSize)
    }

    private static func metaPage(id: UInt64, root: UInt64, highWater: UInt64, txid: UInt64) -> [UInt8] {
        var meta = [UInt8]()
        appendLittleEndian(BoltLayout.magic, to: &meta)
        appendLittleEndian(BoltLayout.version, to: &meta)
        appendLittleEndian(UInt32(BoltLayout.pageSize), to: &meta)
        appendLittleEndian(UInt32(0), to: &meta)  // flags
        appendLittleEndian(root, to: &meta)
        appendLittleEndian(UInt64(0), to: &meta)  // the root bucket's sequence
        appendLittleEndian(UInt64(2), to: &meta)  // the freelist page
        appendLittleEndian(highWater, to: &meta)
        appendLittleEndian(txid, to: &meta)
        appendLittleEndian(fnv1a64(meta), to: &meta)
        let page = pageHeader(id: id, flags: BoltLayout.metaPage, count: 0, overflow: 0) + meta
        return page + [UInt8](repeating: 0, count: BoltLayout.pageSize - page.count)
    }

    static func pageHeader(id: UInt64, flags: UInt16, count: Int, overflow: UInt32) -> [UInt8] {
        var header = [UInt8]()
        appendLittleEndian(id, to: &header)
        appendLittleEndian(flags, to: &header)
        appendLittleEndian(UInt16(count), to: &header)
        appendLittleEndian(overflow, to: &header)
        return header
    }

    /// Writes one node (a leaf or branch page and its overflow) and returns its page id.
    fileprivate func writeNode(flags: UInt16, elements: [(flags: UInt32, key: [UInt8], value: [UInt8], child: UInt64)])
        throws -> UInt64
    {
        let id = nextPage
        let size = BoltLayout.headerSize + elements.reduce(0) { $0 + BoltLayout.elementSize + $1.key.count + $1.value.count }
        let pages = (size + BoltLayout.pageSize - 1) / BoltLayout.pageSize
        var node = Self.pageHeader(id: id, flags: flags, count: elements.count, overflow: UInt32(pages - 1))
        node.reserveCapacity(pages * BoltLayout.pageSize)
        // Elements first, then the keys and values; each element's `pos` counts from the element.
        var data = BoltLayout.headerSize + elements.count * BoltLayout.elementSize
        for (index, element) in elements.enumerated() {
            let position = UInt32(data - (BoltLayout.headerSize + index * BoltLayout.elementSize))
            if flags == BoltLayout.leafPage {
                appendLittleEndian(element.flags, to: &node)
                appendLittleEndian(position, to: &node)
                appendLittleEndian(UInt32(element.key.count), to: &node)
                appendLittleEndian(UInt32(element.value.count), to: &node)
            } else {
                appendLittleEndian(position, to: &node)
                appendLittleEndian(UInt32(element.key.count), to: &node)
                appendLittleEndian(element.child, to: &node)
            }
            data += element.key.count + element.value.count
        }
        for element in elements {
            node += element.key
            node += element.value
        }
        node += [UInt8](repeating: 0, count: pages * BoltLayout.pageSize - node.count)
        pending += node
        nextPage += UInt64(pages)
        if pending.count >= 1 << 20 { try flush() }
        return id
    }

    private func flush() throws {
        try file.write(contentsOf: pending)
        pending.removeAll(keepingCapacity: true)
    }
}

/// One bucket's B+tree, built bottom-up: leaves are written as they fill; the first key of each
/// node is kept to build the branch levels above when the bucket ends.
private struct TreeBuilder {
    let name: [UInt8]
    private var leaf: [(flags: UInt32, key: [UInt8], value: [UInt8], child: UInt64)] = []
    private var leafBytes = BoltLayout.headerSize
    /// The first key and page of every node written on the level being built.
    private var children: [(key: [UInt8], page: UInt64)] = []
    private var lastKey: [UInt8]?

    init(name: [UInt8]) { self.name = name }

    mutating func add(key: [UInt8], value: [UInt8], flags: UInt32, writer: BoltWriter) throws {
        precondition(lastKey.map { $0.lexicographicallyPrecedes(key) } ?? true, "keys out of order")
        lastKey = key
        let bytes = BoltLayout.elementSize + key.count + value.count
        if !leaf.isEmpty && leafBytes + bytes > BoltLayout.pageSize { try writeLeaf(writer) }
        leaf.append((flags, key, value, 0))
        leafBytes += bytes
    }

    private mutating func writeLeaf(_ writer: BoltWriter) throws {
        // An empty bucket's one leaf has no first key; it is the only node, so none is needed.
        children.append((leaf.first?.key ?? [], try writer.writeNode(flags: BoltLayout.leafPage, elements: leaf)))
        leaf.removeAll(keepingCapacity: true)
        leafBytes = BoltLayout.headerSize
    }

    /// Writes what is left and the branch levels; returns the root page.
    mutating func finish(writer: BoltWriter) throws -> UInt64 {
        // An empty bucket is one empty leaf.
        if !leaf.isEmpty || children.isEmpty { try writeLeaf(writer) }
        var level = children
        while level.count > 1 {
            var above: [(key: [UInt8], page: UInt64)] = []
            var node: [(flags: UInt32, key: [UInt8], value: [UInt8], child: UInt64)] = []
            var nodeBytes = BoltLayout.headerSize
            for child in level {
                let bytes = BoltLayout.elementSize + child.key.count
                // At least two children per branch, or a long key could make a level that never shrinks.
                if node.count >= 2 && nodeBytes + bytes > BoltLayout.pageSize {
                    above.append((node[0].key, try writer.writeNode(flags: BoltLayout.branchPage, elements: node)))
                    node.removeAll(keepingCapacity: true)
                    nodeBytes = BoltLayout.headerSize
                }
                node.append((0, child.key, [], child.page))
                nodeBytes += bytes
            }
            above.append((node[0].key, try writer.writeNode(flags: BoltLayout.branchPage, elements: node)))
            level = above
        }
        return level[0].page
    }
}

/// Reads a bbolt database file (mapped, not loaded): its top-level buckets and their keys in
/// order, as bbolt's cursors return them. Every offset is checked against the file, so a
/// damaged file is an error, never a crash.
struct BoltReader {
    private let data: Data
    let pageSize: Int
    /// The root bucket's root page.
    private let root: UInt64
    /// The number of pages in use (bbolt's high water mark): the database's size in pages.
    let highWater: UInt64

    init(path: String) throws {
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        } catch {
            throw BoltFormatError("open \(path): \(error.localizedDescription)")
        }
        var best: (txid: UInt64, pageSize: Int, root: UInt64, highWater: UInt64)?
        // Meta 0 is at the start; meta 1 one page further, at meta 0's page size (or bbolt's default).
        for offset in [0, nil] as [Int?] {
            let start = offset ?? best?.pageSize ?? BoltLayout.pageSize
            guard let meta = Self.meta(in: data, at: start) else { continue }
            if best == nil || meta.txid > best!.txid { best = meta }
        }
        guard let best else { throw BoltFormatError("invalid database") }
        pageSize = best.pageSize
        root = best.root
        highWater = best.highWater
    }

    /// A meta page's fields if it is valid (magic, version, checksum), as bbolt's `meta.validate`.
    private static func meta(in data: Data, at page: Int) -> (txid: UInt64, pageSize: Int, root: UInt64, highWater: UInt64)? {
        let start = page + BoltLayout.headerSize
        guard data.count >= start + BoltLayout.metaChecksummed + 8 else { return nil }
        let bytes = [UInt8](data[start..<(start + BoltLayout.metaChecksummed + 8)])
        guard littleEndian(bytes, 0, as: UInt32.self) == BoltLayout.magic,
            littleEndian(bytes, 4, as: UInt32.self) == BoltLayout.version
        else { return nil }
        let checksum = littleEndian(bytes, BoltLayout.metaChecksummed, as: UInt64.self)
        guard checksum == 0 || checksum == fnv1a64(bytes[..<BoltLayout.metaChecksummed]) else { return nil }
        let pageSize = Int(littleEndian(bytes, 8, as: UInt32.self))
        guard pageSize >= 512, pageSize <= 1 << 20 else { return nil }
        return (littleEndian(bytes, 48, as: UInt64.self), pageSize, littleEndian(bytes, 16, as: UInt64.self),
            littleEndian(bytes, 40, as: UInt64.self))
    }

    /// A bucket: the root page of its tree, or (inline, a small bucket) the page stored in its
    /// parent's value.
    enum Bucket {
        case page(UInt64)
        case inline([UInt8])
    }

    /// The top-level buckets, in order.
    func buckets() throws -> [(name: [UInt8], bucket: Bucket)] {
        var found: [(name: [UInt8], bucket: Bucket)] = []
        try forEach(in: .page(root)) { key, value, isBucket in
            guard isBucket else { return }
            found.append((key, try Self.bucket(from: value)))
        }
        return found
    }

    /// The bucket named `name` at the top level, if there is one.
    func bucket(named name: String) throws -> Bucket? {
        try buckets().first { $0.name == Array(name.utf8) }?.bucket
    }

    private static func bucket(from value: [UInt8]) throws -> Bucket {
        guard value.count >= BoltLayout.bucketHeaderSize else { throw BoltFormatError("bucket header is too short") }
        let root = littleEndian(value, 0, as: UInt64.self)
        return root == 0 ? .inline(Array(value[BoltLayout.bucketHeaderSize...])) : .page(root)
    }

    /// Calls `body` with every key of `bucket` in order, its value, and whether it is a nested bucket.
    func forEach(in bucket: Bucket, _ body: (_ key: [UInt8], _ value: [UInt8], _ isBucket: Bool) throws -> Void) throws {
        switch bucket {
        case .page(let id): try walk(page: id, depth: 0, body)
        case .inline(let page): try Self.readNode(page, at: 0, depth: 0, isInline: true, body) { _, _ in }
        }
    }

    private func walk(page id: UInt64, depth: Int, _ body: (_ key: [UInt8], _ value: [UInt8], _ isBucket: Bool) throws -> Void) throws {
        // Within the file too, before the page number becomes an offset: a damaged meta may name
        // any 64-bit number as the high water mark.
        guard id < highWater, id >= 2, id < UInt64(data.count / pageSize) else {
            throw BoltFormatError("page \(id): out of bounds: \(highWater)")
        }
        let start = Int(id) * pageSize
        let header = try bytes(start, BoltLayout.headerSize)
        let overflow = Int(littleEndian(header, 12, as: UInt32.self))
        let node = try bytes(start, (overflow + 1) * pageSize)
        try Self.readNode(node, at: 0, depth: depth, isInline: false, body) { child, depth in
            try walk(page: child, depth: depth, body)
        }
    }

    /// Reads one node: a leaf's elements go to `body`, a branch's children to `descend`.
    private static func readNode(
        _ node: [UInt8], at start: Int, depth: Int, isInline: Bool,
        _ body: (_ key: [UInt8], _ value: [UInt8], _ isBucket: Bool) throws -> Void,
        descend: (_ child: UInt64, _ depth: Int) throws -> Void
    ) throws {
        guard depth < 64 else { throw BoltFormatError("tree deeper than 64 levels") }
        guard node.count >= BoltLayout.headerSize else { throw BoltFormatError("page is too short") }
        let flags = littleEndian(node, 8, as: UInt16.self)
        let count = Int(littleEndian(node, 10, as: UInt16.self))
        guard BoltLayout.headerSize + count * BoltLayout.elementSize <= node.count else {
            throw BoltFormatError("page has more elements than fit")
        }
        func slice(_ from: Int, _ length: Int) throws -> [UInt8] {
            guard from >= 0, length >= 0, from + length <= node.count else { throw BoltFormatError("element out of its page") }
            return Array(node[from..<(from + length)])
        }
        for index in 0..<count {
            let element = BoltLayout.headerSize + index * BoltLayout.elementSize
            if flags & BoltLayout.leafPage != 0 {
                let elementFlags = littleEndian(node, element, as: UInt32.self)
                let position = element + Int(littleEndian(node, element + 4, as: UInt32.self))
                let keySize = Int(littleEndian(node, element + 8, as: UInt32.self))
                let valueSize = Int(littleEndian(node, element + 12, as: UInt32.self))
                try body(try slice(position, keySize), try slice(position + keySize, valueSize),
                    elementFlags & BoltLayout.bucketElement != 0)
            } else if flags & BoltLayout.branchPage != 0 && !isInline {
                try descend(littleEndian(node, element + 8, as: UInt64.self), depth + 1)
            } else {
                throw BoltFormatError("page of unexpected type \(flags)")
            }
        }
    }

    private func bytes(_ start: Int, _ count: Int) throws -> [UInt8] {
        guard start >= 0, count >= 0, start + count <= data.count else {
            throw BoltFormatError("page beyond the end of the file")
        }
        return [UInt8](data[start..<(start + count)])
    }
}

private func appendLittleEndian<T: FixedWidthInteger>(_ value: T, to out: inout [UInt8]) {
    withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) }
}

private func littleEndian<T: FixedWidthInteger>(_ bytes: [UInt8], _ offset: Int, as: T.Type) -> T {
    var value: T = 0
    for index in (0..<MemoryLayout<T>.size).reversed() { value = value << 8 | T(bytes[offset + index]) }
    return value
}

/// FNV-1a, 64 bits: the checksum of bbolt's meta pages.
private func fnv1a64(_ bytes: some Sequence<UInt8>) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
    return hash
}
