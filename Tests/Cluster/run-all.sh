#!/usr/bin/env bash
# Tests/Cluster/run-all.sh: runs the multi-process cluster tests in order and totals them:
#   configs    the shipped n1..n3.yaml (rewritten for loopback) form a cluster via --config-file
#   corrupt    --experimental-initial-corrupt-check: a member whose RocksDB lost a record refuses to start
#   tls-flags  --cipher-suites (beside etcd 3.4), --tls-min-version, --tls-max-version on both ports
#   cert-identity --peer-cert-allowed-cn, --peer-cert-allowed-hostname, --client-cert-allowed-hostname beside
#              etcd 3.4 (openssl probes), a member whose peer certificate names another CN cannot join
#   flags      kubeadm's and etcd's e2e harness's etcd flags start kvd (notes for those without effect),
#              etcd's start-up log lines in order, --log-level, refused flags
#   wal-dir    --wal-dir: the write-ahead log there, kill -9 recovery from it, another directory refused,
#              a restore with --wal-dir; etcd 3.4's WAL placement beside it
#   client-http-urls --listen-client-http-urls: HTTP/1.1 (health, gateway) there, gRPC alone on the client URLs
#   force-new-cluster  kvd beside etcd 3.4: all three killed, one restarted alone with --force-new-cluster
#              serves every key as the only member, stays so after a plain restart; a new member joins it
#   formation  (a) forms, one leader; (b) writes via any member, linearizable reads via every member
#   unix-peers three members on unix:// peer URLs (sockets); a leader killed and restarted
#   dns-discovery --discovery-srv beside etcd 3.4: three members bootstrapped from SRV records served by a
#              DNS server of the test's own (a network namespace), clients finding the endpoints, refusals
#   failover   (c) kill -9 of the leader, writes resume <= 3 election timeouts; (d) follower catch-up from the log
#   snapshot   (e) --snapshot-count 50, follower catches up through a snapshot
#   membership (f) learner add, promote, remove, replace, while serving
#   reconfig   refused membership changes (etcd's errors, strict reconfig check), requests via followers
#   rogue      (g) a member with a rogue-CA peer certificate cannot join
#   durability (h) no acknowledged put lost across kill -9 of a minority and of all three
#   disk-faults syncs slowed to 300 ms on a follower and the leader (no election), a failed sync on the
#              leader (it stops at once, loudly; the others go on; it catches up on a healthy disk)
#   disk-full   a follower's, then the leader's disk fills under load (tmpfs): it stops, saying so; the
#              others go on; it refuses to start on the full disk; with space back it catches up
#   power-loss  power cuts (an LD_PRELOAD sync log, unsynced bytes cut after kill -9, last record torn) of
#              the leader and of all three under load: no acknowledged put lost, one HashKV, all restart
#   crl        --client-crl-file / --peer-crl-file: a revoked client certificate refused (beside etcd 3.4),
#              the list re-read per connection, the peer port closing a revoked certificate's connection
#   cert-rotation  server and peer pairs renewed, then the CA rotated, under load without a restart: the
#              new certificates served on every port, no put failed, the members still reach each other
#   kvctl      kvctl's endpoint, member and move-leader commands print what etcdctl 3.4 prints
#   kvctl-watch kvctl's watch, lease, snapshot, alarm and defrag beside etcdctl 3.4 (watches side by side)
#   etcdctl    Debian etcdctl against kvd, differential against a three-member etcd 3.4
#   http       /health, /version, /metrics on --listen-metrics-urls beside etcd 3.4
#   gateway    etcd's JSON gateway (/v3/kv/*, watch and keep-alive streams, lease, cluster, errors) with
#              curl beside etcd 3.4; --enable-grpc-gateway=false
#   tcp-gateway `kvd gateway start` (etcd's TCP gateway) beside `etcd gateway start`: etcdctl through
#              both, an endpoint down, all down and back, its own address refused, SIGTERM
#   lock-election  etcd's v3lock and v3election services through the gateway beside etcd 3.4: waiting
#              holders and candidates, proclaim, resign, observe, etcd's errors; kvctl lock/elect beside etcdctl
#   make-mirror kvctl make-mirror beside etcdctl's: a 1,010-key base and live changes, equal destinations
#   maintenance snapshot save, defrag --cluster, hashkv equal on all members after a restart
#   alarm      NOSPACE with --quota-backend-bytes beside etcd 3.4: writes refused, reads, deletes,
#              compaction and defrag work, disarm
#   compaction --auto-compaction-mode periodic beside etcd 3.4; a bad retention is refused
#   watch-lease etcdctl watch and lease commands, kvd beside etcd 3.4: identical outputs
#   auth       users, roles and authentication (tokens, permissions, cert CN) beside etcd 3.4, with etcdctl and kvctl
#   restore    snapshot save, kvctl snapshot restore into a new three-member cluster
#   migration  etcd 3.4 <-> kvd through etcd's snapshot file: snapshot status, restore, same keys, revision, hashkv, leases
#   noleader   a member without quorum beside etcd 3.4: hasleader watches canceled, etcd's errors
#   pings      HTTP/2 keepalive pings without RPCs beside etcd 3.4: acknowledged, no GOAWAY
#   kube-patterns  kube-apiserver's etcd3 storage patterns (Tests/KubePatterns), one member kill -9'd mid-run
# Each suite's failures go to stderr; its result line is printed here, then
#   cluster: N passed, M failed
# (exit non-zero if any failed). A suite that dies without a result line counts as one
# failure. Environment: KVD_BIN, KVCTL_BIN, KUBE_PATTERNS_BIN, ETCDCTL_BIN, QUICK=1 (shorter durability run),
# SUITES="formation failover" (a subset), VERBOSE=1, KEEP_TMP=1.
# About 7 minutes on a 2-core machine with QUICK=1 (the etcd differentials start etcd clusters too).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
suites=${SUITES:-configs flags corrupt tls-flags crl cert-rotation cert-identity wal-dir force-new-cluster client-http-urls formation unix-peers dns-discovery failover snapshot membership reconfig rogue durability disk-faults disk-full power-loss etcdctl http gateway tcp-gateway lock-election make-mirror maintenance alarm kvctl kvctl-watch compaction kube-patterns watch-lease auth restore migration noleader pings}
total_pass=0
total_fail=0
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
for suite in $suites; do
    rc=0
    timeout -k 10 300 "$here/$suite.sh" >"$tmp" || rc=$?
    line=$(grep -E "^$suite: [0-9]+ passed, [0-9]+ failed$" "$tmp" | tail -n 1)
    if [[ -z $line ]]; then
        cat "$tmp"
        line="$suite: 0 passed, 1 failed (exited $rc without a result)"
        total_fail=$((total_fail + 1))
    else
        p=${line#*: }; p=${p%% passed*}
        f=${line##*, }; f=${f%% failed*}
        total_pass=$((total_pass + p))
        total_fail=$((total_fail + f))
        if [[ $rc -ne 0 && $f -eq 0 ]]; then
            line="$line (but exited $rc)"
            total_fail=$((total_fail + 1))
        fi
    fi
    echo "$line"
done
echo "cluster: $total_pass passed, $total_fail failed"
[[ $total_fail -eq 0 ]]
