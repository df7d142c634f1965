internal import Storage
package import Transport

/// A URL a member listens on or advertises: scheme, host and port (etcd's `http://host:port`).
package struct MemberURL: Hashable, Sendable, CustomStringConvertible {
    package var isTLS: Bool
    package var host: String
    package var port: Int
    /// `unix://host:port` or `unixs://host:port` (TLS): a Unix domain socket whose path is
    /// `host:port`, as etcd names it.
    package var isUnixSocket = false

    /// Parses `http://host:port` or `https://host:port` (IPv6 hosts in brackets), or etcd's
    /// `unix://` and `unixs://`.
    package init(parsing text: String) throws(ConfigurationError) {
        let schemes = ["http://": (false, false), "https://": (true, false), "unix://": (false, true), "unixs://": (true, true)]
        guard let (prefix, (tls, unix)) = schemes.first(where: { text.hasPrefix($0.key) }) else {
            throw .invalid("URL scheme must be http, https, unix, or unixs: \(text)")
        }
        var rest = Substring(text.dropFirst(prefix.count))
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        let host: Substring
        let portText: Substring
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]"), rest[rest.index(after: close)...].hasPrefix(":") else {
                throw .invalid("URL address does not have the form \"host:port\": \(text)")
            }
            host = rest[rest.index(after: rest.startIndex)..<close]
            portText = rest[rest.index(close, offsetBy: 2)...]
        } else {
            guard let colon = rest.lastIndex(of: ":") else {
                throw .invalid("URL address does not have the form \"host:port\": \(text)")
            }
            host = rest[..<colon]
            portText = rest[rest.index(after: colon)...]
        }
        guard let port = Int(portText), (0...65535).contains(port), !host.isEmpty else {
            throw .invalid("URL address does not have the form \"host:port\": \(text)")
        }
        self.isTLS = tls
        self.host = String(host)
        self.port = port
        self.isUnixSocket = unix
    }

    package var scheme: String { isUnixSocket ? (isTLS ? "unixs" : "unix") : (isTLS ? "https" : "http") }

    package var description: String {
        let shownHost = host.contains(":") ? "[\(host)]" : host
        return "\(scheme)://\(shownHost):\(port)"
    }

    /// The address the peer port listens on or dials for this URL.
    package var peerAddress: PeerAddress {
        PeerAddress(isTLS: isTLS, host: host, port: port, isUnixSocket: isUnixSocket)
    }
}

package enum ConfigurationError: Error, Equatable, CustomStringConvertible {
    case invalid(String)
    package var description: String {
        switch self {
        case .invalid(let message): message
        }
    }
}

/// Certificate files for one listener (etcd's `--cert-file`, `--key-file`, `--trusted-ca-file`,
/// `--client-cert-auth`).
package struct TLSFiles: Sendable, Equatable {
    package var certFile: String
    package var keyFile: String
    package var trustedCAFile: String?
    /// Require a client certificate signed by `trustedCAFile`; a client without one fails the handshake.
    package var clientCertAuth: Bool
    /// `--tls-min-version`, `--tls-max-version`, `--cipher-suites` (the same on both ports, as etcd).
    package var policy: TLSPolicy
    /// With `--auto-tls`/`--peer-auto-tls`: the pair is self-signed for these hosts (made at start-up
    /// when missing), and this member's peer clients do not verify the other members' certificates,
    /// as etcd's do not with a self-signed pair.
    package var selfSignedHosts: [String]?
    /// `--client-cert-allowed-hostname`, or on the peer port `--peer-cert-allowed-cn` /
    /// `--peer-cert-allowed-hostname`: whom a verified certificate must name.
    package var allowed: AllowedIdentity?
    /// `--client-crl-file` / `--peer-crl-file`: certificates refused on the port (`RevocationList`).
    package var crlFile: String?

    package init(certFile: String, keyFile: String, trustedCAFile: String?, clientCertAuth: Bool, policy: TLSPolicy = TLSPolicy()) {
        self.certFile = certFile
        self.keyFile = keyFile
        self.trustedCAFile = trustedCAFile
        self.clientCertAuth = clientCertAuth
        self.policy = policy
    }
}

extension TLSFiles {
    /// The peer port's settings as the transport takes them.
    var peerTLS: PeerTLS {
        PeerTLS(
            certFile: certFile, keyFile: keyFile, trustedCAFile: trustedCAFile, clientCertAuth: clientCertAuth, policy: policy,
            skipServerVerification: selfSignedHosts != nil, allowed: allowed, crlFile: crlFile)
    }
}

