/// The order-preserving, prefix-free encoding of user keys used in the `key_index` column family:
/// 0x00 becomes 0x00 0xFF and the key ends with 0x00 0x01. Appending a revision to an encoded key
/// then keeps all revisions of one key together and keys in byte order ("a" < "a\0" < "b"), which
/// a plain concatenation would not (the revision's leading zero bytes would interleave keys).
enum KeyEncoding {
    static func encode(_ key: [UInt8]) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(key.count + 2 + 16)
        for byte in key {
            out.append(byte)
            if byte == 0 { out.append(0xFF) }
        }
        out.append(0)
        out.append(1)
        return out
    }

    /// The encoded key's length (terminator included) at the front of `bytes`.
    static func encodedLength(in bytes: UnsafeRawBufferPointer) -> Int {
        var i = 0
        while i + 1 < bytes.count {
            if bytes[i] == 0 {
                if bytes[i + 1] == 1 { return i + 2 }
                i += 2
            } else {
                i += 1
            }
        }
        preconditionFailure("key_index entry without a key terminator")
    }

    static func decode(_ encoded: some Collection<UInt8>) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(encoded.count)
        var escaped = false
        for byte in encoded.dropLast(2) {
            if escaped {
                escaped = false
                continue
            }
            out.append(byte)
            if byte == 0 { escaped = true }
        }
        return out
    }
}
