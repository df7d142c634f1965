internal import ArgumentParser
internal import Foundation
internal import Logging
internal import Server
internal import Transport
internal import Yams

/// The member's settings as etcd names them, from flags or from etcd's YAML config file; turned
/// into a `MemberConfiguration` with etcd's validation messages.
struct MemberSettings {
    var name = "default"
    var dataDirectory: String?
    var listenClientURLs = "http://localhost:2379"
    var listenMetricsURLs = ""
    var listenClientHTTPURLs = ""
    var quotaBackendBytes: Int64 = 0
    var autoCompactionMode = "periodic"
    var autoCompactionRetention = "0"
    var advertiseClientURLs = "http://localhost:2379"
    var listenPeerURLs = "http://localhost:2380"
    var initialAdvertisePeerURLs = "http://localhost:2380"
    var initialCluster: String?
    var initialClusterState = "new"
    var initialClusterToken = "etcd-cluster"
    /// `--discovery-srv`: the initial cluster comes from this domain's SRV records (`DNSDiscovery`).
    var discoverySRV = ""
    var discoverySRVName = ""
    var client = TransportSecurity()
    var peer = TransportSecurity()
    var heartbeatInterval = 100
    var electionTimeout = 1000
    var snapshotCount: UInt64 = 100_000
    var maxRequestBytes = 1_572_864
    var maxTxnOps = 128
    var blockCacheBytes = MemberConfiguration().blockCacheBytes
    var watchProgressNotifyInterval = "10m"
    var logLevel = "info"
    var logger = "capnslog"
    var logOutputs = "default"
    var initialCorruptCheck = false
    var grpcGateway = true
    var strictReconfigCheck = true
    var maxConcurrentStreams: UInt32 = .max
    var authToken = "simple"
    var authTokenTTL = 300
    var corruptCheckTime = "0s"
    var snapshotCatchUpEntries: Int?
    var tlsMinVersion = "TLS1.2"
    var tlsMaxVersion = ""
    var cipherSuites = ""
    var walDirectory = ""
    var forceNewCluster = false
    var grpcKeepaliveInterval = "2h"
    var grpcKeepaliveTimeout = "20s"
    var peerCertAllowedCN = ""
    var peerCertAllowedHostname = ""
    var clientCertAllowedHostname = ""
    var clientCRLFile = ""
    var peerCRLFile = ""
    /// etcd settings of the config file accepted without effect (`EtcdFlags.acceptedWithNote`).
    var notes: [EtcdFlags.Note] = []

    struct TransportSecurity {
        var certFile: String?
        var keyFile: String?
        var trustedCAFile: String?
        var clientCertAuth = false
        /// `--auto-tls` / `--peer-auto-tls`: a generated self-signed key pair when no files are given.
        var autoTLS = false
    }
    /// `--self-signed-cert-validity`, in years.
    var selfSignedCertValidity = 1

