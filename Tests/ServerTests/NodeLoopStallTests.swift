// The node loop as a stage: what its submitters see while it cannot take a turn (stalled by
// blocking work on its event loop), when its inbox is full, and after it resumes. One member on a
// real RocksDB data directory; no network.
import Dispatch
import EtcdAPI
import Foundation
import Logging
import MVCC
import NIOCore
import Raft
import Synchronization
@testable import Server
import Testing

@Suite struct NodeLoopStallTests {
    private func makeMember(_ directory: String) async throws -> Member {
        var configuration = MemberConfiguration()
        configuration.name = "n1"
        configuration.dataDirectory = directory
        configuration.initialAdvertisePeerURLs = ["http://127.0.0.1:2380"]
        configuration.initialCluster = [(name: "n1", peerURLs: ["http://127.0.0.1:2380"])]
        return try await Member(configuration: configuration, logger: Logger(label: "test"))
    }

    private func put(_ loop: NodeLoop, _ key: String) async throws(APIError) -> WriteResult? {
        var request = Kvdpb_InternalRequest()
        request.put.key = Data(key.utf8)
        request.put.value = Data("v".utf8)
        return try await loop.propose(request)
    }

    @Test("a stalled loop never blocks a submitter; a full inbox refuses with etcd's error; the loop catches up",
          .timeLimit(.minutes(1)))
    func stallAndFullInbox() async throws {
        let directory = NSTemporaryDirectory() + "kvd-stall-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let member = try await makeMember(directory)
        let loop = member.loop
        loop.start()
        defer { loop.stop() }
        // The only voter elects itself at start: a put goes through.
        _ = try await put(loop, "before")

        // Stall the stage: blocking work on its event loop, as a long fsync or apply would be.
        let stall = DispatchSemaphore(value: 0)
        let stalled = DispatchSemaphore(value: 0)
        loop.eventLoop.execute {
            stalled.signal()
            // Bounded: if a check below hangs instead of failing, the loop still resumes.
            _ = stall.wait(timeout: .now() + 20)
        }
        stalled.wait()
        let startedFilling = ContinuousClock.now
        var accepted = 0
        while accepted <= NodeLoop.inboxMax, loop.submit(.unreachable(NodeID(99))) { accepted += 1 }
        // Every submit returned at once although nothing was taken out.
        #expect(accepted == NodeLoop.inboxMax)
        #expect(startedFilling.duration(to: .now) < .seconds(5))
        await #expect(throws: APIError.tooManyRequests) { try await put(loop, "refused") }

        // Resumed, the loop drains the inbox and serves again; the refused put changed nothing.
        stall.signal()
        // The turn queued by the first input of the stall runs before anything queued now.
        try await loop.eventLoop.submit {}.get()
        let afterStall = try await put(loop, "after")
        guard case .put(let result) = afterStall else {
            Issue.record("a put must yield a put result, got \(String(describing: afterStall))")
            return
        }
        #expect(result.headerRevision == Revision(3))  // "before" was revision 2: nothing in between
        #expect(member.loop.facts.withLock { $0.appliedIndex } > .zero)
    }
}
