internal import EtcdAPI
internal import Foundation
internal import GRPCCore
internal import GRPCNIOTransportHTTP2Posix
internal import Logging
internal import NIOCore
internal import NIOPosix
internal import NIOSSL
internal import Raft
internal import Synchronization

/// The sending side towards one member: one Raft stream (`RaftStream`) that the node loop writes
/// onto directly, and gRPC calls for snapshots. A dead or slow member fills its own connection's
/// write buffer and loses messages (Raft retransmits after probing); it never blocks the node
/// loop or the other members.
final class PeerSender: Sendable {
    let id: NodeID
    private let localID: NodeID
    private let clusterID: UInt64
    private let tls: PeerTLS?
    private let status: any PeerStatusSink
    private let logger: Logger
    /// The event loop every stream to the member is opened on.
    private let loop: any EventLoop
    private let state: Mutex<State>

    /// Messages held while the stream connects, at most. Beyond it new messages are dropped.
    static let outboxMax = 4_096
    /// Bytes written to the stream and not yet taken by the kernel, at most: beyond it messages
    /// are dropped and the member is reported unreachable (etcd does the same when its stream
    /// buffer fills).
    static let writeBufferBytesMax = 8 * 1024 * 1024
    static let snapshotChunkBytes = 1024 * 1024
    /// How long a new stream may take to connect, finish TLS and be answered.
    static let connectTimeout = TimeAmount.seconds(5)

    private struct State {
        var addresses: [PeerAddress]
        /// The open, accepted stream; nil while connecting.
        var channel: (any Channel)?
        var outbox: [Message] = []
        var snapshots: [(Message, String)] = []
        /// Where the current (or last) stream went: snapshots follow it.
        var address: PeerAddress?
        /// When the current message stream to the member opened; nil while there is none
        /// (etcd's `ActiveSince`, which its reconfiguration checks rely on).
        var activeSince: ContinuousClock.Instant?
    }

    private struct Refused: Error, CustomStringConvertible {
        var status: RaftStream.Status?
        var description: String { "kvd: the member refused the Raft stream (\(status.map { "\($0)" } ?? "unknown status"))" }
    }

    private struct NoAnswer: Error, CustomStringConvertible {
        var description: String { "kvd: the member did not answer the Raft stream's hello" }
    }

