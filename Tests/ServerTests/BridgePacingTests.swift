// The bridge's pacing: a bridged call's handler may write only `BridgePacing.window` messages
// ahead of what has reached its stream.
import Synchronization
@testable import Server
import Testing

@Suite struct BridgePacingTests {
    @Test func aWriterWaitsOnceTheWindowIsFull() async throws {
        let credit = BridgePacing.register()
        defer { BridgePacing.unregister(credit) }
        for _ in 0..<BridgePacing.window { await credit.acquire() }
        let acquired = Atomic(false)
        let waiter = Task {
            await credit.acquire()
            acquired.store(true, ordering: .sequentiallyConsistent)
        }
        try await Task.sleep(for: .milliseconds(100))
        let beforeRelease = acquired.load(ordering: .sequentiallyConsistent)
        #expect(beforeRelease == false)
        credit.release()
        await waiter.value
        let afterRelease = acquired.load(ordering: .sequentiallyConsistent)
        #expect(afterRelease)
    }

    @Test func anEndedCallReleasesItsWaiters() async throws {
        let credit = BridgePacing.register()
        for _ in 0..<BridgePacing.window { await credit.acquire() }
        let waiter = Task { await credit.acquire() }
        try await Task.sleep(for: .milliseconds(100))  // waiting by now
        BridgePacing.unregister(credit)
        await waiter.value  // would hang if the end left it waiting
        await credit.acquire()  // and nothing waits after the end
    }
}
