import Foundation
@testable import Server
import Storage
import Testing

@Suite struct SnapshotImageTests {
    private func openDatabase(_ directory: URL, _ name: String) throws -> Database {
        try Database(path: directory.appendingPathComponent(name).path, columnFamilies: Member.columnFamilies)
    }

    @Test("installing another member's image keeps this member's identity and takes the image's membership")
    func installKeepsIdentity() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kvd-image-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }

        let leader = try openDatabase(directory, "leader")
        var membership = Membership()
        membership.upsert(MemberRecord(id: MemberID(0xA), name: "n1", peerURLs: ["https://n1:2380"], clientURLs: [], isLearner: false))
        let leaderBatch = WriteBatch()
        Membership.saveIdentity(cluster: MemberID(0xC), member: MemberID(0xA), into: leaderBatch, database: leader)
        membership.save(into: leaderBatch, database: leader)
        try leader.write(leaderBatch, sync: true)
        let image = directory.appendingPathComponent("image.snap").path
        try SnapshotImage.write(leader, families: NodeLoop.stateFamilies, view: leader.makeConsistentView(), to: image)

        let follower = try openDatabase(directory, "follower")
        let followerBatch = WriteBatch()
        Membership.saveIdentity(cluster: MemberID(0xC), member: MemberID(0xB), into: followerBatch, database: follower)
        try follower.write(followerBatch, sync: true)
        let install = WriteBatch()
        try SnapshotImage.install(from: image, into: install, database: follower, families: NodeLoop.stateFamilies)
        try follower.write(install, sync: true)

        let identity = try #require(try Membership.loadIdentity(from: follower))
        #expect(identity.member == MemberID(0xB))
        #expect(identity.cluster == MemberID(0xC))
        #expect(try Membership.load(from: follower) == membership)
    }
}
