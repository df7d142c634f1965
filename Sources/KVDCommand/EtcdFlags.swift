internal import ArgumentParser

/// etcd 3.5's server flags as kvd takes them. Every etcd flag is one of three kinds:
/// - implemented: declared on `KVD` and parsed by ArgumentParser;
/// - accepted with a note: the flag only tunes a part of etcd that kvd does not have (bbolt, the
///   v2 store, pprof), or asks for what kvd always does; it is taken off the command line and a
///   note is logged at start-up, so that a kubeadm manifest or an etcd test harness starts kvd
///   unchanged and nothing changes silently;
/// - refused: it would change what the member does (who may connect, how it bootstraps, where
///   its data lives) and kvd does not do that yet, so it stops with a clear message rather than
///   serve differently from what was asked.
enum EtcdFlags {
    /// A flag accepted with a note.
    struct Accepted {
        /// Whether `--flag value` takes the next argument (value flags), or only `--flag[=bool]`.
        let takesValue: Bool
        let note: String
    }

    static let acceptedWithNote: [String: Accepted] = {
        var table: [String: Accepted] = [:]
        func add(_ names: [String], value: Bool, _ note: String) {
            for name in names { table[name] = Accepted(takesValue: value, note: note) }
        }
        add(["backend-batch-interval", "backend-batch-limit"], value: true,
            "kvd commits the state once per apply round, not in timed bbolt batches")
        add(["backend-bbolt-freelist-type", "experimental-backend-bbolt-freelist-type",
             "experimental-bootstrap-defrag-threshold-megabytes"], value: true, "kvd stores its state in RocksDB, not bbolt")
        add(["experimental-memory-mlock", "experimental-txn-mode-write-with-shared-buffer"], value: false,
            "kvd stores its state in RocksDB, not bbolt")
        add(["experimental-compaction-batch-limit", "experimental-compaction-sleep-interval"], value: true,
            "kvd removes compacted history in steps of 1,000 keys, one per millisecond at most")
        add(["max-snapshots", "max-wals"], value: true,
            "kvd keeps one snapshot image and bounds RocksDB's write-ahead log itself")
        add(["experimental-compact-hash-check-enabled"], value: false,
            "not implemented yet: kvd does not compare hashes after compactions; check with 'kvctl endpoint hashkv --cluster'")
        add(["experimental-compact-hash-check-time"], value: true,
            "not implemented yet: kvd does not compare hashes after compactions; check with 'kvctl endpoint hashkv --cluster'")
        add(["experimental-enable-lease-checkpoint", "experimental-enable-lease-checkpoint-persist"], value: false,
            "not implemented: a new leader restarts every lease's TTL, as etcd does without checkpoints")
        add(["experimental-warning-apply-duration", "experimental-warning-unary-request-duration",
             "experimental-downgrade-check-time", "experimental-wait-cluster-ready-timeout",
             "experimental-max-learners", "experimental-distributed-tracing-address",
             "experimental-distributed-tracing-service-name", "experimental-distributed-tracing-instance-id",
             "experimental-distributed-tracing-sampling-rate"], value: true, "no effect in kvd")
        add(["experimental-stop-grpc-service-on-defrag", "experimental-enable-distributed-tracing",
             "experimental-peer-skip-client-san-verification", "socket-reuse-port", "socket-reuse-address"], value: false,
            "no effect in kvd")
        add(["enable-v2", "experimental-enable-v2v3"], value: false, "kvd serves only the v3 API")
        // etcd's sample config file sets these; they only matter with a v2 proxy or v2 discovery.
        add(["proxy-failure-wait", "proxy-refresh-interval", "proxy-dial-timeout", "proxy-write-timeout",
             "proxy-read-timeout", "discovery-fallback"], value: true, "kvd has no v2 proxy and no v2 discovery")
        add(["v2-deprecation"], value: true, "kvd serves only the v3 API")
        add(["enable-pprof"], value: false, "kvd has no pprof endpoints; /metrics has its per-stage histograms")
        add(["metrics"], value: true, "kvd always exports its histograms on /metrics")
        add(["pre-vote"], value: false, "kvd always does this")
        add(["initial-election-tick-advance"], value: false, "kvd's members wait one election timeout on start")
        add(["host-whitelist", "cors"], value: true, "kvd serves no v2 HTTP API these would guard")
        add(["log-package-levels"], value: true, "capnslog package levels do not apply; use --log-level")
        add(["enable-log-rotation"], value: false, "kvd writes its log to standard error; rotate it outside")
        add(["log-rotation-config-json"], value: true, "kvd writes its log to standard error; rotate it outside")
        add(["unsafe-no-fsync"], value: false, "kvd always fsyncs its Raft log")
        add(["grpc-keepalive-min-time"], value: true,
            "kvd acknowledges every client keepalive PING, as etcd 3.4 does at its default")
        add(["bcrypt-cost"], value: true, "kvd hashes passwords with PBKDF2-HMAC-SHA256 at a fixed cost, not bcrypt")
        return table
    }()

