package import Raft

/// Certificates for the peer port (etcd's `--peer-cert-file`, `--peer-key-file`,
/// `--peer-trusted-ca-file`, `--peer-client-cert-auth`).
package struct PeerTLS: Sendable, Equatable {
    package var certFile: String
    package var keyFile: String
    package var trustedCAFile: String?
    /// Refuse peers without a certificate signed by `trustedCAFile`.
    package var clientCertAuth: Bool
    /// TLS versions and cipher suites, for the peer listener and this member's peer clients.
    package var policy: TLSPolicy
    /// `--peer-auto-tls`: this member's peer clients accept any certificate, as etcd's do with a
    /// self-signed pair (no CA could vouch for one).
    package var skipServerVerification: Bool
    /// `--peer-cert-allowed-cn` / `--peer-cert-allowed-hostname`: whom the other members'
    /// certificates must name, both when they connect and when they are dialed.
    package var allowed: AllowedIdentity?
    /// `--peer-crl-file`: certificates refused on the peer port (`RevocationList`).
    package var crlFile: String?

    package init(
        certFile: String, keyFile: String, trustedCAFile: String?, clientCertAuth: Bool, policy: TLSPolicy = TLSPolicy(),
        skipServerVerification: Bool = false, allowed: AllowedIdentity? = nil, crlFile: String? = nil
    ) {
        self.certFile = certFile
        self.keyFile = keyFile
        self.trustedCAFile = trustedCAFile
        self.clientCertAuth = clientCertAuth
        self.policy = policy
        self.skipServerVerification = skipServerVerification
        self.allowed = allowed
        self.crlFile = crlFile
    }

    /// The name the dialed members' certificates must carry and the CA their chains must reach,
    /// when this member checks them itself (not with `--peer-auto-tls`, whose peers nobody vouches for).
    var identityCheck: (allowed: AllowedIdentity, trustedCAFile: String)? {
        guard !skipServerVerification, let allowed, let trustedCAFile else { return nil }
        return (allowed, trustedCAFile)
    }
}

/// A peer address: scheme, host, port (from a member's peer URL).
package struct PeerAddress: Sendable, Hashable, CustomStringConvertible {
    package var isTLS: Bool
    package var host: String
    package var port: Int
    /// etcd's `unix://` / `unixs://` peer URLs: a Unix domain socket at `socketPath`.
    package var isUnixSocket: Bool

    package init(isTLS: Bool, host: String, port: Int, isUnixSocket: Bool = false) {
        self.isTLS = isTLS
        self.host = host
        self.port = port
        self.isUnixSocket = isUnixSocket
    }

    /// A Unix domain socket's path: the URL's `host:port`, relative to the working directory, as
    /// etcd takes it.
    package var socketPath: String { "\(host):\(port)" }

    /// Where a TCP connection goes: "localhost" as the IPv4 loopback, as the listeners bind it.
    var dialHost: String { host == "localhost" ? "127.0.0.1" : host }

    package var description: String {
        let scheme = isUnixSocket ? (isTLS ? "unixs" : "unix") : (isTLS ? "https" : "http")
        return "\(scheme)://\(host):\(port)"
    }
}

/// Where the transport hands what it receives: the node loop's inbox. Calls must not block.
package protocol PeerInbox: Sendable {
    /// Raft messages from a member of this cluster, in the order they were sent.
    func deliver(_ messages: [Message])
    /// A complete snapshot: the Raft message and the file holding the state image. The inbox owns
    /// the file from now on.
    func deliverSnapshot(_ message: Message, imagePath: String)
    /// Whether `id` is a member (messages from others are dropped and logged).
    func isMember(_ id: NodeID) -> Bool
    /// Whether `id` was a member and has been removed (its Raft streams are refused as such).
    func isRemoved(_ id: NodeID) -> Bool
    /// The members and their peer URLs, for a member joining an existing cluster.
    func peerMembers() -> [PeerMemberInfo]
    /// A keep-alive or TTL query forwarded by a follower (only the leader tracks deadlines).
    /// Refusals are thrown as etcd's gRPC errors.
    func queryLease(_ id: Int64, renew: Bool) async throws -> LeaseAnswer
    /// A learner promotion forwarded by a follower (only the leader knows whether the learner
    /// has caught up). Refusals are thrown as the client should see them.
    func promoteMember(_ id: UInt64) async throws
    /// This member's HashKV up to `revision` (0: its current revision), for a member checking
    /// its data against this one's. Refusals are thrown as etcd's gRPC errors.
    func hashKV(upTo revision: Int64) async throws -> PeerHashKV
}

/// One member's hash of its key space (etcd's HashKVResponse, as the corruption checks use it).
package struct PeerHashKV: Sendable, Equatable {
    package var hash: UInt32
    /// The compaction point the hash starts above.
    package var compactRevision: Int64
    /// The revision the hash covers up to.
    package var revision: Int64
    package var memberID: UInt64

    package init(hash: UInt32, compactRevision: Int64, revision: Int64, memberID: UInt64) {
        self.hash = hash
        self.compactRevision = compactRevision
        self.revision = revision
        self.memberID = memberID
    }
}

/// The leader's answer about one lease.
package struct LeaseAnswer: Sendable, Equatable {
    package var isLeader: Bool
    package var found: Bool
    /// Seconds left (after a renewal: the full TTL).
    package var ttlSeconds: Int64
    package var grantedTTLSeconds: Int64

    package init(isLeader: Bool, found: Bool, ttlSeconds: Int64, grantedTTLSeconds: Int64) {
        self.isLeader = isLeader
        self.found = found
        self.ttlSeconds = ttlSeconds
        self.grantedTTLSeconds = grantedTTLSeconds
    }
}

/// One member as a joining member learns it.
package struct PeerMemberInfo: Sendable, Equatable {
    package var id: NodeID
    package var peerURLs: [String]
    package var isLearner: Bool

    package init(id: NodeID, peerURLs: [String], isLearner: Bool) {
        self.id = id
        self.peerURLs = peerURLs
        self.isLearner = isLearner
    }
}

/// What the transport tells the node about its sends.
package protocol PeerStatusSink: Sendable {
    /// A member could not be reached: Raft stops pipelining to it and probes.
    func reportUnreachable(_ id: NodeID)
    /// A snapshot send finished or failed.
    func reportSnapshot(to id: NodeID, failed: Bool)
    /// A member refused this member's messages because this member was removed from the cluster
    /// (the leader stops replicating to a removed member, which may never apply its removal).
    func reportRemoved()
}
