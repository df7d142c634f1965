// `blocking`: long storage reads leave the event loops, which are also where tasks run.
import NIOCore
import NIOPosix
@testable import Server
import Testing

@Suite struct BlockingWorkTests {
    private struct Refused: Error, Equatable { let reason: String }

    @Test func runsOffTheEventLoopThatAwaitsIt() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let onALoop = try await loop.makeFutureWithTask {
            try await blocking { () throws(Refused) in MultiThreadedEventLoopGroup.currentEventLoop != nil }
        }.get()
        #expect(onALoop == false)
    }

    @Test func returnsTheValueAndTheTypedError() async {
        #expect(await blocking { () throws(Never) in 6 * 7 } == 42)
        await #expect(throws: Refused(reason: "compacted")) {
            try await blocking { () throws(Refused) -> Int in throw Refused(reason: "compacted") }
        }
    }
}
