internal import SwiftProtobuf
internal import Synchronization
internal import EtcdAPI
internal import Foundation
internal import GRPCCore
internal import GRPCInProcessTransport
internal import GRPCNIOTransportHTTP2Posix
internal import NIOPosix
internal import NIOCore
internal import NIOSSL
package import Logging
internal import MVCC
internal import Raft
internal import Storage
internal import Transport

/// One kvd member: its storage, its Raft node, its peer transport and its client listeners.
/// The composition root: it builds the parts, wires them, and owns nothing else.
package final class Member: Sendable {
    package let configuration: MemberConfiguration
    package let memberID: MemberID
    package let clusterID: MemberID
    private let store: MVCCStore
    private let hub: WatchHub
    /// Who is connected with which client certificate (for `--client-cert-auth` with auth on).
    private let identities = ClientIdentities()
    /// With `--auth-token jwt,...`: the key tokens are signed and checked with.
    private let jwt: JWTTokens?
    let loop: NodeLoop
    private let transport: PeerTransport
    private let logger: Logger

    package static var columnFamilies: [String] {
        MVCCStore.columnFamilies + RaftLogStore.columnFamilies + [Membership.family]
    }

    /// Opens (or creates) the data directory and restores or bootstraps the member. A locked or
    /// corrupt directory throws RocksDB's message.
    package init(configuration: MemberConfiguration, logger: Logger) async throws {
        self.configuration = configuration
        self.logger = logger
        if case .jwt(let options, let ttl) = configuration.authToken {
            jwt = try JWTTokens(options: options, ttl: .milliseconds(ttl))
        } else {
            jwt = nil
        }
        try Self.takeOverOrRefuseEtcdDataDirectory(configuration, logger: logger)
        try FileSystem.createDirectory(configuration.dataDirectory + "/member/snap")
        for files in [configuration.clientTLS, configuration.peerTLS].compactMap({ $0 }) {
            try SelfSignedCertificate.ensure(files, validityYears: configuration.selfSignedCertValidityYears)
        }
        var storage = DatabaseOptions()
        storage.blockCacheBytes = configuration.blockCacheBytes
        let database = try Self.openDatabase(configuration, options: storage)
        let logStore = try RaftLogStore(database: database)
        let boot = try await Bootstrap.restoreOrCreate(configuration: configuration, database: database, logStore: logStore, logger: logger)
        memberID = boot.memberID
        clusterID = boot.clusterID
        store = try MVCCStore(database: database)
        let applied = try store.appliedMarker().map { LogIndex(RaftLogStore.index(from: $0)) } ?? .zero
        let electionTicks = max(1, configuration.electionTimeoutMilliseconds / max(1, configuration.heartbeatIntervalMilliseconds))
        let settings = NodeSettings(
            memberID: memberID,
            clusterID: clusterID,
            tickInterval: .milliseconds(configuration.heartbeatIntervalMilliseconds),
            electionTicks: electionTicks,
            snapshotCount: max(1, configuration.snapshotCount),
            // etcd keeps 5,000; kvd keeps at most half a snapshot's worth unless told
            // (--experimental-snapshot-catchup-entries), so a small --snapshot-count still compacts.
            catchUpEntries: configuration.snapshotCatchUpEntries ?? min(5_000, max(1, configuration.snapshotCount / 2)),
            requestTimeout: .seconds(5) + .milliseconds(2 * configuration.electionTimeoutMilliseconds),
            snapshotDirectory: configuration.dataDirectory + "/member/snap",
            quotaBytes: configuration.quotaBackendBytes < 0 ? nil
                : configuration.quotaBackendBytes == 0 ? 2 * 1024 * 1024 * 1024 : configuration.quotaBackendBytes,
            requestBytesMax: configuration.limits.requestBytesMax,
            strictReconfigCheck: configuration.strictReconfigCheck
        )
        let hub = WatchHub(store: store, fragmentBytesMax: configuration.limits.requestBytesMax)
        self.hub = hub
        loop = NodeLoop(
            settings: settings, database: database, store: store, logStore: logStore, membership: boot.membership,
            appliedIndex: applied, logger: logger, tokens: SimpleTokens(ttl: .seconds(configuration.authTokenTTLSeconds)),
            onApplied: { [store] events in
                if !events.isEmpty { hub.publish(events, revision: store.currentRevision) }
            },
            onSnapshotInstalled: { hub.resynchronize() }
        )
        let peerTLS = configuration.peerTLS?.peerTLS
        transport = PeerTransport(
            localID: NodeID(memberID.value), clusterID: clusterID.value, tls: peerTLS, status: NodeInbox(loop: loop), logger: logger,
            streamLoop: loop.eventLoop)
        loop.attach(transport)
        for member in boot.membership.members where member.id != memberID {
            transport.setPeer(NodeID(member.id.value), addresses: loop.peerAddresses(member.peerURLs))
        }
        logger.info("member ready to start", metadata: [
            "applied-index": "\(applied)", "last-index": "\(logStore.lastIndex())",
            "members": "\(boot.membership.members.map { $0.id.description })",
        ])
    }

    /// The member's database, with its write-ahead log where `--wal-dir` says. The directory a
    /// database was created with is recorded beside it (`member/wal-dir`), and opening it with
    /// another is refused: RocksDB recovers only from the directory it is given, so the writes
    /// still in the other one would be lost without a word.
    static func openDatabase(_ configuration: MemberConfiguration, options: DatabaseOptions = DatabaseOptions()) throws -> Database {
        let member = configuration.dataDirectory + "/member"
        let record = member + "/wal-dir"
        let files = FileManager.default
        let wanted = configuration.walDirectory.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
        if files.fileExists(atPath: member + "/db") {
            let recorded = files.contents(atPath: record).flatMap { String(decoding: $0, as: UTF8.self) }
                .flatMap { $0.isEmpty ? nil : $0 }
            guard recorded == wanted else {
                let place = recorded.map { "in \"\($0)\" (--wal-dir \($0))" } ?? "in the data directory (no --wal-dir)"
                throw ConfigurationError.invalid(
                    "data-dir \"\(configuration.dataDirectory)\" keeps its write-ahead log \(place); start it with that setting")
            }
        } else {
            try FileSystem.createDirectory(member)
            guard files.createFile(atPath: record, contents: Data((wanted ?? "").utf8)) else {
                throw ConfigurationError.invalid("cannot write \(record)")
            }
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: record))
            try handle.synchronize()
            try handle.close()
        }
        var options = options
        options.walDirectory = wanted
        for directory in [member, wanted].compactMap({ $0 }) {
            if let available = FileSystem.availableBytes(directory), available < startFreeBytesMin {
                throw ConfigurationError.invalid(
                    "no space left on device: \(available) bytes free for \"\(directory)\", and the member needs at least "
                        + "\(startFreeBytesMin >> 20) MiB to open its database; free some space and start it again")
            }
        }
        return try Database(path: member + "/db", columnFamilies: columnFamilies, options: options)
    }

    /// Free space below which a member refuses to start. Opening the database preallocates the
    /// next log file (up to the log's bound, 64 MiB) and may flush what it recovers; on a disk
    /// without that room Debian's RocksDB stops the process on an internal assertion that does
    /// not name the cause. Refused here, the operator reads why.
    static let startFreeBytesMin = 64 << 20

    /// The etcd version kvd's API reports (Status, /version, `kvd --version`).
    package static let etcdVersion = MaintenanceService.etcdVersion

    /// Creates a data directory from a client snapshot (etcdctl `snapshot restore`); see
    /// `Bootstrap.restore`.
    /// An etcd member's data directory (its WAL, or its backend from `etcdctl snapshot restore`)
    /// with no kvd state beside it: starting would make a new, empty member next to the data the
    /// operator meant to keep. kvd does not run on etcd's files; its backend moves by snapshot.
    /// The one exception, a directory etcdctl restored that no etcd has run on, is taken over
    /// (`EtcdRestoredDirectory`).
    static func takeOverOrRefuseEtcdDataDirectory(_ configuration: MemberConfiguration, logger: Logger) throws {
        let dataDirectory = configuration.dataDirectory, member = dataDirectory + "/member"
        let files = FileManager.default
        func holdsEtcdFiles() -> Bool {
            !files.fileExists(atPath: member + "/db")
                && (files.fileExists(atPath: member + "/wal") || files.fileExists(atPath: member + "/snap/db"))
        }
        let interrupted = !files.fileExists(atPath: member) && files.fileExists(atPath: dataDirectory + "/member.etcd")
        guard interrupted || holdsEtcdFiles() else { return }
        do {
            try EtcdRestoredDirectory.whileLocked(dataDirectory) {
                try EtcdRestoredDirectory.finishInterruptedTakeOver(dataDirectory)
                if holdsEtcdFiles() { try EtcdRestoredDirectory.takeOver(configuration, logger: logger) }
            }
        } catch let notTaken as EtcdRestoredDirectory.NotTaken {
            throw ConfigurationError.invalid(
                "data-dir \"\(dataDirectory)\" holds an etcd member's data, which kvd does not run on (\(notTaken)): save a snapshot of it "
                    + "(etcdctl snapshot save, or its member/snap/db with --skip-hash-check) and restore that with kvctl snapshot restore")
        }
    }

    /// Restores a snapshot file into a new data directory; returns the new cluster's ID and its
    /// members (ID, peer URLs), for the lines etcdctl prints.
    package static func restoreSnapshot(
        from imagePath: String, configuration: MemberConfiguration, skipHashCheck: Bool, logger: Logger
    ) throws -> (clusterID: MemberID, members: [(id: MemberID, peerURLs: [String])]) {
        let result = try Bootstrap.restore(
            imagePath: imagePath, configuration: configuration, skipHashCheck: skipHashCheck, logger: logger)
        return (result.clusterID, result.membership.members.map { ($0.id, $0.peerURLs) })
    }

    /// Serves peers and clients until the surrounding task is cancelled or this member is removed.
    package func run() async throws {
        loop.start()
        defer { loop.stop() }
        let header: @Sendable () -> HeaderFields = { [loop, clusterID, memberID] in
            HeaderFields(clusterID: clusterID, memberID: memberID, raftTerm: loop.facts.withLock { $0.term.rawValue })
        }
        let electionTimeout = configuration.electionTimeoutMilliseconds
        // As etcd's lock and election services and its JSON gateway are clients of their own
        // member: here through an in-process transport, with the same services and interceptors
        // as the client port.
        let authenticator = Authenticator(
            loop: loop, tokens: loop.tokens, jwt: jwt, identities: identities,
            clientCertAuth: configuration.clientTLS?.clientCertAuth ?? false)
        let authEnabled: @Sendable () -> Bool = { [loop] in loop.authEnabled.load(ordering: .relaxed) }
        let authInterceptor = AuthInterceptor(isEnabled: authEnabled)
        let inProcess = InProcessTransport()
        let selfClient = GRPCClient(transport: inProcess.client, interceptors: [ForwardCredentials()])
        let kv = KVService(
            store: store, writes: loop, reads: loop, auth: authenticator, header: header, limits: configuration.limits,
            isLearner: { [loop, memberID] in loop.facts.withLock { $0.membership.member(memberID)?.isLearner ?? false } })
        let requestMetrics = RequestMetrics(registry: loop.metrics.registry)
        let services: [any RegistrableRPCService] = [
            LockService(client: SelfClient(selfClient)),
            ElectionService(client: SelfClient(selfClient)),
            kv,
            ClusterService(
                loop: loop, memberID: memberID, clusterID: clusterID,
                transport: transport, auth: authenticator, logger: logger),
            LeaseService(loop: loop, store: store, header: header, transport: transport, auth: authenticator),
            WatchService(hub: hub, header: header, auth: authenticator, hasLeader: { [loop] in
                let (leader, seen) = loop.facts.withLock { ($0.leader, $0.lastLeaderSeen) }
                // etcd ends "hasleader" streams after three election timeouts without a leader.
                return leader != .none || seen.duration(to: .now) < .milliseconds(3 * electionTimeout)
            }),
            AuthService(loop: loop, store: store, header: header, auth: authenticator),
            MaintenanceService(
                loop: loop, store: store, memberID: memberID, clusterID: clusterID, auth: authenticator,
                snapshotDirectory: configuration.dataDirectory + "/member/snap"),
        ]
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { await self.transport.runSenders() }
            let peerAddresses = configuration.listenPeerURLs.map(\.peerAddress)
            group.addTask {
                try await self.transport.serve(on: peerAddresses, inbox: NodeInbox(loop: self.loop), incomingDirectory: self.configuration.dataDirectory + "/member/snap")
            }
            let check = CorruptionCheck(
                loop: loop, transport: transport, memberID: memberID, logger: logger, timeout: loop.settings.requestTimeout)
            // As etcd: with Raft and the peer port running (the other members check this one the
            // same way), but before any client is served.
            if configuration.initialCorruptCheck { try await check.initialCheck() }
            if configuration.corruptCheckIntervalMilliseconds > 0 {
                let interval = Duration.milliseconds(configuration.corruptCheckIntervalMilliseconds)
                group.addTask {
                    while !Task.isCancelled {
                        try await Task.sleep(for: interval)
                        await check.periodicCheck()
                    }
                }
            }
            let metricsEndpoints = HTTPEndpoints(loop: loop, store: store, metrics: loop.metrics, logger: logger)
            var endpoints = metricsEndpoints
            let selfServer = GRPCServer(
                transport: inProcess.server, services: services, interceptors: [requestMetrics, authInterceptor])
            group.addTask { try await Self.serveUntilCancelled(selfServer) }
            group.addTask {
                try await withTaskCancellationHandler {
                    try await selfClient.runConnections()
                } onCancel: {
                    selfClient.beginGracefulShutdown()
                }
            }
            if configuration.grpcGateway {
                endpoints.gateway = JSONGateway(client: selfClient, streams: configuration.maxConcurrentStreams.map(StreamPermits.init))
            }
            let direct = DirectKVCalls.Service(kv: kv, metrics: requestMetrics, served: loop.metrics.directCalls, authEnabled: authEnabled)
            // The client port's calls that the direct path leaves, served by the same services.
            let bridgeTransport = BridgeTransport()
            let bridgeServer = GRPCServer(transport: bridgeTransport, services: services, interceptors: [requestMetrics, authInterceptor])
            group.addTask { try await Self.serveUntilCancelled(bridgeServer) }
            let grpc = clientGRPCSettings(direct: direct, bridgeTo: bridgeTransport, serving: services)
            for url in configuration.listenClientURLs {
                let listener = try makeClientListener(
                    url, endpoints: endpoints, serves: configuration.listenClientHTTPURLs.isEmpty ? .grpcAndHTTP : .grpc)
                group.addTask { [listener] in try await listener.serve(grpc: grpc) }
            }
            group.addTask { await self.publishAttributes() }
            group.addTask { await self.runWatchSyncer() }
            if let mode = configuration.autoCompaction {
                group.addTask { await self.runAutoCompaction(mode) }
            }
            for url in configuration.listenClientHTTPURLs {
                let listener = try makeClientListener(url, endpoints: endpoints, serves: .http)
                group.addTask { try await listener.serveHTTPOnly() }
            }
            for url in configuration.listenMetricsURLs {
                group.addTask { try await metricsEndpoints.serve(host: url.host, port: url.port) }
            }
            group.addTask {
                let interval = Duration.milliseconds(self.configuration.watchProgressNotifyIntervalMilliseconds)
                while !Task.isCancelled {
                    try await Task.sleep(for: interval)
                    self.hub.notifyProgress()
                }
            }
            group.addTask {
                // A removed member stops serving, as etcd's does.
                while !Task.isCancelled {
                    if self.loop.facts.withLock({ $0.removed }) { throw CancellationError() }
                    try await Task.sleep(for: .milliseconds(200))
                }
            }
        }
    }

    /// Feeds watchers that are behind from storage (etcd's syncWatchersLoop): when woken, and
    /// again every 10 ms while any is still behind.
    private func runWatchSyncer() async {
        var wakeups = hub.syncerWakeups.makeAsyncIterator()
        while !Task.isCancelled {
            if await blocking({ [hub] in hub.syncUnsynced() }) {
                try? await Task.sleep(for: .milliseconds(10))  // cancellation ends the loop
            } else if await wakeups.next() == nil {
                return
            }
        }
    }

    private func runAutoCompaction(_ mode: AutoCompaction.Mode) async {
        var schedule = AutoCompaction(mode: mode, now: .now)
        while !Task.isCancelled {
            try? await Task.sleep(for: schedule.pollInterval)  // cancellation ends the loop
            let isLeader = loop.facts.withLock { $0.role == .leader }
            guard let target = schedule.poll(currentRevision: store.currentRevision.value, isLeader: isLeader, now: .now) else { continue }
            var compaction = Etcdserverpb_CompactionRequest()
            compaction.revision = target
            do {
                _ = try await loop.propose(.with { $0.compaction = compaction })
                schedule.compacted(to: target, now: .now)
                logger.info("completed auto compaction", metadata: ["revision": "\(target)"])
            } catch .compacted {
                schedule.compacted(to: target, now: .now)
            } catch {
                logger.warning("failed auto compaction", metadata: ["revision": "\(target)", "error": "\(error)"])
            }
        }
    }

    /// etcd publishes a member's name and client URLs through Raft on every start, so that every
    /// member can list them; retried until it is applied. Then it logs the lines etcd logs once a
    /// member has joined the cluster's work, in etcd's order: operators' scripts and etcd's own
    /// test harness wait for them ("enabled capabilities for version", "published"; each client
    /// listener logs "ready to serve client requests").
    private func publishAttributes() async {
        var attributes = Kvdpb_MemberAttributes()
        attributes.memberID = memberID.value
        attributes.name = configuration.name
        attributes.clientUrls = configuration.advertiseClientURLs
        while !Task.isCancelled {
            do {
                _ = try await loop.propose(.with { $0.memberAttributes = attributes })
            } catch {
                try? await Task.sleep(for: .milliseconds(500))  // cancellation ends the loop
                continue
            }
            // etcd names the cluster version by major and minor.
            let version = MaintenanceService.clusterVersion.split(separator: ".").prefix(2).joined(separator: ".")
            logger.info("enabled capabilities for version", metadata: ["cluster-version": "\(version)"])
            logger.info("published local member to cluster through raft", metadata: [
                "local-member-id": "\(memberID)", "local-member-attributes": "{Name:\(configuration.name) ClientURLs:\(configuration.advertiseClientURLs)}",
                "cluster-id": "\(clusterID)",
            ])
            return
        }
    }

    /// Serves until the task is cancelled, then shuts down gracefully: no new connection, and the
    /// RPCs under way (watches never end on their own) cancelled after 2 s, as etcd's stop gives up
    /// waiting. Cancelling `serve()` itself trapped in NIO ("Deinited NIOAsyncWriter without
    /// calling finish()") when a client connection had been accepted but not yet served, as on a
    /// SIGTERM with clients connected; the graceful shutdown closes the listener first.
    private static func serveUntilCancelled<Transport: ServerTransport>(_ server: GRPCServer<Transport>) async throws {
        let serving = Task { try await server.serve() }
        try await withTaskCancellationHandler {
            try await serving.value
        } onCancel: {
            server.beginGracefulShutdown()
            Task {
                try? await Task.sleep(for: .seconds(2))
                serving.cancel()
            }
        }
    }

    /// What every client URL's gRPC shares: the hot path, the bridge to the services, and etcd's
    /// limits and keepalive.
    private func clientGRPCSettings(
        direct: DirectKVCalls.Service, bridgeTo transport: BridgeTransport, serving services: [any RegistrableRPCService]
    ) -> ClientListener.GRPCSettings {
        // etcd sizes the gRPC receive limit as --max-request-bytes plus 512 KiB of overhead, and
        // answers a larger request with a status; the request deserializers check etcd's limit,
        // and the bridge ends a call whose message is four times larger (memory per stream stays
        // bounded).
        let messageBytesMax = configuration.limits.requestBytesMax + 512 * 1024
        RequestDecoding.messageBytesMax = messageBytesMax
        return ClientListener.GRPCSettings(
            direct: direct,
            bridge: BridgedCall.Bridge(transport: transport, messageBytesMax: 4 * messageBytesMax, serving: services),
            maxConcurrentStreams: configuration.maxConcurrentStreams,
            keepaliveInterval: .milliseconds(Int64(configuration.grpcKeepaliveIntervalMilliseconds)),
            keepaliveTimeout: .milliseconds(Int64(configuration.grpcKeepaliveTimeoutMilliseconds)))
    }

    /// A listener on one client URL, with the client port's TLS when it is https.
    private func makeClientListener(_ url: MemberURL, endpoints: HTTPEndpoints, serves: ClientProtocol.Serves) throws -> ClientListener {
        var tls: ReloadingServerTLS?
        if url.isTLS {
            guard let files = configuration.clientTLS else {
                throw ConfigurationError.invalid("\(url) is https but --cert-file and --key-file are not set")
            }
            tls = try ReloadingServerTLS(
                certFile: files.certFile, keyFile: files.keyFile, trustedCAFile: files.trustedCAFile,
                verifyClients: files.clientCertAuth, allowed: files.allowed, logger: logger
            ) { try ClientListener.makeTLSContext(files, serves: serves) }
        }
        return ClientListener(
            eventLoopGroup: MultiThreadedEventLoopGroup.singleton, host: url.host == "localhost" ? "127.0.0.1" : url.host,
            port: url.port, tls: tls, revocationList: configuration.clientTLS?.crlFile,
            endpoints: endpoints, identities: identities, logger: logger, serves: serves)
    }
}

extension Member {
    /// Makes NIO's shared event loops the threads Swift's tasks run on, instead of a separate
    /// cooperative pool: a gRPC handler's task then starts on the event loop that read its
    /// request, without waking another thread, and a member has fewer threads contending for
    /// the cores (put 10/100 +17-23%, linearizable reads +15-25% in the commit that made it).
    /// There are half as many loops as cores (at least one), the other half left to `kvd-raft`,
    /// RocksDB's flushes and compactions and the blocking pool; `KVD_EVENT_LOOPS` sets another
    /// count. Must run on the main thread before the first task is created.
    package static func runTasksOnEventLoops(environment: [String: String]) {
        let cores = System.coreCount
        NIOSingletons.groupLoopCountSuggestion = environment["KVD_EVENT_LOOPS"].flatMap(Int.init).map { max(1, $0) }
            ?? max(1, cores / 2)
        NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
    }
}
