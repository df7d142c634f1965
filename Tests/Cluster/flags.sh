#!/usr/bin/env bash
# Tests/Cluster/flags.sh: etcd's server flags as kubeadm's etcd manifest and etcd's own test
# harness pass them.
#   - one member started with the flags kubeadm adds (booleans as --flag=true,
#     --experimental-initial-corrupt-check=true, --experimental-watch-progress-notify-interval=5s,
#     --snapshot-count=10000) and flags etcd's e2e harness adds (--strict-reconfig-check=false,
#     --enable-v2, --max-concurrent-streams 100, one dash instead of two) serves, runs the initial
#     corruption check, and logs one note per flag it accepted without effect; the same flags start etcd 3.4 (so that they are
#     spelled as etcd spells them);
#   - its log has the lines etcd's tooling waits for: "ready to serve client requests", then
#     "enabled capabilities for version", then "published" in etcd's order; a restart logs them again;
#   - --log-level debug logs debug lines and the default level does not;
#   - --logger zap --log-outputs stdout writes etcd 3.5's JSON lines; --version prints etcd's four lines; an unknown --log-level, a flag kvd refuses, a JWT key that is missing, an unknown JWT method and a zero token TTL
#     (--discovery) stop it with a message.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cluster_init flags

kubeadm_flags=(--client-cert-auth=true --peer-client-cert-auth=true --experimental-initial-corrupt-check=true
    --experimental-watch-progress-notify-interval=5s --snapshot-count=10000)
harness_flags=(--strict-reconfig-check=false --enable-v2 --max-concurrent-streams 100 -max-wals=5)

# line_number FILE TEXT: the first line of FILE containing TEXT (0: none).
line_number() { grep -n -F -- "$2" "$1" | head -1 | cut -d: -f1 | grep . || echo 0; }

for kind in etcd kvd; do
    n=$kind
    bin=$KVD_BIN
    [[ $kind == etcd ]] && bin=$ETCD_BIN
    node_ports "$n"
    KVD_BIN=$bin node_start "$n" new "$(initial_cluster "$n")" "${kubeadm_flags[@]}" "${harness_flags[@]}"
    if wait_healthy "$START_TIMEOUT" "$n"; then pass "$kind serves with kubeadm's and the e2e harness's flags"; else fail "$kind did not serve with kubeadm's flags"; fi
done
expect_eq "kvd's put and get" "v" "$(nctl kvd put k v >/dev/null && nctl kvd get k --print-value-only)"

log=${SERVER_LOG[kvd]}
expect_eq "the initial corruption check ran" 1 "$(grep -c 'initial corruption checking passed' "$log")"
notes=$(grep -c 'etcd flag accepted without effect' "$log")
expect_eq "one note per flag without effect" 2 "$notes"
for flag in --enable-v2 --max-wals=5; do
    grep -q -F -- "flag=$flag " "$log" && pass "note for $flag" || fail "no note for $flag"
done
# Published once the attributes went through Raft (up to a second after health).
for ((i = 0; i < 50; i++)); do grep -q 'published local member' "$log" && break; sleep 0.1; done
capabilities=$(line_number "$log" "enabled capabilities for version")
published=$(line_number "$log" "published local member to cluster through raft")
ready=$(line_number "$log" "ready to serve client requests")
if ((ready > 0 && capabilities > 0 && capabilities < published)); then
    pass "start-up lines in etcd's order"
else
    fail "start-up lines: ready at $ready, capabilities at $capabilities, published at $published"
fi
expect_eq "no debug lines at the default level" 0 "$(grep -c '^[^ ]* debug ' "$log")"

node_stop kvd
NODE_ARGS[kvd]+=$(printf ' %q' --log-level debug)
: >"$log"
node_restart kvd
if wait_healthy "$START_TIMEOUT" kvd; then pass "restarted with --log-level debug"; else fail "no restart with --log-level debug"; fi
for ((i = 0; i < 50; i++)); do grep -q 'published local member' "$log" && break; sleep 0.1; done
[[ $(line_number "$log" "published local member to cluster through raft") -gt 0 ]] &&
    pass "a restart publishes again" || fail "a restart did not log its publication"
[[ $(grep -c '^[^ ]* debug .*member configuration' "$log") -ge 1 ]] && pass "--log-level debug logs debug lines" ||
    fail "--log-level debug: no debug line"

