// Range options shared by get, del and the txn requests (clientv3/op.go: WithPrefix, WithFromKey, getPrefix).

import Foundation

enum KeyRanges {
    /// The end of the range holding every key with `prefix` (clientv3's getPrefix): the prefix with its last byte
    /// below 0xff incremented and the rest dropped, or "\0" (all keys from `prefix`) when every byte is 0xff.
    static func prefixEnd(_ prefix: [UInt8]) -> [UInt8] {
        var end = prefix
        while let last = end.last {
            if last < 0xFF {
                end[end.count - 1] = last + 1
                return end
            }
            end.removeLast()
        }
        return [0]
    }

    /// Key and range end for etcdctl's `--prefix` / `--from-key` / explicit range_end handling.
    static func resolve(key: String, rangeEnd: String?, prefix: Bool, fromKey: Bool) -> (key: Data, end: Data) {
        var keyBytes = Array(key.utf8)
        var end: [UInt8] = rangeEnd.map { Array($0.utf8) } ?? []
        if prefix {
            if keyBytes.isEmpty {
                keyBytes = [0]
                end = [0]
            } else {
                end = prefixEnd(keyBytes)
            }
        }
        if fromKey {
            if keyBytes.isEmpty { keyBytes = [0] }
            end = [0]
        }
        return (Data(keyBytes), Data(end))
    }
}