/// Everything one member needs to start, in etcd's terms.
package struct MemberConfiguration: Sendable {
    package var name = "default"
    package var dataDirectory = "default.etcd"
    /// `--wal-dir`: the directory of the write-ahead log (RocksDB's), nil for the data directory.
    /// `--grpc-keepalive-interval` and `--grpc-keepalive-timeout`: after this long without a read
    /// the client port pings the client, and closes the connection when no answer comes within
    /// the timeout (etcd sets them only when both are positive; grpc-go's 2 h and 20 s otherwise).
    package var grpcKeepaliveIntervalMilliseconds = 2 * 3_600_000
    /// `--force-new-cluster`: restart an existing member as the only member of its cluster.
    package var forceNewCluster = false
    package var grpcKeepaliveTimeoutMilliseconds = 20_000
    package var walDirectory: String?
    package var listenClientURLs: [MemberURL] = []
    /// `--listen-metrics-urls`: plain HTTP for health probes and Prometheus.
    package var listenMetricsURLs: [MemberURL] = []
    /// `--listen-client-http-urls`: the client's HTTP/1.1 traffic (JSON gateway, /health,
    /// /metrics) on listeners of its own; the client URLs then serve gRPC only, as etcd 3.5's do.
    package var listenClientHTTPURLs: [MemberURL] = []
    package var advertiseClientURLs: [String] = []
    package var initialAdvertisePeerURLs: [String] = []
    /// name → peer URLs, in the order given.
    package var initialCluster: [(name: String, peerURLs: [String])] = []
    package var initialClusterToken = "etcd-cluster"
    /// `--initial-cluster-state`: true for "existing" (join a running cluster).
    package var joinExisting = false
    package var listenPeerURLs: [MemberURL] = []
    package var clientTLS: TLSFiles?
    package var peerTLS: TLSFiles?
    package var limits = KVLimits()
    /// `--heartbeat-interval` in milliseconds (etcd default 100).
    package var heartbeatIntervalMilliseconds = 100
    /// `--election-timeout` in milliseconds (etcd default 1000).
    package var electionTimeoutMilliseconds = 1000
    /// `--snapshot-count` (etcd default 100000).
    package var snapshotCount: UInt64 = 100_000
    /// `--experimental-watch-progress-notify-interval` (etcd default 10 minutes).
    package var watchProgressNotifyIntervalMilliseconds = 600_000
    /// `--block-cache-bytes` (kvd's own): RocksDB's block cache, shared by every column family.
    /// Reads beyond it come from the kernel's page cache, which does not count as the member's memory.
    package var blockCacheBytes = DatabaseOptions().blockCacheBytes
    /// `--quota-backend-bytes`: 0 means etcd's default (2 GiB), negative disables the quota.
    package var quotaBackendBytes: Int64 = 0
    /// `--auto-compaction-mode` and `--auto-compaction-retention`; nil: no automatic compaction.
    package var autoCompaction: AutoCompaction.Mode?
    /// `--experimental-initial-corrupt-check`: before serving clients, compare this member's
    /// HashKV with the other members' and refuse to start when they differ.
    package var initialCorruptCheck = false
    /// `--self-signed-cert-validity`: years a generated self-signed certificate is valid.
    package var selfSignedCertValidityYears = 1
    /// `--enable-grpc-gateway`: etcd's JSON gateway (`/v3/...`) on the client port.
    package var grpcGateway = true
    /// `--max-concurrent-streams`: HTTP/2 streams one client connection may have open; nil: no
    /// limit (etcd's default, 2^32-1).
    package var maxConcurrentStreams: Int?
    /// `--auth-token-ttl`: seconds a simple token lives after its last use (etcd: 300).
    package var authTokenTTLSeconds = 300
    /// `--auth-token`: etcd's simple tokens, or JWT with its options (`sign-method`, `priv-key`,
    /// `pub-key`) and the tokens' lifetime (its `ttl`, etcd's default 5 minutes).
    package var authToken = AuthTokenKind.simple

    package enum AuthTokenKind: Sendable, Equatable {
        case simple
        case jwt(options: [String: String], ttlMilliseconds: Int)
    }
    /// `--strict-reconfig-check` (on by default, as in etcd).
    package var strictReconfigCheck = true
    /// `--experimental-corrupt-check-time` in milliseconds: how often the leader compares the
    /// members' hashes (0: never, etcd's default).
    package var corruptCheckIntervalMilliseconds = 0
    /// `--experimental-snapshot-catchup-entries`: entries kept behind a snapshot for slow
    /// followers; nil: 5,000 or half of `snapshotCount`, whichever is smaller.
    package var snapshotCatchUpEntries: UInt64?

    package init() {}

    /// etcd's `--initial-cluster`: `name=url,...`, a name repeated for each of its URLs.
    package static func parseInitialCluster(_ text: String) throws(ConfigurationError) -> [(name: String, peerURLs: [String])] {
        var members: [(name: String, peerURLs: [String])] = []
        for piece in text.split(separator: ",") {
            let entry = String(piece.drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
            if entry.isEmpty { continue }
            let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { throw .invalid("invalid --initial-cluster entry \"\(entry)\": want name=url") }
            do { _ = try MemberURL(parsing: parts[1]) } catch { throw .invalid("invalid --initial-cluster entry \"\(entry)\": \(error)") }
            if let index = members.firstIndex(where: { $0.name == parts[0] }) {
                members[index].peerURLs.append(parts[1])
            } else {
                members.append((parts[0], [parts[1]]))
            }
        }
        return members
    }
}
