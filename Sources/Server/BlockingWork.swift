internal import NIOPosix

/// Runs `work`, which may read storage for long (a listing, a hash of the whole key space, a watch
/// catching up), on NIO's blocking pool. Tasks run on the event loops
/// (`Member.runTasksOnEventLoops`), and a loop held by one long read would stall every call,
/// watch and keep-alive that shares it.
func blocking<T: Sendable, Failure: Error>(_ work: @escaping @Sendable () throws(Failure) -> T) async throws(Failure) -> T {
    // The shared pool cannot be shut down, so it always runs the work; should it ever refuse,
    // the work runs here instead.
    let result = (try? await NIOThreadPool.singleton.runIfActive { Result(catching: work) }) ?? Result(catching: work)
    return try result.get()
}