    init(flags: KVD) {
        name = flags.name
        dataDirectory = flags.dataDirectory
        listenClientURLs = flags.listenClientURLs
        listenMetricsURLs = flags.listenMetricsURLs
        listenClientHTTPURLs = flags.listenClientHTTPURLs
        quotaBackendBytes = flags.quotaBackendBytes
        autoCompactionMode = flags.autoCompactionMode
        autoCompactionRetention = flags.autoCompactionRetention
        advertiseClientURLs = flags.advertiseClientURLs
        listenPeerURLs = flags.listenPeerURLs
        initialAdvertisePeerURLs = flags.initialAdvertisePeerURLs
        initialCluster = flags.initialCluster
        initialClusterState = flags.initialClusterState
        initialClusterToken = flags.initialClusterToken
        discoverySRV = flags.discoverySRV
        discoverySRVName = flags.discoverySRVName
        client = TransportSecurity(
            certFile: flags.certFile, keyFile: flags.keyFile, trustedCAFile: flags.trustedCAFile, clientCertAuth: flags.clientCertAuth,
            autoTLS: flags.autoTLS)
        peer = TransportSecurity(
            certFile: flags.peerCertFile, keyFile: flags.peerKeyFile, trustedCAFile: flags.peerTrustedCAFile,
            clientCertAuth: flags.peerClientCertAuth, autoTLS: flags.peerAutoTLS)
        selfSignedCertValidity = flags.selfSignedCertValidity
        heartbeatInterval = flags.heartbeatInterval
        electionTimeout = flags.electionTimeout
        snapshotCount = flags.snapshotCount
        maxRequestBytes = flags.maxRequestBytes
        maxTxnOps = flags.maxTxnOps
        blockCacheBytes = flags.blockCacheBytes
        watchProgressNotifyInterval = flags.watchProgressNotifyInterval
        logLevel = flags.logLevel
        logger = flags.logger
        logOutputs = flags.logOutputs
        initialCorruptCheck = flags.initialCorruptCheck
        grpcGateway = flags.grpcGateway
        strictReconfigCheck = flags.strictReconfigCheck
        maxConcurrentStreams = flags.maxConcurrentStreams
        authToken = flags.authToken
        authTokenTTL = flags.authTokenTTL
        corruptCheckTime = flags.corruptCheckTime
        snapshotCatchUpEntries = flags.snapshotCatchUpEntries
        tlsMinVersion = flags.tlsMinVersion
        tlsMaxVersion = flags.tlsMaxVersion
        cipherSuites = flags.cipherSuites
        walDirectory = flags.walDirectory
        forceNewCluster = flags.forceNewCluster
        grpcKeepaliveInterval = flags.grpcKeepaliveInterval
        grpcKeepaliveTimeout = flags.grpcKeepaliveTimeout
        peerCertAllowedCN = flags.peerCertAllowedCN
        peerCertAllowedHostname = flags.peerCertAllowedHostname
        clientCertAllowedHostname = flags.clientCertAllowedHostname
        clientCRLFile = flags.clientCRLFile
        peerCRLFile = flags.peerCRLFile
    }

    /// etcd's `--log-outputs`: whether the log goes to standard output rather than standard error.
    /// Files are not written: a process manager keeps kvd's log.
    static func logsToStandardOutput(_ text: String) throws -> Bool {
        switch text {
        case "default", "stderr", "": return false
        case "stdout": return true
        default: throw ValidationError("--log-outputs \"\(text)\": kvd logs to stderr or stdout only")
        }
    }

    /// etcd's `--log-level` values (zap's names), as swift-log levels.
    static func logLevel(_ text: String) throws -> Logger.Level {
        switch text {
        case "debug": return .debug
        case "info": return .info
        case "warn": return .warning
        case "error": return .error
        case "panic", "fatal": return .critical
        default: throw ValidationError("unknown log level \"\(text)\" (--log-level: debug, info, warn, error, panic or fatal)")
        }
    }

