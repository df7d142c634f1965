internal import Crypto
internal import Foundation
internal import Logging
internal import MVCC
internal import Raft
internal import Storage
internal import Transport

/// How a member comes up (etcd `etcdserver/bootstrap`): restart from its data directory, start a
/// new cluster from `--initial-cluster`, or join a running one (`--initial-cluster-state existing`).
enum Bootstrap {
    struct Result {
        var memberID: MemberID
        var clusterID: MemberID
        var membership: Membership
    }

    static func restoreOrCreate(configuration: MemberConfiguration, database: Database, logStore: RaftLogStore, logger: Logger) async throws -> Result {
        if let identity = try Membership.loadIdentity(from: database) {
            // etcd ignores the --initial-cluster flags once the data directory exists.
            let membership = try Membership.load(from: database) ?? Membership()
            logger.info("restarting member", metadata: ["member-id": "\(identity.member)", "cluster-id": "\(identity.cluster)"])
            if configuration.forceNewCluster {
                try forceNewCluster(member: identity.member, database: database, logStore: logStore, logger: logger)
            }
            return Result(memberID: identity.member, clusterID: identity.cluster, membership: membership)
        }
        guard let local = configuration.initialCluster.first(where: { $0.name == configuration.name }) else {
            throw ConfigurationError.invalid("couldn't find local name \"\(configuration.name)\" in the initial cluster configuration")
        }
        if !DNSDiscovery.sameEndpoints(local.peerURLs, configuration.initialAdvertisePeerURLs) {
            throw ConfigurationError.invalid(
                "--initial-cluster has \(configuration.name)=\(local.peerURLs.joined(separator: ",")) but missing from --initial-advertise-peer-urls=\(configuration.initialAdvertisePeerURLs.joined(separator: ","))"
            )
        }
        // The member is who the initial cluster says (its ID comes from those URLs, as every
        // member computes it), however its own flags spell the same addresses.
        var own = configuration
        own.initialAdvertisePeerURLs = local.peerURLs
        return configuration.joinExisting
            ? try await join(configuration: own, database: database, logger: logger)
            : try create(configuration: own, database: database, logStore: logStore, logger: logger)
    }

    /// etcd's `--force-new-cluster`, for a cluster that lost its quorum for good: this member's
    /// log loses its uncommitted tail, and entries that remove every other member (and add this
    /// one if the configuration lacks it) are appended and committed, so that the member starts
    /// as the only voter of the same cluster, with every committed write. As in etcd, the other
    /// members must not be started again with their old data.
    private static func forceNewCluster(member: MemberID, database: Database, logStore: RaftLogStore, logger: Logger) throws {
        var (hardState, confState) = logStore.initialState()
        let me = NodeID(member.value)
        guard !confState.learners.contains(me) else {
            throw ConfigurationError.invalid("--force-new-cluster: this member is a learner; force a new cluster from a voting member")
        }
        let commit = hardState.commit
        let applied = try database.get(database.columnFamily("meta"), MVCCStore.appliedMarkerKey)
            .map { LogIndex(RaftLogStore.index(from: $0)) } ?? .zero
        // The members as of the commit index: the configuration applied so far, then the
        // committed conf changes after it.
        var members = Set(confState.voters + confState.learners)
        if applied < commit {
            for entry in try logStore.entries(from: applied + 1, to: commit + 1, bytesMax: .max) where entry.type == .confChange {
                switch try decodeConfChange(Array(entry.data.prefix(9))) {
                case .addVoter(let id), .addLearner(let id): members.insert(id)
                case .remove(let id): members.remove(id)
                case .promote: break
                }
            }
        }
        let term = max(hardState.term, try logStore.term(at: commit))
        var changes = members.filter { $0 != me }.sorted().map { ConfChange.remove($0) }
        if !members.contains(me) { changes.append(.addVoter(me)) }
        var index = commit
        var entries: [Entry] = changes.map { change in
            index = index + 1
            return Entry(term: term, index: index, type: .confChange, data: encodeConfChange(change))
        }
        // Already alone: an empty entry still replaces the uncommitted tail.
        if entries.isEmpty {
            index = index + 1
            entries = [Entry(term: term, index: index)]
        }
        let discarded = logStore.lastIndex().rawValue - commit.rawValue
        let batch = WriteBatch()
        logStore.append(entries, into: batch)
        hardState.commit = index
        logStore.setHardState(hardState, into: batch)
        try database.write(batch, sync: true)
        logger.warning("forcing restart as a one-member cluster", metadata: [
            "member-id": "\(member)", "commit-index": "\(commit)", "discarded-uncommitted-entries": "\(discarded)",
            "removed-members": "\(changes.compactMap { if case .remove(let id) = $0 { MemberID(id.rawValue).description } else { nil } })",
        ])
    }