    /// etcd flags that would change what the member does in a way kvd does not implement yet.
    static let refused: Set<String> = [
        "discovery", "discovery-proxy",
    ]

    /// Boolean etcd flags kvd implements, which etcd also accepts as `--flag=true|false`.
    static let booleanFlags: Set<String> = [
        "client-cert-auth", "peer-client-cert-auth", "debug", "experimental-initial-corrupt-check", "version",
        "auto-tls", "peer-auto-tls", "force-new-cluster",
    ]

    /// Boolean etcd flags that are on unless `--flag=false`.
    static let trueByDefault: Set<String> = ["enable-grpc-gateway", "strict-reconfig-check"]

    /// A flag taken off the command line, and why it changes nothing.
    struct Note: Equatable {
        let flag: String
        let value: String?
        let note: String
    }

    /// etcd accepts `--flag=true|false` for booleans and one dash as well as two; ArgumentParser
    /// wants `--flag`. Normalises, takes off the flags accepted with a note (returned, to be
    /// logged), and refuses the unsupported ones with a clear message.
    static func normalise(_ arguments: [String]) throws -> (arguments: [String], notes: [Note]) {
        var out: [String] = []
        var notes: [Note] = []
        var position = 0
        while position < arguments.count {
            var argument = arguments[position]
            position += 1
            if argument.hasPrefix("-") && !argument.hasPrefix("--") && argument.count > 2 { argument = "-" + argument }
            guard argument.hasPrefix("--") else {
                out.append(argument)
                continue
            }
            let parts = argument.dropFirst(2).split(separator: "=", maxSplits: 1).map(String.init)
            let name = parts.first ?? ""
            var value = parts.count > 1 ? parts[1] : nil
            if refused.contains(name) {
                throw ValidationError("etcd flag --\(name) is not supported by kvd yet")
            }
            if name == "proxy" {
                // etcd's v2 proxy: only "off" (its default) is what kvd does.
                if value == nil && position < arguments.count {
                    value = arguments[position]
                    position += 1
                }
                guard value == "off" else { throw ValidationError("etcd flag --proxy \(value ?? "") is not supported by kvd yet") }
                notes.append(Note(flag: name, value: value, note: "kvd has no v2 proxy"))
                continue
            }
            if let accepted = acceptedWithNote[name] {
                if accepted.takesValue && value == nil && position < arguments.count {
                    value = arguments[position]
                    position += 1
                }
                notes.append(Note(flag: name, value: value, note: accepted.note))
                continue
            }
            if booleanFlags.contains(name), let value {
                if value == "true" { out.append("--\(name)") }
                continue
            }
            if trueByDefault.contains(name), let value {
                out.append(value == "false" ? "--no-\(name)" : "--\(name)")
                continue
            }
            out.append(argument)
        }
        return (out, notes)
    }
}
