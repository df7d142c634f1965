internal import EtcdAPI
internal import GRPCCore
internal import GRPCNIOTransportHTTP2Posix
package import NIOCore
internal import NIOPosix
internal import NIOSSL
package import Logging
package import Raft
internal import Synchronization

/// Peer messaging on the peer port (ARCHITECTURE.md): one sender per member with its own Raft
/// stream and snapshot sends, and one listener for what others send (Raft streams and gRPC).
package final class PeerTransport: Sendable {
    private let localID: NodeID
    private let clusterID: UInt64
    private let tls: PeerTLS?
    private let status: any PeerStatusSink
    private let logger: Logger
    /// Where the Raft streams live, both the ones this member opens and the ones it accepts, and
    /// the peer port's listener: the node loop's own event loop, so that it writes and reads
    /// them without a thread hand-off.
    private let streamLoop: any EventLoop
    private let senders = Mutex<[NodeID: PeerSender]>([:])
    /// Senders created after `run` started and not yet running.
    private let newSenders: AsyncStream<PeerSender>
    private let newSender: AsyncStream<PeerSender>.Continuation
    /// Each with the versions of the TLS files it was made from.
    private let forwardingClients = Mutex<[String: (client: GRPCClient<HTTP2ClientTransport.Posix>, files: [FileVersion?])]>([:])
    private let newForwardingClients: AsyncStream<GRPCClient<HTTP2ClientTransport.Posix>>
    private let newForwardingClient: AsyncStream<GRPCClient<HTTP2ClientTransport.Posix>>.Continuation

    package init(
        localID: NodeID, clusterID: UInt64, tls: PeerTLS?, status: any PeerStatusSink, logger: Logger,
        streamLoop: any EventLoop = MultiThreadedEventLoopGroup.singleton.next()
    ) {
        self.localID = localID
        self.streamLoop = streamLoop
        self.clusterID = clusterID
        self.tls = tls
        self.status = status
        self.logger = logger
        (newSenders, newSender) = AsyncStream<PeerSender>.makeStream()
        (newForwardingClients, newForwardingClient) = AsyncStream<GRPCClient<HTTP2ClientTransport.Posix>>.makeStream()
    }

    /// Adds or updates a member's addresses.
    package func setPeer(_ id: NodeID, addresses: [PeerAddress]) {
        guard id != localID else { return }
        let created: PeerSender? = senders.withLock { senders in
            if let existing = senders[id] {
                existing.update(addresses: addresses)
                return nil
            }
            let sender = PeerSender(id: id, localID: localID, clusterID: clusterID, addresses: addresses, tls: tls, status: status, logger: logger, loop: streamLoop)
            senders[id] = sender
            return sender
        }
        if let created { newSender.yield(created) }
    }

    package func removePeer(_ id: NodeID) {
        senders.withLock { _ = $0.removeValue(forKey: id) }
    }

    /// Queues messages for their destinations; never blocks. Snapshot messages go through
    /// `sendSnapshot` instead.
    package func send(_ messages: [Message]) {
        var byPeer: [NodeID: [Message]] = [:]
        for message in messages { byPeer[message.to, default: []].append(message) }
        let targets = senders.withLock { senders in byPeer.keys.map { ($0, senders[$0]) } }
        for (id, sender) in targets {
            guard let sender else {
                logger.debug("no route to member", metadata: ["to": "\(id)"])
                continue
            }
            if !sender.enqueue(byPeer[id]!) {
                // As etcd does when its stream buffer fills: Raft stops pipelining and probes.
                logger.debug("peer stream full; messages dropped", metadata: ["to": "\(id)"])
                status.reportUnreachable(id)
            }
        }
    }

    /// Since when the message stream to member `id` has been open, or nil if it is not.
    package func activeSince(_ id: NodeID) -> ContinuousClock.Instant? {
        senders.withLock { $0[id] }?.activeSince
    }

    package func sendSnapshot(_ message: Message, imagePath: String) {
        guard let sender = senders.withLock({ $0[message.to] }) else {
            status.reportSnapshot(to: message.to, failed: true)
            return
        }
        sender.enqueueSnapshot(message, imagePath: imagePath)
    }

    /// Runs every sender until cancelled (senders removed later stop at the next cancellation).
    package func runSenders() async {
        await withDiscardingTaskGroup { group in
            group.addTask {
                await withDiscardingTaskGroup { clients in
                    for await client in self.newForwardingClients {
                        clients.addTask { try? await client.runConnections() }
                    }
                }
            }
            for sender in senders.withLock({ Array($0.values) }) {
                group.addTask { await self.runWhileMember(sender) }
            }
            for await sender in newSenders {
                group.addTask { await self.runWhileMember(sender) }
            }
        }
    }

    private func runWhileMember(_ sender: PeerSender) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await sender.run() }
            group.addTask {
                while !Task.isCancelled, self.senders.withLock({ $0[sender.id] === sender }) {
                    try? await Task.sleep(for: .seconds(1))  // cancellation ends the loop
                }
            }
            await group.next()
            group.cancelAll()
        }
    }

    /// Serves the peer port on `addresses` until cancelled: Raft streams and gRPC on one listener.
    package func serve(on addresses: [PeerAddress], inbox: any PeerInbox, incomingDirectory: String) async throws {
        let service = PeerService(clusterID: clusterID, localID: localID, inbox: inbox, incomingDirectory: incomingDirectory, logger: logger)
        try await withThrowingDiscardingTaskGroup { group in
            for address in addresses {
                let server = GRPCServer(transport: try serverTransport(address, inbox: inbox), services: [service])
                group.addTask { try await server.serve() }
                group.addTask { [logger] in
                    if let bound = try await server.listeningAddress {
                        logger.info("ready to serve peer traffic", metadata: ["address": "\(bound)"])
                    }
                }
            }
        }
    }

    /// Asks the member at `address` for the cluster's ID and members (used before joining).
    package static func fetchClusterInfo(
        from address: PeerAddress, tls: PeerTLS?
    ) async throws -> (clusterID: UInt64, members: [PeerMemberInfo]) {
        let transport = try PeerSender.clientTransport(address, tls: tls)
        return try await withGRPCClient(transport: transport) { client in
            var options = CallOptions.defaults
            options.timeout = .seconds(5)
            let response = try await Kvdpb_Peer.Client(wrapping: client).clusterInfo(Kvdpb_ClusterInfoRequest(), options: options)
            let members = response.members.map { PeerMemberInfo(id: NodeID($0.id), peerURLs: $0.peerUrls, isLearner: $0.isLearner) }
            return (response.clusterID, members)
        }
    }

    /// The HashKV of the member at `address` up to `revision` (a corruption check; one
    /// connection per call, as checks are rare). Its refusals are rethrown as they are.
    package func hashKV(at address: PeerAddress, revision: Int64, timeout: Duration) async throws -> PeerHashKV {
        let transport = try PeerSender.clientTransport(address, tls: tls)
        return try await withGRPCClient(transport: transport) { client in
            var options = CallOptions.defaults
            options.timeout = timeout
            var request = Kvdpb_HashKVRequest()
            request.revision = revision
            let response = try await Kvdpb_Peer.Client(wrapping: client).hashKV(request, options: options)
            return PeerHashKV(
                hash: response.hash, compactRevision: response.compactRevision, revision: response.revision,
                memberID: response.memberID)
        }
    }

    /// Forwards a lease keep-alive or TTL query to the leader at `address`.
    package func queryLease(at address: PeerAddress, id: Int64, renew: Bool, timeout: Duration) async throws -> LeaseAnswer {
        var options = CallOptions.defaults
        options.timeout = timeout
        var request = Kvdpb_LeaseQueryRequest()
        request.id = id
        request.renew = renew
        let response = try await withForwardingClient(address) { try await $0.leaseQuery(request, options: options) }
        return LeaseAnswer(isLeader: response.isLeader, found: response.found, ttlSeconds: response.ttl, grantedTTLSeconds: response.grantedTtl)
    }

    /// Forwards a learner promotion to the leader at `address`; the leader's refusal (an etcd
    /// error) is rethrown as it is.
    package func promoteMember(at address: PeerAddress, id: UInt64, timeout: Duration) async throws {
        var options = CallOptions.defaults
        options.timeout = timeout
        var request = Kvdpb_MemberPromoteRequest()
        request.id = id
        _ = try await withForwardingClient(address) { try await $0.memberPromote(request, options: options) }
    }

    /// Runs `call` on the forwarding client for `address`, and once more on a fresh one when the
    /// client taken was shut down (replaced after a TLS file change) before the call could start:
    /// such a call never left this member, so making it again is safe.
    private func withForwardingClient<Answer: Sendable>(
        _ address: PeerAddress, _ call: (Kvdpb_Peer.Client<HTTP2ClientTransport.Posix>) async throws -> Answer
    ) async throws -> Answer {
        let client = try forwardingClient(address)
        do {
            return try await call(Kvdpb_Peer.Client(wrapping: client))
        } catch let error as RuntimeError where error.code == .clientIsStopped {
            let fresh = try forwardingClient(address)
            guard fresh !== client else { throw error }
            return try await call(Kvdpb_Peer.Client(wrapping: fresh))
        }
    }

    /// One long-lived client per peer address for requests forwarded to the leader (lease
    /// keep-alives arrive continuously on followers): a TLS handshake per request would cost
    /// more than the request. Clients run until the transport's `runSenders` task ends, or until
    /// this member's TLS files change: the next request then gets a client made from the new
    /// ones, and the old one ends once its calls have.
    private func forwardingClient(_ address: PeerAddress) throws -> GRPCClient<HTTP2ClientTransport.Posix> {
        var files: [FileVersion?] = []
        if address.isTLS, let tls {
            files = ReloadingServerTLS.files(certFile: tls.certFile, keyFile: tls.keyFile, trustedCAFile: tls.trustedCAFile).map(FileVersion.of)
        }
        let key = address.description
        if let current = forwardingClients.withLock({ $0[key] }), current.files == files { return current.client }
        let client = GRPCClient(transport: try PeerSender.clientTransport(address, tls: tls))
        let (stored, replaced, isNew) = forwardingClients.withLock { clients in
            let existing = clients[key]
            if let existing, existing.files == files { return (existing.client, nil as GRPCClient<HTTP2ClientTransport.Posix>?, false) }
            clients[key] = (client, files)
            return (client, existing?.client, true)
        }
        if isNew { newForwardingClient.yield(stored) }
        replaced?.beginGracefulShutdown()
        return stored
    }

    private func serverTransport(_ address: PeerAddress, inbox: any PeerInbox) throws -> HTTP2ServerTransport.Custom<PeerListener> {
        var config = HTTP2ServerTransport.Custom<PeerListener>.Config.defaults
        config.rpc.maxRequestPayloadSize = RaftStream.frameBytesMax
        config.connection.keepalive.clientBehavior = .init(minPingIntervalWithoutCalls: .seconds(5), allowWithoutCalls: true)
        // No flush coalescing: forwarded lease keep-alives and promotions are answered at once.
        config.connection.flushCoalescing = nil
        var serverTLS: ReloadingServerTLS?
        if address.isTLS {
            guard let tls else {
                throw RPCError(code: .failedPrecondition, message: "kvd: \(address) is https but --peer-cert-file and --peer-key-file are not set")
            }
            serverTLS = try ReloadingServerTLS(
                certFile: tls.certFile, keyFile: tls.keyFile, trustedCAFile: tls.trustedCAFile,
                verifyClients: tls.clientCertAuth, allowed: tls.allowed, logger: logger
            ) { try PeerListener.makeTLSContext(tls) }
        }
        let listener = PeerListener(
            eventLoopGroup: streamLoop, address: address, tls: serverTLS,
            revocationList: tls?.crlFile, clusterID: clusterID, localID: localID, inbox: inbox,
            logger: logger)
        return HTTP2ServerTransport.Custom(listenerFactory: listener, config: config)
    }
}
