// A watch as kube-apiserver's watch cache opens it (etcd3/watcher.go): prefix, start at the list
// revision + 1, prev_kv, progress_notify, and the gRPC metadata `hasleader=true`
// (clientv3.WithRequireLeader) so that a member without a leader ends the stream and the client
// moves on. When the stream breaks the watcher opens a new one on the next member, from the last
// event's revision + 1, as the reflector does. Everything received is kept, in arrival order, for
// WatchCheck to judge afterwards.

internal import EtcdAPI
internal import Foundation
internal import GRPCCore
internal import Synchronization

final class Watcher: Sendable {
    enum Item: Sendable {
        /// A new stream, on endpoint `endpoint`, starting at `startRevision`.
        case session(endpoint: Int, startRevision: Int64)
        case response(Etcdserverpb_WatchResponse)
        /// The stream ended (error or end of stream) before we stopped it.
        case ended(String)
    }

    struct State {
        /// Everything, in arrival order.
        var items: [Item] = []
        /// The highest event revision received.
        var lastEventRevision: Int64 = 0
        /// The highest revision the watcher knows to be complete: events and progress responses.
        var knownRevision: Int64 = 0
        /// The current stream's request side (nil between streams).
        var sender: AsyncStream<Etcdserverpb_WatchRequest>.Continuation? = nil
        /// Progress notifications (progress_notify) received: no events, the watcher's own ID.
        var progressNotifications = 0
        /// Set once the server canceled the watcher (for example: start revision compacted).
        var canceled = false
    }

    let key: Data
    let rangeEnd: Data
    let state = Mutex(State())

    init(prefix: Data) {
        key = prefix
        rangeEnd = prefixEnd(prefix)
    }

    var snapshot: State { state.withLock { $0 } }

    var items: [Item] { state.withLock { $0.items } }

    /// Watches from `startRevision` until cancelled; with `resume`, a broken stream is reopened on
    /// the next endpoint, otherwise the watcher stops with the first stream.
    func run(cluster: Cluster, endpoint firstEndpoint: Int, startRevision: Int64, resume: Bool) async {
        var endpoint = firstEndpoint
        var start = startRevision
        while !Task.isCancelled {
            state.withLock { $0.items.append(.session(endpoint: endpoint, startRevision: start)) }
            let end = await session(on: cluster.connections[endpoint], startRevision: start)
            if Task.isCancelled { return }
            let (canceled, last) = state.withLock { state in
                state.items.append(.ended(end))
                return (state.canceled, state.lastEventRevision)
            }
            guard resume, !canceled else { return }
            start = max(start, last + 1)
            endpoint = (endpoint + 1) % cluster.connections.count
            // `try?`: a cancelled sleep ends the loop at the check above.
            try? await Task.sleep(for: .milliseconds(100))
        }
    }

    private func session(on connection: Connection, startRevision: Int64) async -> String {
        var create = Etcdserverpb_WatchCreateRequest()
        create.key = key
        create.rangeEnd = rangeEnd
        create.startRevision = startRevision
        create.prevKv = true
        create.progressNotify = true
        var first = Etcdserverpb_WatchRequest()
        first.createRequest = create
        let (outgoing, sender) = AsyncStream<Etcdserverpb_WatchRequest>.makeStream()
        sender.yield(first)
        state.withLock { $0.sender = sender }
        defer {
            state.withLock { $0.sender = nil }
            sender.finish()
        }
        var metadata = Metadata()
        metadata.addString("true", forKey: "hasleader")
        var options = CallOptions.defaults
        options.waitForReady = false
        do {
            try await Etcdserverpb_Watch.Client(wrapping: connection).watch(
                metadata: metadata, options: options,
                requestProducer: { writer in
                    for await request in outgoing { try await writer.write(request) }
                },
                onResponse: { response in
                    for try await message in response.messages {
                        if self.record(message) { return }
                    }
                }
            )
            return state.withLock { $0.canceled } ? "canceled by the server" : "stream ended by the server"
        } catch {
            return "\(error)"
        }
    }

    /// Keeps one response; returns whether the watcher was canceled (the stream is then done).
    private func record(_ response: Etcdserverpb_WatchResponse) -> Bool {
        state.withLock { state in
            state.items.append(.response(response))
            if let last = response.events.last {
                state.lastEventRevision = max(state.lastEventRevision, last.kv.modRevision)
                state.knownRevision = max(state.knownRevision, last.kv.modRevision)
            } else if !response.created && !response.canceled {
                state.knownRevision = max(state.knownRevision, response.header.revision)
                if response.watchID != -1 { state.progressNotifications += 1 }
            }
            if response.canceled { state.canceled = true }
            return response.canceled
        }
    }

    /// Sends RequestProgress on the current stream (none between streams).
    func requestProgress() {
        var request = Etcdserverpb_WatchRequest()
        request.progressRequest = Etcdserverpb_WatchProgressRequest()
        _ = state.withLock { $0.sender }?.yield(request)
    }

    /// The watch cache's consistent read (cacher.go waitUntilFreshAndBlock with the progress
    /// requester): RequestProgress every 100 ms until the watcher knows `revision`.
    func waitForRevision(_ revision: Int64, timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if state.withLock({ $0.knownRevision }) >= revision { return true }
            requestProgress()
            // `try?`: cancellation shows as a timeout to the caller, which then fails its check.
            try? await Task.sleep(for: .milliseconds(100))
        }
        return state.withLock { $0.knownRevision } >= revision
    }

    /// Waits (polling) until `condition` holds over what was received.
    func waitUntil(timeout: Duration, _ condition: (State) -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if condition(snapshot) { return true }
            // `try?`: cancellation shows as a timeout to the caller, which then fails its check.
            try? await Task.sleep(for: .milliseconds(50))
        }
        return condition(snapshot)
    }
}