    init(
        id: NodeID, localID: NodeID, clusterID: UInt64, addresses: [PeerAddress], tls: PeerTLS?, status: any PeerStatusSink,
        logger: Logger, loop: any EventLoop
    ) {
        self.id = id
        self.loop = loop
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

    /// Writes messages to the stream, in order, or holds them while it connects; returns false if
    /// they were dropped (the outbox or the connection's write buffer is full).
    @discardableResult
    func enqueue(_ messages: [Message]) -> Bool {
        let frames = RaftStream.frames(messages, allocator: ByteBufferAllocator())
        return state.withLock { state -> Bool in
            guard let channel = state.channel else {
                let room = Self.outboxMax - state.outbox.count
                state.outbox.append(contentsOf: messages.prefix(room))
                return room >= messages.count
            }
            guard channel.isWritable else { return false }
            // Under the lock: the stream's order is the order messages were enqueued in.
            channel.writeAndFlush(frames, promise: nil)
            return true
        }
    }

    /// Queues a snapshot send: the message and the image file to stream after it.
    func enqueueSnapshot(_ message: Message, imagePath: String) {
        state.withLock { $0.snapshots.append((message, imagePath)) }
    }

    var activeSince: ContinuousClock.Instant? { state.withLock { $0.activeSince } }

    private func takeSnapshots() -> [(Message, String)] {
        state.withLock { state in
            defer { state.snapshots.removeAll() }
            return state.snapshots
        }
    }

    /// Keeps the stream open and sends snapshots, until cancelled.
    func run() async {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.runStream() }
            group.addTask { await self.runSnapshots() }
        }
    }

    /// Connects, and whenever the stream fails or closes reports the member unreachable and
    /// reconnects with exponential back-off (100 ms doubling to 5 s), until cancelled.
    private func runStream() async {
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
                let channel = try await connect(to: address)
                // On the stream's event loop, where the node loop writes: the held messages go out
                // before any message a turn writes once `channel` is set.
                try await channel.eventLoop.submit { self.open(channel, at: address) }.get()
                backoff = .milliseconds(100)
                await withTaskCancellationHandler {
                    try? await channel.closeFuture.get()  // closing is how a stream ends
                } onCancel: {
                    channel.close(promise: nil)
                }
                state.withLock { state in
                    state.channel = nil
                    state.activeSince = nil
                }
                guard !Task.isCancelled else { return }
                reportUnreachable()
                // The member closed the stream (it is shutting down, or removed us): reconnect,
                // but not in a tight loop.
                try? await Task.sleep(for: .milliseconds(100))  // cancellation ends the loop
            } catch {
                if let refusal = error as? Refused, refusal.status == .removed {
                    status.reportRemoved()
                }
                guard !Task.isCancelled else { return }
                logger.debug("peer stream failed", metadata: ["peer": "\(id)", "address": "\(address)", "error": "\(error)"])
                reportUnreachable()
                addressIndex += 1
                try? await Task.sleep(for: backoff)  // cancellation ends the loop
                backoff = min(backoff * 2, .seconds(5))
            }
        }
    }

    /// Makes `channel` the stream and writes what was held while connecting.
    private func open(_ channel: any Channel, at address: PeerAddress) {
        state.withLock { state in
            if !state.outbox.isEmpty {
                channel.writeAndFlush(RaftStream.frames(state.outbox, allocator: channel.allocator), promise: nil)
                state.outbox.removeAll(keepingCapacity: true)
            }
            state.channel = channel
            state.address = address
            state.activeSince = .now
        }
    }

    private func reportUnreachable() {
        // Drop what was held for a member we cannot reach: Raft resends after probing.
        state.withLock { $0.outbox.removeAll() }
        status.reportUnreachable(id)
    }

    /// One connection: TCP, TLS when the address is https, the hello, and the member's answer.
    private func connect(to address: PeerAddress) async throws -> any Channel {
        let sslContext = try address.isTLS ? Self.streamTLSContext(address, tls: tls) : nil
        let verification = try address.isTLS ? Self.serverVerification(address, tls: tls) : nil
        let answer = loop.makePromise(of: UInt8.self)
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(Self.connectTimeout)
            .channelOption(.writeBufferWaterMark, value: .init(low: Self.writeBufferBytesMax / 2, high: Self.writeBufferBytesMax))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let sslContext {
                        // An IP address is checked against the certificate's IP SANs.
                        let hostname = address.host.contains(where: \.isLetter) && !address.host.contains(":") ? address.host : nil
                        let handler = try verification.map {
                            try NIOSSLClientHandler(context: sslContext, serverHostname: hostname, customVerificationCallback: $0)
                        } ?? NIOSSLClientHandler(context: sslContext, serverHostname: hostname)
                        try channel.pipeline.syncOperations.addHandler(handler)
                    }
                    try channel.pipeline.syncOperations.addHandler(RaftStreamStatusReader(status: answer))
                }
            }
        let timeout = loop.scheduleTask(in: Self.connectTimeout) { answer.fail(NoAnswer()) }
        defer { timeout.cancel() }
        let channel: any Channel
        do {
            channel = try await (address.isUnixSocket
                ? bootstrap.connect(unixDomainSocketPath: address.socketPath) : bootstrap.connect(host: address.dialHost, port: address.port)).get()
        } catch {
            answer.fail(error)  // nothing will answer a connection that never opened
            throw error
        }
        var hello = channel.allocator.buffer(capacity: RaftStream.magic.count + RaftStream.helloLength)
        RaftStream.writeHello(RaftStream.Hello(clusterID: clusterID, from: localID, to: id), into: &hello)
        channel.writeAndFlush(hello, promise: nil)
        do {
            let byte = try await answer.futureResult.get()
            guard RaftStream.Status(rawValue: byte) == .accepted else {
                throw Refused(status: RaftStream.Status(rawValue: byte))
            }
        } catch {
            channel.close(promise: nil)
            throw error
        }
        return channel
    }

    private func runSnapshots() async {
        // Snapshots are rare: poll the queue, and open a gRPC connection per snapshot.
        while !Task.isCancelled {
            for (message, path) in takeSnapshots() {
                do {
                    let address = state.withLock { $0.address ?? $0.addresses.first }
                    guard let address else { throw RPCError(code: .unavailable, message: "kvd: member \(id) has no peer URL") }
                    try await withGRPCClient(transport: try Self.clientTransport(address, tls: tls)) { client in
                        try await sendSnapshot(Kvdpb_Peer.Client(wrapping: client), message, path)
                    }
                    status.reportSnapshot(to: message.to, failed: false)
                } catch {
                    logger.warning("snapshot send failed", metadata: ["peer": "\(id)", "error": "\(error)"])
                    status.reportSnapshot(to: message.to, failed: true)
                }
            }
            try? await Task.sleep(for: .milliseconds(50))  // cancellation ends the loop
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
        // A socket path names no host: the certificate is checked against the URL's host, as the
        // Raft stream checks it (and etcd does).
        if address.isUnixSocket { config.http2.authority = address.host }
        return try HTTP2ClientTransport.Posix(
            target: address.isUnixSocket ? .unixDomainSocket(path: address.socketPath) : .ipv4(address: address.dialHost, port: address.port),
            transportSecurity: try clientSecurity(address, tls: tls),
            config: config
        )
    }

    /// The Raft stream's TLS: the same certificate, key and trusted CA as the gRPC peer clients,
    /// read again for every connection (so renewed files are used on the next reconnection).
    static func streamTLSContext(_ address: PeerAddress, tls: PeerTLS?) throws -> NIOSSLContext {
        guard let tls else {
            throw RPCError(code: .failedPrecondition, message: "kvd: peer URL \(address) is https but --peer-cert-file is not set")
        }
        var configuration = TLSConfiguration.makeClientConfiguration()
        tls.policy.apply(to: &configuration)
        configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(tls.certFile).map { .certificate($0) }
        configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: tls.keyFile, format: .pem))
        if let ca = tls.trustedCAFile { configuration.trustRoots = .file(ca) }
        if tls.skipServerVerification { configuration.certificateVerification = .none }
        return try NIOSSLContext(configuration: configuration)
    }

    static func clientSecurity(_ address: PeerAddress, tls: PeerTLS?) throws -> HTTP2ClientTransport.Posix.TransportSecurity {
        guard address.isTLS else { return .plaintext }
        guard let tls else {
            throw RPCError(code: .failedPrecondition, message: "kvd: peer URL \(address) is https but --peer-cert-file is not set")
        }
        let verification = try tls.identityCheck.map { allowed, ca in
            try allowed.verificationWithMetadata(trustedCAFile: ca, side: .server(host: address.host))
        }
        return .mTLS(
            certificateChain: [.file(path: tls.certFile, format: .pem)],
            privateKey: .file(path: tls.keyFile, format: .pem)
        ) { config in
            if let ca = tls.trustedCAFile {
                config.trustRoots = .certificates([.file(path: ca, format: .pem)])
            }
            if tls.skipServerVerification { config.serverCertificateVerification = .noVerification }
            if let verification { config.customVerificationCallback = verification }
        }
    }

    /// The verification in place of BoringSSL's when the dialed member must name
    /// `--peer-cert-allowed-cn`/`--peer-cert-allowed-hostname` (and be valid for the host dialed).
    static func serverVerification(_ address: PeerAddress, tls: PeerTLS?) throws -> AllowedIdentity.Verification? {
        try tls?.identityCheck.map { allowed, ca in try allowed.verification(trustedCAFile: ca, side: .server(host: address.host)) }
    }
}

/// A file handle read by exactly one request producer at a time.
private struct UncheckedFile: @unchecked Sendable {
    // @unchecked: only the single request producer of one snapshot send touches the handle.
    let file: FileHandle
    init(_ file: FileHandle) { self.file = file }
}
