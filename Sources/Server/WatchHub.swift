internal import SwiftProtobuf
package import EtcdAPI
internal import Foundation
package import MVCC
internal import Synchronization

/// Identifies one gRPC Watch stream.
package typealias WatchStreamID = UInt64

/// Every watcher of this member and the event feed that serves them.
///
/// A watcher is either *synced* (it has seen everything up to the hub's revision and is fed live
/// by `publish`) or *unsynced* (it starts in the past or fell behind a full outbox, and the
/// syncer feeds it from storage until it catches up). Both paths and every control response go
/// through one FIFO outbox per stream, under one lock, so ordering holds: no event is lost or
/// duplicated at the hand-over, and a progress response never precedes events at or below its
/// revision. A slow stream never blocks writes: its outbox is bounded and its watchers drop to
/// the storage path when it is full.
package final class WatchHub: Sendable {
    struct Watcher {
        var streamID: WatchStreamID
        var watchID: Int64
        var range: KeyRange
        var noPut: Bool
        var noDelete: Bool
        var prevKV: Bool
        var progressNotify: Bool
        var fragment: Bool
        /// The next revision this watcher needs.
        var next: Revision
        var synced: Bool

        func matches(_ event: Event) -> Bool {
            if noPut && event.kind == .put { return false }
            if noDelete && event.kind == .delete { return false }
            return range.contains(event.keyValue.key)
        }
    }

    struct StreamState {
        var outbox: [Etcdserverpb_WatchResponse] = []
        var outboxEvents = 0
        var wake: AsyncStream<Void>.Continuation
        var nextAutoID: Int64 = 0
        /// A RequestProgress is waiting for every watcher of the stream to catch up.
        var progressPending = false
    }

    struct State {
        /// The latest revision published to watchers.
        var current: Revision
        var watchers: [WatcherKey: Watcher] = [:]
        var streams: [WatchStreamID: StreamState] = [:]
        var nextStreamID: WatchStreamID = 1
    }

    struct WatcherKey: Hashable {
        var stream: WatchStreamID
        var watchID: Int64
    }

    /// Events queued per stream before its watchers fall back to storage.
    static let outboxEventsMax = 4_096
    /// Revisions read from storage per catch-up step.
    static let catchUpEventsMax = 1_000

    private let state: Mutex<State>
    private let store: MVCCStore
    /// Responses of `fragment` watchers are split to stay under this size (etcd: --max-request-bytes).
    private let fragmentBytesMax: Int
    /// Wakes the syncer when a watcher needs the storage path.
    private let syncerWake: AsyncStream<Void>.Continuation
    let syncerWakeups: AsyncStream<Void>

    package init(store: MVCCStore, fragmentBytesMax: Int) {
        self.store = store
        self.fragmentBytesMax = fragmentBytesMax
        state = Mutex(State(current: store.currentRevision))
        (syncerWakeups, syncerWake) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// After a snapshot install replaced the state underneath: every watcher catches up from
    /// storage, since the live feed skipped what the snapshot brought.
    func resynchronize() {
        state.withLock { state in
            state.current = store.currentRevision
            for key in state.watchers.keys { state.watchers[key]!.synced = false }
        }
        syncerWake.yield()
    }

    private func enqueueEvents(_ response: Etcdserverpb_WatchResponse, for watcher: Watcher, in state: inout State) {
        guard watcher.fragment, response.events.count > 1, response.serializedSizeBytes >= fragmentBytesMax else {
            Self.enqueue(response, events: response.events.count, to: watcher.streamID, in: &state)
            return
        }
        // etcd `sendFragments`: as many events per piece as fit, every piece but the last flagged.
        var index = 0
        while index < response.events.count {
            var piece = response
            piece.events = []
            piece.fragment = true
            while index < response.events.count {
                piece.events.append(response.events[index])
                if piece.events.count > 1 && piece.serializedSizeBytes >= fragmentBytesMax {
                    piece.events.removeLast()
                    break
                }
                index += 1
            }
            if index == response.events.count { piece.fragment = false }
            Self.enqueue(piece, events: piece.events.count, to: watcher.streamID, in: &state)
        }
    }

    // MARK: streams

    package func openStream() -> (WatchStreamID, AsyncStream<Void>) {
        let (wakeups, wake) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let id = state.withLock { state in
            let id = state.nextStreamID
            state.nextStreamID += 1
            state.streams[id] = StreamState(wake: wake)
            return id
        }
        return (id, wakeups)
    }

    func closeStream(_ id: WatchStreamID) {
        let wake = state.withLock { state in
            state.watchers = state.watchers.filter { $0.key.stream != id }
            return state.streams.removeValue(forKey: id)?.wake
        }
        wake?.finish()
    }

    /// Takes everything queued for the stream.
    package func drain(_ id: WatchStreamID) -> [Etcdserverpb_WatchResponse] {
        state.withLock { state in
            guard var stream = state.streams[id] else { return [] }
            let out = stream.outbox
            stream.outbox.removeAll(keepingCapacity: true)
            stream.outboxEvents = 0
            state.streams[id] = stream
            return out
        }
    }

    // MARK: requests

    /// Answers a create request that may not watch: created and cancelled at once, with etcd's reason.
    package func refuse(_ reason: String, on streamID: WatchStreamID) {
        state.withLock { state in
            guard state.streams[streamID] != nil else { return }
            var response = Etcdserverpb_WatchResponse()
            response.header.revision = state.current.value
            response.created = true
            response.canceled = true
            response.watchID = -1
            response.cancelReason = reason
            Self.enqueue(response, events: 0, to: streamID, in: &state)
        }
    }

    package func create(_ request: Etcdserverpb_WatchCreateRequest, on streamID: WatchStreamID) {
        var key = Array(request.key)
        if key.isEmpty { key = [0] }  // etcd: "\0" is the smallest key
        let range = KeyRange(key: key, rangeEnd: Array(request.rangeEnd))
        state.withLock { state in
            guard state.streams[streamID] != nil else { return }
            var response = Etcdserverpb_WatchResponse()
            response.header.revision = state.current.value
            response.created = true
            if case .range(let start, let end) = range, !start.lexicographicallyPrecedes(end) {
                response.watchID = -1
                response.canceled = true
                response.cancelReason = "mvcc: watcher range is empty"
                Self.enqueue(response, events: 0, to: streamID, in: &state)
                return
            }
            var watchID = request.watchID
            if watchID == 0 {
                while state.watchers[WatcherKey(stream: streamID, watchID: state.streams[streamID]!.nextAutoID)] != nil {
                    state.streams[streamID]!.nextAutoID += 1
                }
                watchID = state.streams[streamID]!.nextAutoID
                state.streams[streamID]!.nextAutoID += 1
            } else if state.watchers[WatcherKey(stream: streamID, watchID: watchID)] != nil {
                response.watchID = -1
                response.canceled = true
                response.cancelReason = "mvcc: duplicate watch ID provided on the WatchStream"
                Self.enqueue(response, events: 0, to: streamID, in: &state)
                return
            }
            let start = request.startRevision == 0 ? state.current.next : Revision(request.startRevision)
            let watcher = Watcher(
                streamID: streamID, watchID: watchID, range: range,
                noPut: request.filters.contains(.noput), noDelete: request.filters.contains(.nodelete),
                prevKV: request.prevKv, progressNotify: request.progressNotify, fragment: request.fragment,
                next: start, synced: start > state.current
            )
            state.watchers[WatcherKey(stream: streamID, watchID: watchID)] = watcher
            response.watchID = watchID
            Self.enqueue(response, events: 0, to: streamID, in: &state)
        }
        syncerWake.yield()
    }

    func cancel(_ watchID: Int64, on streamID: WatchStreamID) {
        state.withLock { state in
            guard state.watchers.removeValue(forKey: WatcherKey(stream: streamID, watchID: watchID)) != nil else { return }
            var response = Etcdserverpb_WatchResponse()
            response.header.revision = state.current.value
            response.watchID = watchID
            response.canceled = true
            Self.enqueue(response, events: 0, to: streamID, in: &state)
            Self.maybeAnswerProgress(streamID, in: &state)
        }
    }

    /// RequestProgress: answered with the current revision once every watcher of the stream has
    /// caught up to it (etcd 3.5 semantics, which Kubernetes' consistent reads rely on).
    func requestProgress(on streamID: WatchStreamID) {
        state.withLock { state in
            state.streams[streamID]?.progressPending = true
            Self.maybeAnswerProgress(streamID, in: &state)
        }
    }

    /// Periodic progress notifications for synced watchers that asked for them.
    func notifyProgress() {
        state.withLock { state in
            for (key, watcher) in state.watchers where watcher.progressNotify && watcher.synced && watcher.next <= state.current.next {
                var response = Etcdserverpb_WatchResponse()
                response.header.revision = state.current.value
                response.watchID = key.watchID
                Self.enqueue(response, events: 0, to: key.stream, in: &state)
            }
        }
    }

    private static func maybeAnswerProgress(_ streamID: WatchStreamID, in state: inout State) {
        guard state.streams[streamID]?.progressPending == true else { return }
        let current = state.current
        let behind = state.watchers.values.contains { watcher in
            // Not caught up, or waiting for a start revision beyond the current one.
            watcher.streamID == streamID && (!watcher.synced || watcher.next > current.next)
        }
        guard !behind else { return }
        var response = Etcdserverpb_WatchResponse()
        response.header.revision = current.value
        response.watchID = -1
        state.streams[streamID]!.progressPending = false
        enqueue(response, events: 0, to: streamID, in: &state)
    }

    private static func enqueue(_ response: Etcdserverpb_WatchResponse, events: Int, to streamID: WatchStreamID, in state: inout State) {
        guard state.streams[streamID] != nil else { return }
        state.streams[streamID]!.outbox.append(response)
        state.streams[streamID]!.outboxEvents += events
        state.streams[streamID]!.wake.yield()
    }

    // MARK: the live feed (node loop thread)

    /// Feeds the events of an apply round (revision order) to synced watchers. Never blocks: a
    /// watcher whose stream outbox is full is moved to the storage path.
    package func publish(_ events: [Event], revision: Revision) {
        // Each event is converted to protobuf at most once per shape (with or without prev_kv),
        // however many watchers it matches; the copies share the key and value buffers.
        var converted = ConvertedEvents(events)
        state.withLock { state in
            for (key, watcher) in state.watchers where watcher.synced {
                let matching = events.indices.filter { events[$0].keyValue.modRevision >= watcher.next && watcher.matches(events[$0]) }
                if !matching.isEmpty {
                    guard let stream = state.streams[key.stream], stream.outboxEvents + matching.count <= Self.outboxEventsMax else {
                        state.watchers[key]!.synced = false  // fell behind: catch up from storage
                        syncerWake.yield()
                        continue
                    }
                    var response = Etcdserverpb_WatchResponse()
                    response.header.revision = revision.value
                    response.watchID = key.watchID
                    response.events = matching.map { converted.event($0, prevKV: watcher.prevKV) }
                    enqueueEvents(response, for: watcher, in: &state)
                }
                if watcher.next <= revision { state.watchers[key]!.next = revision.next }
            }
            state.current = max(state.current, revision)
            for streamID in state.streams.keys { Self.maybeAnswerProgress(streamID, in: &state) }
        }
    }

    // MARK: the storage path (the syncer task)

    /// One catch-up step for every unsynced watcher. Returns whether any is still behind.
    func syncUnsynced() -> Bool {
        let pending = state.withLock { state in
            state.watchers.filter { !$0.value.synced }.map { ($0.key, $0.value, state.current) }
        }
        guard !pending.isEmpty else { return false }
        var stillBehind = false
        let view = store.readView()
        for (key, watcher, target) in pending {
            let events: [Event]
            do {
                events = try view.events(from: watcher.next, to: target, prevKV: watcher.prevKV, limit: Self.catchUpEventsMax)
            } catch .compacted {
                compacted(key, compactRevision: view.compacted)
                continue
            } catch {
                stillBehind = true
                continue
            }
            let reached = events.last.map { $0.keyValue.modRevision } ?? target
            let complete = events.count < Self.catchUpEventsMax || reached >= target
            let matching = events.filter(watcher.matches)
            state.withLock { state in
                guard var current = state.watchers[key], !current.synced, current.next == watcher.next,
                      let stream = state.streams[key.stream] else { return }
                if !matching.isEmpty {
                    guard stream.outboxEvents < Self.outboxEventsMax else { stillBehind = true; return }  // retry later
                    var response = Etcdserverpb_WatchResponse()
                    response.header.revision = state.current.value
                    response.watchID = key.watchID
                    response.events = matching.map { Mvccpb_Event($0, prevKV: watcher.prevKV) }
                    enqueueEvents(response, for: watcher, in: &state)
                }
                current.next = complete ? target.next : reached.next
                // Caught up only if nothing was published since we read: the hand-over point.
                current.synced = complete && state.current == target
                if !current.synced { stillBehind = true }
                state.watchers[key] = current
                Self.maybeAnswerProgress(key.stream, in: &state)
            }
        }
        return stillBehind
    }

    private func compacted(_ key: WatcherKey, compactRevision: Revision) {
        state.withLock { state in
            guard state.watchers.removeValue(forKey: key) != nil else { return }
            var response = Etcdserverpb_WatchResponse()
            // etcd's cancel of a compacted watcher carries no revision in its header.
            response.watchID = key.watchID
            response.canceled = true
            response.compactRevision = compactRevision.value
            Self.enqueue(response, events: 0, to: key.stream, in: &state)
            Self.maybeAnswerProgress(key.stream, in: &state)
        }
    }
}

/// One apply round's events as protobuf, converted on first use.
struct ConvertedEvents {
    private let events: [Event]
    private var plain: [Mvccpb_Event?]
    private var withPrevious: [Mvccpb_Event?]

    init(_ events: [Event]) {
        self.events = events
        plain = Array(repeating: nil, count: events.count)
        withPrevious = plain
    }

    mutating func event(_ index: Int, prevKV: Bool) -> Mvccpb_Event {
        if prevKV {
            if let event = withPrevious[index] { return event }
            let event = Mvccpb_Event(events[index], prevKV: true)
            withPrevious[index] = event
            return event
        }
        if let event = plain[index] { return event }
        let event = Mvccpb_Event(events[index], prevKV: false)
        plain[index] = event
        return event
    }
}

extension Etcdserverpb_WatchResponse {
    var serializedSizeBytes: Int { ((try? serializedBytes()) as [UInt8]?)?.count ?? 0 }  // encoding a built message cannot fail
}

extension Mvccpb_Event {
    init(_ event: Event, prevKV: Bool) {
        self.init()
        type = event.kind == .put ? .put : .delete
        kv = Mvccpb_KeyValue(event.keyValue)
        // etcd attaches prev_kv to every event but a create.
        if prevKV, let previous = event.prevKV { self.prevKv = Mvccpb_KeyValue(previous) }
    }
}
