internal import Crypto

/// A member ID or cluster ID, printed in hex as etcd does.
package struct MemberID: Hashable, Sendable, CustomStringConvertible {
    package var value: UInt64
    package init(_ value: UInt64) { self.value = value }
    package var description: String { String(value, radix: 16) }
}

/// The IDs etcd derives from the initial cluster configuration, so that every member (and every
/// restart) computes the same ones (etcd `membership/member.go`, `membership/cluster.go`).
package enum ClusterIdentity {
    /// First 8 bytes of SHA-1 over the member's sorted peer URLs joined, then the cluster token.
    package static func memberID(peerURLs: [String], token: String) -> MemberID {
        let bytes = Array((peerURLs.sorted().joined() + token).utf8)
        return MemberID(firstWord(of: bytes))
    }

    /// First 8 bytes of SHA-1 over the sorted member IDs, each big-endian.
    package static func clusterID(memberIDs: [MemberID]) -> MemberID {
        var bytes: [UInt8] = []
        for id in memberIDs.map(\.value).sorted() {
            for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: id >> UInt64(shift))) }
        }
        return MemberID(firstWord(of: bytes))
    }

    private static func firstWord(of bytes: [UInt8]) -> UInt64 {
        let digest = Array(Insecure.SHA1.hash(data: bytes))
        return digest.prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
    }
}
