internal import EtcdAPI
internal import Foundation
internal import GRPCCore
internal import GRPCNIOTransportHTTP2Posix
internal import Logging
internal import Raft
internal import Synchronization

/// The sending side towards one member: a bounded outbox drained into one long-lived
/// client-streaming call, so that every wake-up sends everything queued as one batch. A dead or
/// slow member fills its own outbox and loses messages (Raft retransmits); it never blocks the
/// node loop or the other members.
final class PeerSender: Sendable {
    let id: NodeID
    private let localID: NodeID
    private let clusterID: UInt64
    private let tls: PeerTLS?
    private let status: any PeerStatusSink
    private let logger: Logger
    private let state: Mutex<State>

    /// Messages waiting to go out, at most. Beyond it new messages are dropped.
    static let outboxMax = 4_096
    /// Encoded bytes per batch, at most: keeps frames well under the peer's receive limit.
    static let batchBytesMax = 8 * 1024 * 1024
    static let snapshotChunkBytes = 1024 * 1024

    private struct State {
        var addresses: [PeerAddress]
        var outbox: [Message] = []
        var snapshots: [(Message, String)] = []
        /// Wakes the current stream's writer. One per stream: an AsyncStream ends for good when
        /// its consumer is cancelled, so each reconnection makes a new one.
        var wake: AsyncStream<Void>.Continuation?
        /// When the current message stream to the member opened; nil while there is none
        /// (etcd's `ActiveSince`, which its reconfiguration checks rely on).
        var activeSince: ContinuousClock.Instant?
    }

    init(id: NodeID, localID: NodeID, clusterID: UInt64, addresses: [PeerAddress], tls: PeerTLS?, status: any PeerStatusSink, logger: Logger) {
        self.id = id
        self.localID = localID
        self.clusterID = clusterID
        self.tls = tls
        self.status = status
        self.logger = logger
        self.state = Mutex(State(addresses: addresses))
    }

    func update(addresses: [PeerAddress]) {
        state.withLock { $0.addresses = addresses }
    }

    /// Queues messages; returns false if some were dropped because the outbox is full.
    @discardableResult
    func enqueue(_ messages: [Message]) -> Bool {
        let (accepted, wake) = state.withLock { state -> (Bool, AsyncStream<Void>.Continuation?) in
            let room = Self.outboxMax - state.outbox.count
            state.outbox.append(contentsOf: messages.prefix(room))
            return (room >= messages.count, state.wake)
        }
        wake?.yield()
        return accepted
    }

    /// Queues a snapshot send: the message and the image file to stream after it.
    func enqueueSnapshot(_ message: Message, imagePath: String) {
        state.withLock { $0.snapshots.append((message, imagePath)) }
    }

    var activeSince: ContinuousClock.Instant? { state.withLock { $0.activeSince } }

    private func takeOutbox() -> [Message] {
        state.withLock { state in
            defer { state.outbox.removeAll(keepingCapacity: true) }
            return state.outbox
        }
    }

    private func takeSnapshots() -> [(Message, String)] {
        state.withLock { state in
            defer { state.snapshots.removeAll() }
            return state.snapshots
        }
    }

    /// Connects, streams, and on any failure reports the member unreachable and reconnects with
    /// exponential back-off (100 ms doubling to 5 s), until cancelled.
    func run() async {
        var backoff = Duration.milliseconds(100)
        var addressIndex = 0
        while !Task.isCancelled {
            let addresses = state.withLock { $0.addresses }
            guard !addresses.isEmpty else {
                try? await Task.sleep(for: .seconds(1))  // cancellation ends the loop
                continue
            }
            let address = addresses[addressIndex % addresses.count]
            do {
                try await stream(to: address)
                // The peer closed the stream cleanly (it is shutting down): reconnect, but not in a
                // tight loop.
                try? await Task.sleep(for: .milliseconds(100))  // cancellation ends the loop
                backoff = .milliseconds(100)
            } catch {
                if let refusal = error as? RPCError, refusal.message == removedMessage {
                    status.reportRemoved()
                }
                if !Task.isCancelled {
                    logger.debug("peer stream failed", metadata: ["peer": "\(id)", "address": "\(address)", "error": "\(error)"])
                    reportUnreachable()
                }
                addressIndex += 1
                try? await Task.sleep(for: backoff)  // cancellation ends the loop
                backoff = min(backoff * 2, .seconds(5))
            }
        }
    }

    private func reportUnreachable() {
        // Drop what was queued for a member we cannot reach: Raft resends after probing.
        _ = takeOutbox()
        for (message, path) in takeSnapshots() {
            status.reportSnapshot(to: message.to, failed: true)
            logger.info("snapshot send abandoned", metadata: ["peer": "\(id)", "image": "\(path)"])
        }
        status.reportUnreachable(id)
    }

