internal import Dispatch
internal import Foundation
internal import KVDCommand
internal import Server

// Before anything creates a task: Swift's tasks are to run on the member's event loops.
Member.runTasksOnEventLoops(environment: ProcessInfo.processInfo.environment)
let finished = DispatchSemaphore(value: 0)
Task.detached {
    await runKVD()
    finished.signal()
}
finished.wait()