    /// etcdctl's `snapshot restore`: a new data directory whose key space (history, leases) is
    /// the image's and whose membership is a new cluster's, from `--initial-cluster` (the
    /// image's members and alarms are dropped). Every member of the new cluster is restored from
    /// the same image with its own `--name`, then they start as a new cluster does.
    static func restore(imagePath: String, configuration: MemberConfiguration, skipHashCheck: Bool, logger: Logger) throws -> Result {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: imagePath), options: .alwaysMapped)
        } catch {
            throw ConfigurationError.invalid("open \(imagePath): no such file or directory")
        }
        // etcd's snapshot stream ends with the SHA-256 of the database before it; a database
        // copied from a data directory has none and needs --skip-hash-check (etcd's rules).
        let hasHash = data.count % 512 == 32
        if !hasHash && !skipHashCheck {
            throw ConfigurationError.invalid("snapshot missing hash but --skip-hash-check=false")
        }
        if hasHash && !skipHashCheck {
            let expected = Array(data.suffix(32))
            let actual = Array(SHA256.hash(data: data.prefix(data.count - 32)))
            guard actual == expected else {
                throw ConfigurationError.invalid("expected sha256 \(expected), got \(actual)")
            }
        }
        let memberDirectory = configuration.dataDirectory + "/member"
        if FileManager.default.fileExists(atPath: configuration.dataDirectory) {
            throw ConfigurationError.invalid("data-dir \"\(configuration.dataDirectory)\" exists")
        }
        try FileSystem.createDirectory(memberDirectory + "/snap")
        let database = try Member.openDatabase(configuration)
        if EtcdBackupFile.isBoltFile(imagePath) {
            try EtcdBackupFile.restore(from: imagePath, into: database)
        } else {
            // kvd's own image, as client snapshots were before they became etcd backends.
            let image = WriteBatch()
            try SnapshotImage.install(from: imagePath, into: image, database: database, families: NodeLoop.stateFamilies)
            try database.write(image, sync: true)
        }
        guard let local = configuration.initialCluster.first(where: { $0.name == configuration.name }) else {
            throw ConfigurationError.invalid("couldn't find local name \"\(configuration.name)\" in the initial cluster configuration")
        }
        var own = configuration
        own.initialAdvertisePeerURLs = local.peerURLs
        let logStore = try RaftLogStore(database: database)
        let result = try create(configuration: own, database: database, logStore: logStore, logger: logger)
        // The restored key space is in no log entry: the log must begin after it, as etcd's
        // restore starts the WAL with a snapshot record. A member added later then gets a snapshot
        // from the leader; with the bootstrap entries still there it would replay them and start
        // with an empty key space.
        let (hardState, confState) = logStore.initialState()
        let snapshot = WriteBatch()
        try logStore.recordSnapshot(at: hardState.commit, confState: confState, compactTo: hardState.commit, into: snapshot)
        try database.write(snapshot, sync: true)
        return result
    }

    /// A new cluster: every initial member writes the same bootstrap log (one committed conf
    /// change per member), so they agree on membership before the first election.
    private static func create(configuration: MemberConfiguration, database: Database, logStore: RaftLogStore, logger: Logger) throws -> Result {
        var membership = Membership()
        for member in configuration.initialCluster {
            let id = ClusterIdentity.memberID(peerURLs: member.peerURLs, token: configuration.initialClusterToken)
            membership.upsert(MemberRecord(id: id, name: member.name, peerURLs: member.peerURLs, clientURLs: [], isLearner: false))
        }
        let memberID = ClusterIdentity.memberID(peerURLs: configuration.initialAdvertisePeerURLs, token: configuration.initialClusterToken)
        let clusterID = ClusterIdentity.clusterID(memberIDs: membership.members.map(\.id))
        let confState = ConfState(voters: membership.members.map { NodeID($0.id.value) }, learners: [])
        let (entries, hardState) = bootstrapLog(for: confState)
        let batch = WriteBatch()
        logStore.append(entries, into: batch)
        logStore.setHardState(hardState, into: batch)
        logStore.setConfState(confState, into: batch)
        membership.save(into: batch, database: database)
        Membership.saveIdentity(cluster: clusterID, member: memberID, into: batch, database: database)
        batch.put(database.columnFamily("meta"), MVCCStore.appliedMarkerKey, RaftLogStore.key(hardState.commit))
        try database.write(batch, sync: true)
        logger.info("started a new cluster", metadata: ["member-id": "\(memberID)", "cluster-id": "\(clusterID)", "members": "\(membership.members.count)"])
        return Result(memberID: memberID, clusterID: clusterID, membership: membership)
    }

    /// Joining: ask the listed peers for the cluster, find ourselves among its members by our
    /// peer URLs (MemberAdd put us there), and start with an empty log for the leader to fill.
    private static func join(configuration: MemberConfiguration, database: Database, logger: Logger) async throws -> Result {
        let ownURLs = Set(configuration.initialAdvertisePeerURLs)
        var lastError: (any Error)?
        for member in configuration.initialCluster where member.name != configuration.name {
            for url in member.peerURLs {
                guard let parsed = try? MemberURL(parsing: url) else { continue }
                do {
                    let (clusterID, members) = try await PeerTransport.fetchClusterInfo(
                        from: parsed.peerAddress,
                        tls: configuration.peerTLS?.peerTLS
                    )
                    guard let me = members.first(where: { Set($0.peerURLs) == ownURLs }) else {
                        throw ConfigurationError.invalid(
                            "no member of cluster \(MemberID(clusterID)) has peer URLs \(ownURLs.sorted().joined(separator: ",")); add this member first (member add)"
                        )
                    }
                    var membership = Membership()
                    for remote in members {
                        let name = configuration.initialCluster.first { Set($0.peerURLs) == Set(remote.peerURLs) }?.name ?? ""
                        membership.upsert(MemberRecord(id: MemberID(remote.id.rawValue), name: name, peerURLs: remote.peerURLs, clientURLs: [], isLearner: remote.isLearner))
                    }
                    let batch = WriteBatch()
                    membership.save(into: batch, database: database)
                    Membership.saveIdentity(cluster: MemberID(clusterID), member: MemberID(me.id.rawValue), into: batch, database: database)
                    try database.write(batch, sync: true)
                    logger.info("joining cluster", metadata: ["member-id": "\(MemberID(me.id.rawValue))", "cluster-id": "\(MemberID(clusterID))"])
                    return Result(memberID: MemberID(me.id.rawValue), clusterID: MemberID(clusterID), membership: membership)
                } catch let error as ConfigurationError {
                    throw error
                } catch {
                    lastError = error
                }
            }
        }
        throw ConfigurationError.invalid("cannot fetch cluster info from peer URLs of --initial-cluster: \(lastError.map { "\($0)" } ?? "no peers listed")")
    }
}