    private func stream(to address: PeerAddress) async throws {
        let transport = try Self.clientTransport(address, tls: tls)
        try await withGRPCClient(transport: transport) { client in
            let peer = Kvdpb_Peer.Client(wrapping: client)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await self.sendMessages(peer) }
                group.addTask { try await self.sendSnapshots(peer) }
                try await group.next()
                group.cancelAll()
            }
        }
    }

    private func sendMessages(_ peer: Kvdpb_Peer.Client<HTTP2ClientTransport.Posix>) async throws {
        var options = CallOptions.defaults
        options.waitForReady = false
        let (wakeups, wake) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        state.withLock { $0.wake = wake }
        wake.yield()  // send whatever is already queued
        defer {
            state.withLock { state in
                state.wake = nil
                state.activeSince = nil
            }
        }
        _ = try await peer.sendMessages(options: options, requestProducer: { writer in
            // The producer runs once the stream is open on a connection to the member.
            self.state.withLock { $0.activeSince = .now }
            for await _ in wakeups {
                var pending = self.takeOutbox()
                while !pending.isEmpty {
                    var batch = Kvdpb_MessageBatch()
                    batch.clusterID = self.clusterID
                    batch.from = self.localID.rawValue
                    var bytes = 0
                    var taken = 0
                    for message in pending {
                        let encoded = message.encoded
                        if bytes > 0 && bytes + encoded.count > Self.batchBytesMax { break }
                        bytes += encoded.count
                        batch.messages.append(Data(encoded))
                        taken += 1
                    }
                    pending.removeFirst(taken)
                    try await writer.write(batch)
                }
            }
        })
    }

    private func sendSnapshots(_ peer: Kvdpb_Peer.Client<HTTP2ClientTransport.Posix>) async throws {
        // Snapshots are rare: poll the queue rather than share the message stream's wake-ups.
        while !Task.isCancelled {
            for (message, path) in takeSnapshots() {
                do {
                    try await sendSnapshot(peer, message, path)
                    status.reportSnapshot(to: message.to, failed: false)
                } catch {
                    logger.warning("snapshot send failed", metadata: ["peer": "\(id)", "error": "\(error)"])
                    status.reportSnapshot(to: message.to, failed: true)
                }
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    private func sendSnapshot(_ peer: Kvdpb_Peer.Client<HTTP2ClientTransport.Posix>, _ message: Message, _ path: String) async throws {
        guard let file = FileHandle(forReadingAtPath: path) else {
            throw RPCError(code: .notFound, message: "kvd: snapshot image \(path) is missing")
        }
        defer { try? file.close() }  // read-only handle: nothing to lose on close
        let clusterID = self.clusterID
        let from = localID.rawValue
        let encodedMessage = Data(message.encoded)
        let fileBox = UncheckedFile(file)
        _ = try await peer.sendSnapshot(requestProducer: { writer in
            var first = Kvdpb_SnapshotChunk()
            first.clusterID = clusterID
            first.from = from
            first.message = encodedMessage
            try await writer.write(first)
            while true {
                let data = try fileBox.file.read(upToCount: Self.snapshotChunkBytes) ?? Data()
                var chunk = Kvdpb_SnapshotChunk()
                chunk.clusterID = clusterID
                chunk.from = from
                chunk.data = data
                chunk.last = data.isEmpty
                try await writer.write(chunk)
                if data.isEmpty { break }
            }
        })
        logger.info("sent snapshot", metadata: ["peer": "\(id)", "index": "\(message.snapshot?.metadata.index ?? .zero)"])
    }

    /// One client transport to a peer address (sender streams, joins, forwarded requests).
    static func clientTransport(_ address: PeerAddress, tls: PeerTLS?) throws -> HTTP2ClientTransport.Posix {
        var config = HTTP2ClientTransport.Posix.Config.defaults
        // Flush coalescing would hold each batch up to 100 µs (and wake the event loop twice):
        // one batch per node-loop turn is already the coalesced write, and appends and acks are
        // on the commit's critical path.
        config.connection.flushCoalescing = nil
        return try HTTP2ClientTransport.Posix(
            target: .ipv4(address: address.host == "localhost" ? "127.0.0.1" : address.host, port: address.port),
            transportSecurity: try clientSecurity(address, tls: tls),
            config: config
        )
    }

    static func clientSecurity(_ address: PeerAddress, tls: PeerTLS?) throws -> HTTP2ClientTransport.Posix.TransportSecurity {
        guard address.isTLS else { return .plaintext }
        guard let tls else {
            throw RPCError(code: .failedPrecondition, message: "kvd: peer URL \(address) is https but --peer-cert-file is not set")
        }
        return .mTLS(
            certificateChain: [.file(path: tls.certFile, format: .pem)],
            privateKey: .file(path: tls.keyFile, format: .pem)
        ) { config in
            if let ca = tls.trustedCAFile {
                config.trustRoots = .certificates([.file(path: ca, format: .pem)])
            }
        }
    }
}

/// A file handle read by exactly one request producer at a time.
private struct UncheckedFile: @unchecked Sendable {
    // @unchecked: only the single request producer of one snapshot send touches the handle.
    let file: FileHandle
    init(_ file: FileHandle) { self.file = file }
}