    /// etcd's config file (`etcd.conf.yml`): the flag names as keys, TLS under
    /// `client-transport-security` and `peer-transport-security`. Unknown keys are refused.
    init(configFile path: String) throws {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ValidationError("cannot read config file \(path)")
        }
        try self.init(configText: text, path: path)
    }

    /// The settings of a config file's `text`; `path` names it in messages.
    init(configText text: String, path: String) throws {
        guard let root = try Yams.load(yaml: text) as? [String: Any] else {
            throw ValidationError("config file \(path) is not a YAML mapping")
        }
        func string(_ value: Any) -> String { "\(value)" }
        for (key, value) in root {
            // An empty setting (`initial-cluster:`, as in etcd's sample file) keeps the default.
            if value is NSNull { continue }
            switch key {
            case "name": name = string(value)
            case "data-dir": dataDirectory = string(value)
            case "listen-client-urls": listenClientURLs = string(value)
            case "listen-metrics-urls": listenMetricsURLs = string(value)
            case "listen-client-http-urls": listenClientHTTPURLs = string(value)
            case "auto-compaction-mode": autoCompactionMode = string(value)
            case "auto-compaction-retention": autoCompactionRetention = string(value)
            case "quota-backend-bytes":
                guard let bytes = Int64(string(value)) else { throw ValidationError("quota-backend-bytes: \(value) is not a number") }
                quotaBackendBytes = bytes
            case "advertise-client-urls": advertiseClientURLs = string(value)
            case "listen-peer-urls": listenPeerURLs = string(value)
            case "initial-advertise-peer-urls": initialAdvertisePeerURLs = string(value)
            case "initial-cluster": initialCluster = string(value)
            case "initial-cluster-state": initialClusterState = string(value)
            case "initial-cluster-token": initialClusterToken = string(value)
            case "discovery-srv": discoverySRV = string(value)
            case "discovery-srv-name": discoverySRVName = string(value)
            case "heartbeat-interval": heartbeatInterval = try Self.integer(key, value)
            case "election-timeout": electionTimeout = try Self.integer(key, value)
            case "snapshot-count":
                guard let count = UInt64(exactly: try Self.integer(key, value)) else {
                    throw ValidationError("config file: snapshot-count must not be negative, got \(value)")
                }
                snapshotCount = count
            case "max-request-bytes": maxRequestBytes = try Self.integer(key, value)
            case "max-txn-ops": maxTxnOps = try Self.integer(key, value)
            case "block-cache-bytes": blockCacheBytes = try Self.integer(key, value)
            case "experimental-watch-progress-notify-interval": watchProgressNotifyInterval = string(value)
            case "log-level": logLevel = string(value)
            case "logger": logger = string(value)
            case "log-outputs": logOutputs = Self.commaList(value)
            case "experimental-initial-corrupt-check": initialCorruptCheck = Self.boolean(value)
            case "enable-grpc-gateway": grpcGateway = Self.boolean(value)
            case "strict-reconfig-check": strictReconfigCheck = Self.boolean(value)
            case "max-concurrent-streams":
                guard let streams = UInt32(string(value)) else { throw ValidationError("max-concurrent-streams: \(value) is not a number") }
                maxConcurrentStreams = streams
            case "auth-token": authToken = string(value)
            case "auth-token-ttl": authTokenTTL = try Self.integer(key, value)
            case "experimental-corrupt-check-time": corruptCheckTime = string(value)
            case "experimental-snapshot-catchup-entries": snapshotCatchUpEntries = try Self.integer(key, value)
            case "wal-dir": walDirectory = string(value)
            case "force-new-cluster": forceNewCluster = Self.boolean(value)
            case "grpc-keepalive-interval": grpcKeepaliveInterval = Self.duration(string(value))
            case "grpc-keepalive-timeout": grpcKeepaliveTimeout = Self.duration(string(value))
            case "tls-min-version": tlsMinVersion = string(value)
            case "tls-max-version": tlsMaxVersion = string(value)
            case "cipher-suites": cipherSuites = Self.commaList(value)
            case "self-signed-cert-validity": selfSignedCertValidity = try Self.integer(key, value)
            case "debug": if Self.boolean(value) { logLevel = "debug" }
            case "proxy" where string(value) == "off":
                notes.append(EtcdFlags.Note(flag: key, value: "off", note: "kvd has no v2 proxy"))
            case "client-transport-security": client = try Self.security(key, value)
            case "peer-transport-security": peer = try Self.security(key, value)
            case _ where EtcdFlags.acceptedWithNote[key] != nil:
                notes.append(EtcdFlags.Note(flag: key, value: string(value), note: EtcdFlags.acceptedWithNote[key]!.note))
            default:
                // etcd silently ignores zero values of settings kvd does not have; refuse the rest.
                if value is NSNull || "\(value)" == "" || "\(value)" == "false" || "\(value)" == "0" { continue }
                throw ValidationError("config file \(path): setting \(key) is not supported by kvd yet")
            }
        }
    }

    /// A YAML boolean, or its text.
    private static func boolean(_ value: Any) -> Bool { (value as? Bool) ?? ("\(value)" == "true") }

    /// A list in etcd's config file, as the comma-separated string its command line takes.
    private static func commaList(_ value: Any) -> String {
        (value as? [Any])?.map { "\($0)" }.joined(separator: ",") ?? "\(value)"
    }

    private static func integer(_ key: String, _ value: Any) throws -> Int {
        guard let number = value as? Int ?? Int("\(value)") else { throw ValidationError("config file: \(key) must be an integer") }
        return number
    }

    private static func security(_ key: String, _ value: Any) throws -> TransportSecurity {
        guard let map = value as? [String: Any] else { throw ValidationError("config file: \(key) must be a mapping") }
        var security = TransportSecurity()
        for (name, setting) in map {
            let text = "\(setting)"
            switch name {
            case "cert-file": security.certFile = text.isEmpty ? nil : text
            case "key-file": security.keyFile = text.isEmpty ? nil : text
            case "trusted-ca-file": security.trustedCAFile = text.isEmpty ? nil : text
            case "client-cert-auth": security.clientCertAuth = boolean(setting)
            case "auto-tls": security.autoTLS = boolean(setting)
            default:
                if setting is NSNull || text == "" || text == "false" { continue }
                throw ValidationError("config file: \(key).\(name) is not supported by kvd yet")
            }
        }
        return security
    }

    func memberConfiguration() throws -> MemberConfiguration {
        var configuration = MemberConfiguration()
        configuration.name = name
        configuration.dataDirectory = dataDirectory ?? "\(name).etcd"
        configuration.listenClientURLs = try list(listenClientURLs).map { try MemberURL(parsing: $0) }
        configuration.listenMetricsURLs = try list(listenMetricsURLs).map { try MemberURL(parsing: $0) }
        configuration.listenClientHTTPURLs = try list(listenClientHTTPURLs).map { try MemberURL(parsing: $0) }
        let clientURLs = configuration.listenClientURLs + configuration.listenMetricsURLs + configuration.listenClientHTTPURLs
        if let socket = clientURLs.first(where: \.isUnixSocket) {
            throw ValidationError("\(socket): kvd serves clients on http:// and https:// URLs only (unix sockets are for peer URLs)")
        }
        if let secure = configuration.listenMetricsURLs.first(where: \.isTLS) {
            throw ValidationError("--listen-metrics-urls \(secure): only http:// is supported")
        }
        configuration.advertiseClientURLs = list(advertiseClientURLs)
        configuration.quotaBackendBytes = quotaBackendBytes
        configuration.autoCompaction = try AutoCompaction.parse(mode: autoCompactionMode, retention: autoCompactionRetention)
        configuration.listenPeerURLs = try list(listenPeerURLs).map { try MemberURL(parsing: $0) }
        // A unixs:// peer's certificate is checked against the URL's host, which must then be a name.
        let peerURLs = configuration.listenPeerURLs + list(initialAdvertisePeerURLs).compactMap { try? MemberURL(parsing: $0) }
        if let unnamed = peerURLs.first(where: { $0.isUnixSocket && $0.isTLS && Self.isIPAddress($0.host) }) {
            throw ValidationError("\(unnamed): a unixs:// URL needs a host name, which the members' certificates are checked against")
        }
        configuration.initialAdvertisePeerURLs = list(initialAdvertisePeerURLs)
        configuration.initialClusterToken = initialClusterToken
        if !discoverySRV.isEmpty && !(initialCluster ?? "").isEmpty {
            throw ValidationError(
                "multiple discovery or bootstrap flags are set. Choose one of \"initial-cluster\", \"discovery\" or \"discovery-srv\"")
        }
        // With --discovery-srv this stands until the SRV records replace it (`runKVD`).
        configuration.initialCluster = try parseInitialCluster(initialCluster ?? "\(name)=\(initialAdvertisePeerURLs)")
        switch initialClusterState {
        case "new": configuration.joinExisting = false
        case "existing": configuration.joinExisting = true
        default: throw ValidationError("invalid value \"\(initialClusterState)\" for flag -initial-cluster-state: invalid value \"\(initialClusterState)\"")
        }
        let policy: TLSPolicy
        do {
            policy = try TLSPolicy.parse(minimum: tlsMinVersion, maximum: tlsMaxVersion, cipherSuites: cipherSuites)
        } catch {
            throw ValidationError(error.description)
        }
        guard selfSignedCertValidity > 0 else { throw ValidationError("--self-signed-cert-validity must be positive") }
        configuration.selfSignedCertValidityYears = selfSignedCertValidity
        configuration.clientTLS = try tlsFiles(
            client, urls: configuration.listenClientURLs, flagPrefix: "", selfSignedIn: configuration.dataDirectory + "/fixtures/client")
        configuration.peerTLS = try tlsFiles(
            peer, urls: configuration.listenPeerURLs, flagPrefix: "peer-", selfSignedIn: configuration.dataDirectory + "/fixtures/peer")
        configuration.clientTLS?.policy = policy
        configuration.peerTLS?.policy = policy
        if !clientCRLFile.isEmpty { configuration.clientTLS?.crlFile = clientCRLFile }
        if !peerCRLFile.isEmpty { configuration.peerTLS?.crlFile = peerCRLFile }
        configuration.walDirectory = walDirectory.isEmpty ? nil : walDirectory
        configuration.forceNewCluster = forceNewCluster
        // etcd passes both to gRPC only when both are positive; gRPC's defaults apply otherwise.
        if !Self.isOff(grpcKeepaliveInterval) && !Self.isOff(grpcKeepaliveTimeout) {
            configuration.grpcKeepaliveIntervalMilliseconds = try Self.milliseconds(grpcKeepaliveInterval)
            configuration.grpcKeepaliveTimeoutMilliseconds = try Self.milliseconds(grpcKeepaliveTimeout)
        }
        do {
            configuration.peerTLS?.allowed = try AllowedIdentity.from(commonName: peerCertAllowedCN, hostname: peerCertAllowedHostname)
            configuration.clientTLS?.allowed = try AllowedIdentity.from(commonName: nil, hostname: clientCertAllowedHostname)
        } catch {
            throw ValidationError(error.description)
        }
        // kvd checks the name on the chain it verifies itself, against the trusted CA file.
        if configuration.peerTLS?.allowed != nil && configuration.peerTLS?.trustedCAFile == nil {
            throw ValidationError("--peer-cert-allowed-cn and --peer-cert-allowed-hostname need --peer-trusted-ca-file")
        }
        if configuration.clientTLS?.allowed != nil && configuration.clientTLS?.trustedCAFile == nil {
            throw ValidationError("--client-cert-allowed-hostname needs --trusted-ca-file")
        }
        // etcd's checks, in its order (5 × the interval is compared without computing it, which
        // could overflow).
        guard heartbeatInterval > 0 else { throw ValidationError("--heartbeat-interval must be >0 (set to \(heartbeatInterval)ms)") }
        guard electionTimeout > 0 else { throw ValidationError("--election-timeout must be >0 (set to \(electionTimeout)ms)") }
        if heartbeatInterval > electionTimeout / 5 {
            throw ValidationError("--election-timeout[\(electionTimeout)ms] should be at least as 5 times as --heartbeat-interval[\(heartbeatInterval)ms]")
        }
        if electionTimeout > 50_000 {
            throw ValidationError("--election-timeout[\(electionTimeout)ms] is too long, and should be set less than 50000ms")
        }
        configuration.heartbeatIntervalMilliseconds = heartbeatInterval
        configuration.electionTimeoutMilliseconds = electionTimeout
        configuration.snapshotCount = snapshotCount
        configuration.watchProgressNotifyIntervalMilliseconds = try Self.milliseconds(watchProgressNotifyInterval)
        // Unsigned in etcd, so a negative value never gets past its flag parser.
        guard maxRequestBytes >= 0 else { throw ValidationError("invalid value \"\(maxRequestBytes)\" for flag -max-request-bytes") }
        guard maxTxnOps >= 0 else { throw ValidationError("invalid value \"\(maxTxnOps)\" for flag -max-txn-ops") }
        configuration.limits.requestBytesMax = maxRequestBytes
        configuration.limits.txnOpsMax = maxTxnOps
        guard blockCacheBytes > 0 else { throw ValidationError("--block-cache-bytes must be positive, got \(blockCacheBytes)") }
        configuration.blockCacheBytes = blockCacheBytes
        configuration.initialCorruptCheck = initialCorruptCheck
        configuration.grpcGateway = grpcGateway
        configuration.strictReconfigCheck = strictReconfigCheck
        // etcd's default, 2^32-1, means no limit.
        configuration.maxConcurrentStreams = maxConcurrentStreams == .max ? nil : Int(maxConcurrentStreams)
        // etcd: "simple" or "jwt,pub-key=...,priv-key=...,sign-method=...,ttl=...".
        let parts = authToken.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        var options: [String: String] = [:]
        for part in parts.dropFirst() {
            let pair = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            guard pair.count == 2 else { throw ValidationError("--auth-token \(authToken): auth: invalid auth options") }
            options[pair[0]] = pair[1]
        }
        switch parts.first {
        case "simple":
            configuration.authToken = .simple
        case "jwt":
            let ttl = try options["ttl"].map { try Self.milliseconds($0) } ?? 300_000
            configuration.authToken = .jwt(options: options, ttlMilliseconds: ttl)
        default:
            throw ValidationError("--auth-token \(authToken): unknown token type (etcd's are 'simple' and 'jwt')")
        }
        guard authTokenTTL > 0 else { throw ValidationError("--auth-token-ttl must be positive, got \(authTokenTTL)") }
        configuration.authTokenTTLSeconds = authTokenTTL
        if let entries = snapshotCatchUpEntries {
            guard entries > 0 else { throw ValidationError("--experimental-snapshot-catchup-entries must be positive") }
            configuration.snapshotCatchUpEntries = UInt64(entries)
        }
        // etcd's default, 0s, turns the periodic check off.
        if !Self.isOff(corruptCheckTime) {
            configuration.corruptCheckIntervalMilliseconds = try Self.milliseconds(corruptCheckTime)
        }
        return configuration
    }

    /// A duration of etcd's config file: Go's time.Duration goes through JSON as integer
    /// nanoseconds; a string is taken as a flag's would be.
    static func duration(_ text: String) -> String {
        guard let nanoseconds = Int(text) else { return text }
        return nanoseconds <= 0 ? "0s" : "\(max(1, nanoseconds / 1_000_000))ms"
    }

    static func isIPAddress(_ host: String) -> Bool {
        host.contains(":") || (!host.isEmpty && host.allSatisfy { $0.isNumber || $0 == "." })
    }

    /// etcd's zero duration ("0", "0s", "0ms", "0m", "0h"), which turns the feature it sets off.
    static func isOff(_ text: String) -> Bool {
        var number = Substring(text)
        for unit in ["ms", "s", "m", "h"] where number.hasSuffix(unit) {
            number = number.dropLast(unit.count)
            break
        }
        return Double(number) == 0
    }

    /// Go duration strings as etcd's flags take them: "10m", "5s", "500ms", "1h". Like Go's, a
    /// duration must fit in 2^63 nanoseconds (about 292 years).
    static func milliseconds(_ text: String) throws -> Int {
        let units: [(String, Double)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000)]
        let longest = Double(Int64.max / 1_000_000)
        for (unit, factor) in units where text.hasSuffix(unit) {
            let number = text.dropLast(unit.count)
            // "ms" must not be read as "m" + "s": try the longest suffix first (the order above).
            if unit == "s", number.hasSuffix("m") { continue }
            if let value = Double(number), value > 0, value * factor <= longest { return Int(value * factor) }
        }
        throw ValidationError("invalid duration \"\(text)\"")
    }

    /// The key pair of one port: the files given, or with auto TLS a self-signed pair in `selfSignedIn` (made at
    /// start-up if it is not there yet, as etcd keeps it under `<data-dir>/fixtures`).
    private func tlsFiles(_ security: TransportSecurity, urls: [MemberURL], flagPrefix: String, selfSignedIn directory: String) throws
        -> TLSFiles?
    {
        if security.clientCertAuth && security.trustedCAFile == nil {
            throw ValidationError("--\(flagPrefix)client-cert-auth requires --\(flagPrefix)trusted-ca-file")
        }
        if let cert = security.certFile, let key = security.keyFile {
            return TLSFiles(certFile: cert, keyFile: key, trustedCAFile: security.trustedCAFile, clientCertAuth: security.clientCertAuth)
        }
        if security.autoTLS {
            var files = TLSFiles(
                certFile: directory + "/cert.pem", keyFile: directory + "/key.pem", trustedCAFile: security.trustedCAFile,
                clientCertAuth: security.clientCertAuth)
            files.selfSignedHosts = urls.map(\.host)
            return files
        }
        if urls.contains(where: \.isTLS) {
            throw ValidationError("an https URL is given but --\(flagPrefix)cert-file and --\(flagPrefix)key-file are not both set")
        }
        return nil
    }

    private func list(_ text: String) -> [String] {
        text.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
    }

    private func parseInitialCluster(_ text: String) throws -> [(name: String, peerURLs: [String])] {
        do {
            return try MemberConfiguration.parseInitialCluster(text)
        } catch {
            throw ValidationError(error.description)
        }
    }
}
