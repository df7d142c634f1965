// The corruption check's verdict on a peer's hash, as etcd's initial check decides it: only
// hashes over the same range (the same compaction point) can show damaged data.
@testable internal import Server
internal import Testing
internal import Transport

@Suite struct CorruptionCheckTests {
    static let local = PeerHashKV(hash: 7, compactRevision: 10, revision: 50, memberID: 1)

    @Test(arguments: [
        (PeerHashKV(hash: 7, compactRevision: 10, revision: 50, memberID: 2), CorruptionCheck.Verdict.agrees),
        (PeerHashKV(hash: 8, compactRevision: 10, revision: 50, memberID: 2), .differs),
        (PeerHashKV(hash: 8, compactRevision: 20, revision: 50, memberID: 2), .otherCompaction),
        (PeerHashKV(hash: 7, compactRevision: 20, revision: 50, memberID: 2), .agrees),
    ])
    func verdict(peer: PeerHashKV, expected: CorruptionCheck.Verdict) {
        #expect(CorruptionCheck.verdict(local: Self.local, peer: peer) == expected)
    }
}