# --logger zap --log-outputs stdout: every line a JSON object in zap's shape, etcd's lines among them.
node_stop kvd
NODE_ARGS[kvd]+=$(printf ' %q' --logger zap --log-outputs stdout)
: >"$log"
node_restart kvd
if wait_healthy "$START_TIMEOUT" kvd; then pass "restarted with --logger zap"; else fail "no restart with --logger zap"; fi
for ((i = 0; i < 50; i++)); do grep -q 'published local member' "$log" && break; sleep 0.1; done
zap=$(grep -v '^===' "$log" | python3 -c '
import json, sys
lines = [json.loads(l) for l in sys.stdin if l.strip()]
shaped = all(set(("level", "ts", "caller", "msg")) <= set(l) for l in lines)
msgs = [l["msg"] for l in lines]
print(len(lines) > 0 and shaped, "enabled capabilities for version" in msgs, "published local member to cluster through raft" in msgs)
' 2>&1)
expect_eq "zap lines: JSON, etcd's fields, etcd's messages" "True True True" "$zap"

expect_eq "--version in etcd's shape" "$("$ETCD_BIN" --version | head -1 | cut -d' ' -f1-2)" \
    "$("$KVD_BIN" --version | head -1 | cut -d' ' -f1-2)"
expect_eq "--version=true" 4 "$("$KVD_BIN" --version=true | grep -c .)"
out=$("$KVD_BIN" --data-dir "$COMPAT_TMP/refused" --log-level loud 2>&1); rc=$?
expect_eq "--log-level loud exits non-zero" 1 "$((rc != 0))"
expect_eq "--log-level loud says why" 1 "$(grep -c 'unknown log level "loud"' <<<"$out")"
out=$("$KVD_BIN" --data-dir "$COMPAT_TMP/refused" --discovery https://discovery.example 2>&1); rc=$?
expect_eq "--discovery exits non-zero" 1 "$((rc != 0))"
expect_eq "--discovery says why" 1 "$(grep -c 'etcd flag --discovery is not supported by kvd yet' <<<"$out")"
out=$("$KVD_BIN" --data-dir "$COMPAT_TMP/refused" --auth-token jwt,priv-key=/nonexistent,sign-method=RS256 2>&1); rc=$?
expect_eq "--auth-token jwt without its key exits non-zero" 1 "$((rc != 0))"
expect_eq "--auth-token jwt without its key says why" 1 "$(grep -c 'open /nonexistent: no such file or directory' <<<"$out")"
out=$("$KVD_BIN" --data-dir "$COMPAT_TMP/refused" --auth-token jwt,sign-method=XX256 2>&1); rc=$?
expect_eq "--auth-token jwt with an unknown method is refused" 1 "$(( rc != 0 && $(grep -c 'auth: invalid auth signature method' <<<"$out") == 1 ))"
out=$("$KVD_BIN" --data-dir "$COMPAT_TMP/refused" --auth-token-ttl 0 2>&1); rc=$?
expect_eq "--auth-token-ttl 0 is refused" 1 "$(( rc != 0 && $(grep -c 'auth-token-ttl must be positive' <<<"$out") == 1 ))"

# --auto-tls and --peer-auto-tls, beside etcd 3.4: each member makes its own self-signed pairs under
# <data-dir>/fixtures; clients that skip verification get in, clients that verify do not.
auto_tls() {
    local bin=$1 dir=$COMPAT_TMP/auto.$2 cp pp out
    cp=$(_new_port); pp=$(_new_port)
    "$bin" --name a --data-dir "$dir" --listen-client-urls "https://127.0.0.1:$cp" \
        --advertise-client-urls "https://127.0.0.1:$cp" --listen-peer-urls "https://127.0.0.1:$pp" \
        --initial-advertise-peer-urls "https://127.0.0.1:$pp" --initial-cluster "a=https://127.0.0.1:$pp" \
        --auto-tls --peer-auto-tls >"$dir.log" 2>&1 </dev/null &
    local pid=$!
    for ((i = 0; i < 50; i++)); do
        out=$(timeout 5 "$ETCDCTL_BIN" --endpoints "https://127.0.0.1:$cp" --insecure-skip-tls-verify \
            --insecure-transport=false put k v 2>&1) && break
        sleep 0.2
    done
    echo "put: $out"
    timeout 5 "$ETCDCTL_BIN" --endpoints "https://127.0.0.1:$cp" --cacert "$PKI/etcd/ca.crt" \
        --dial-timeout 1s --command-timeout 2s get k >/dev/null 2>&1
    echo "a client that verifies: exit $?"
    echo "pairs: $(cd "$dir/fixtures" && ls client peer 2>&1 | tr '\n' ' ')"
    kill "$pid"; wait "$pid" 2>/dev/null
}
expect_eq "--auto-tls --peer-auto-tls (kvd as etcd 3.4)" "$(auto_tls "$ETCD_BIN" e)" "$(auto_tls "$KVD_BIN" k)"
summary flags
