# shellcheck shell=bash
# Tests/Cluster/lib.sh: helpers for the multi-process cluster tests (real kvd
# processes on loopback, mutual TLS on client and peer ports).
#
# Builds on Tests/Compat/lib.sh (temp dir, cleanup trap that stops our servers by
# PID, free_port, pass/fail/summary). Use:
#   . "$(dirname "$0")/lib.sh"
#   cluster_init NAME            # temp dir, PKI, trap
#   cluster_start n1 n2 n3       # three members, waits for health and a leader
#   nctl n2 put k v              # etcdctl against one member (mTLS, timeout-bounded)
#   cctl endpoint status         # etcdctl against all running members
#   node_kill9 n1; node_restart n1
#
# Each member NAME gets free client/peer ports (NODE_CPORT/NODE_PPORT), data dir
# $COMPAT_TMP/NAME.data, log $COMPAT_TMP/NAME.log (appended across restarts).
# Members run with --heartbeat-interval HB_MS --election-timeout ET_MS
# (defaults 100/1000) unless a test passes other flags.

CLUSTER_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../Compat/lib.sh
. "$CLUSTER_DIR/../Compat/lib.sh"

# Log lines that show a snapshot was taken (leader) and installed (a lagging follower).
# KVD_BIN=/usr/bin/etcd runs the suites against etcd 3.4 to validate them.
if [[ $(basename "$KVD_BIN") == etcd ]]; then
    LOG_SNAPSHOT_RECORDED='saved snapshot'
    LOG_SNAPSHOT_INSTALLED='applied incoming snapshot'
else
    LOG_SNAPSHOT_RECORDED='recorded snapshot'
    LOG_SNAPSHOT_INSTALLED='installed snapshot'
fi
HB_MS=${HB_MS:-100}
ET_MS=${ET_MS:-1000}
CLUSTER_TOKEN=kvd-cluster-test
PKI=""
declare -A NODE_ARGS=()   # the full kvd argument list of each member (for restarts), %q-quoted
declare -A NODE_ENV=()    # VAR=value words put in a member's environment (e.g. LD_PRELOAD), if any
FAST=(--dial-timeout=2s --command-timeout=3s)

cluster_init() {
    compat_init "$1"
    PKI=$(certs_dir)
    [[ -x $KVD_BIN ]] || die "kvd binary '$KVD_BIN' not found (build it: swift build --product kvd)"
}

# _new_port: a free port not yet given to any member of this test (free_port runs in a
# subshell here, so its own memory of handed-out ports is lost).
_new_port() {
    local p taken
    while :; do
        p=$(free_port)
        taken=" ${SERVER_CPORT[*]} ${SERVER_PPORT[*]} "
        [[ $taken == *" $p "* ]] || { echo "$p"; return; }
    done
}

# node_ports NAME: allocate NAME's ports once (call in the main shell, not in $(...)).
node_ports() {
    if [[ -z ${SERVER_CPORT[$1]:-} ]]; then
        SERVER_CPORT[$1]=$(_new_port)
        SERVER_PPORT[$1]=$(_new_port)
    fi
    SERVER_EP[$1]=https://127.0.0.1:${SERVER_CPORT[$1]}
    SERVER_MODE[$1]=tls
    SERVER_KIND[$1]=kvd
}

peer_url() { echo "https://127.0.0.1:${SERVER_PPORT[$1]}"; }

# start_alone BIN NAME [flags...]: NAME as a one-member cluster running BIN (kvd or etcd), waited for
# (call in the main shell: it allocates NAME's ports).
start_alone() {
    local bin=$1 name=$2; shift 2
    node_ports "$name"
    KVD_BIN=$bin node_start "$name" new "$(initial_cluster "$name")" "$@"
    wait_healthy "$START_TIMEOUT" "$name" || die "$name: one-member cluster did not become healthy"
}

# initial_cluster NAME...: name=peerURL,... for the given members (ports from node_ports).
initial_cluster() {
    local n out=""
    for n in "$@"; do out+="${out:+,}$n=$(peer_url "$n")"; done
    echo "$out"
}

# node_start NAME STATE INITIAL_CLUSTER [extra kvd flags...]: start one member (no wait),
# running $KVD_BIN (KVD_BIN=$ETCD_BIN node_start ... starts an etcd member instead).
# The peer certificate/key/CA can be overridden with PEER_CERT/PEER_KEY/PEER_CA.
node_start() {
    local name=$1 state=$2 ic=$3; shift 3
    node_ports "$name"
    SERVER_DATA[$name]=${SERVER_DATA[$name]:-$COMPAT_TMP/$name.data}
    SERVER_LOG[$name]=$COMPAT_TMP/$name.log
    SERVER_BIN[$name]=$KVD_BIN
    local args=(
        --name "$name" --data-dir "${SERVER_DATA[$name]}"
        --listen-client-urls "${SERVER_EP[$name]}" --advertise-client-urls "${SERVER_EP[$name]}"
        --listen-peer-urls "$(peer_url "$name")" --initial-advertise-peer-urls "$(peer_url "$name")"
        --initial-cluster "$ic" --initial-cluster-state "$state" --initial-cluster-token "$CLUSTER_TOKEN"
        --cert-file "$PKI/etcd/server.crt" --key-file "$PKI/etcd/server.key"
        --trusted-ca-file "$PKI/etcd/ca.crt" --client-cert-auth
        --peer-cert-file "${PEER_CERT:-$PKI/etcd/peer.crt}" --peer-key-file "${PEER_KEY:-$PKI/etcd/peer.key}"
        --peer-trusted-ca-file "${PEER_CA:-$PKI/etcd/ca.crt}" --peer-client-cert-auth
        --heartbeat-interval "$HB_MS" --election-timeout "$ET_MS"
        "$@"
    )
    NODE_ARGS[$name]=$(printf '%q ' "${args[@]}")
    _node_exec "$name"
}

_node_exec() {
    local name=$1 args
    eval "args=(${NODE_ARGS[$name]})"
    local environment=()
    read -r -a environment <<<"${NODE_ENV[$name]:-}"
    echo "=== $(date -u +%T.%N) start: ${environment[*]} ${SERVER_BIN[$name]} ${args[*]}" >>"${SERVER_LOG[$name]}"
    setsid env "${environment[@]}" "${SERVER_BIN[$name]}" "${args[@]}" >>"${SERVER_LOG[$name]}" 2>&1 </dev/null &
    SERVER_PID[$name]=$!
    vlog "started $name pid ${SERVER_PID[$name]}"
}

# node_restart NAME: start NAME again with the same flags, data dir and ports.
node_restart() {
    [[ -z ${SERVER_PID[$1]:-} ]] || die "node_restart $1: still running"
    _node_exec "$1"
}

node_kill9() {
    echo "=== $(date -u +%T.%N) kill -9" >>"${SERVER_LOG[$1]}"
    server_kill9 "$1"
}
node_stop() {
    echo "=== $(date -u +%T.%N) stop (SIGTERM)" >>"${SERVER_LOG[$1]}"
    server_stop "$1"
}
node_running() { [[ -n ${SERVER_PID[$1]:-} ]] && kill -0 "${SERVER_PID[$1]}" 2>/dev/null; }

tls_flags() {
    printf '%s\n' "--cacert=$PKI/etcd/ca.crt" "--cert=$PKI/apiserver-etcd-client.crt" \
        "--key=$PKI/apiserver-etcd-client.key"
}

# ectl ENDPOINTS ARGS...: etcdctl with the apiserver client cert, bounded by CMD_TIMEOUT.
ectl() {
    local eps=$1; shift
    timeout -k 2 "$CMD_TIMEOUT" "$ETCDCTL_BIN" --endpoints="$eps" \
        --cacert="$PKI/etcd/ca.crt" --cert="$PKI/apiserver-etcd-client.crt" \
        --key="$PKI/apiserver-etcd-client.key" "$@"
}

# nctl NAME ARGS...: etcdctl against member NAME only.
nctl() { local n=$1; shift; ectl "${SERVER_EP[$n]}" "$@"; }

# running_eps: comma-separated client URLs of the members that are running.
running_eps() {
    local n out=""
    for n in $(printf '%s\n' "${!SERVER_PID[@]}" | sort); do out+="${out:+,}${SERVER_EP[$n]}"; done
    echo "$out"
}

# cctl ARGS...: etcdctl against every running member.
cctl() { ectl "$(running_eps)" "$@"; }

# status_line NAME: etcdctl's simple status of NAME:
#   endpoint, ID, version, db size, is leader, is learner, term, index, applied, errors
status_line() { CMD_TIMEOUT=5 nctl "$1" "${FAST[@]}" endpoint status 2>/dev/null; }

# member_id NAME / is_leader NAME / applied_index NAME (from endpoint status)
member_id() { status_line "$1" | awk -F', ' '{print $2}'; }
is_leader() { [[ $(status_line "$1" | awk -F', ' '{print $5}') == true ]]; }
applied_index() { status_line "$1" | awk -F', ' '{print $9}'; }
raft_index() { status_line "$1" | awk -F', ' '{print $8}'; }
raft_term() { status_line "$1" | awk -F', ' '{print $7}'; }

# leaders NAME...: the names (among those given) that report being leader.
leaders() {
    local n out=()
    for n in "$@"; do is_leader "$n" && out+=("$n"); done
    echo "${out[*]}"
}

# wait_healthy SECONDS NAME...: until each answers a linearizable get (health). Returns 1 on timeout.
wait_healthy() {
    local secs=$1; shift
    local deadline=$((SECONDS + secs)) n ok
    while ((SECONDS < deadline)); do
        ok=1
        for n in "$@"; do
            node_running "$n" || { log "member $n is not running"; return 1; }
            # With authentication on, a refused read is an answer too (as etcdctl endpoint health takes it).
            local out rc=0
            out=$(CMD_TIMEOUT=4 nctl "$n" "${FAST[@]}" get health 2>&1) || rc=$?
            ((rc == 0)) || [[ $out == *"permission denied"* ]] || { ok=0; break; }
        done
        ((ok)) && return 0
        sleep 0.2
    done
    return 1
}

# wait_one_leader SECONDS NAME...: until exactly one of them reports leader; prints it.
wait_one_leader() {
    local secs=$1; shift
    local deadline=$((SECONDS + secs)) l
    while ((SECONDS < deadline)); do
        l=$(leaders "$@")
        if [[ -n $l && $l != *" "* ]]; then echo "$l"; return 0; fi
        sleep 0.2
    done
    return 1
}

# cluster_start NAME...: start a new cluster of these members; dies if it does not become healthy.
cluster_start() {
    local ic n
    for n in "$@"; do node_ports "$n"; done
    ic=$(initial_cluster "$@")
    for n in "$@"; do node_start "$n" new "$ic" "${EXTRA_FLAGS[@]}"; done
    wait_healthy "$START_TIMEOUT" "$@" || die "cluster $* did not become healthy within ${START_TIMEOUT}s"
}
EXTRA_FLAGS=()

# now_ms: wall clock in milliseconds.
now_ms() { date +%s%3N; }

# put_many NAME PREFIX COUNT [PARALLEL]: put PREFIX<i> = v<i> for i in 1..COUNT through
# member NAME with PARALLEL (default 4) concurrent etcdctl loops. Returns the number of
# failed puts as its status (0 = all acknowledged), capped at 255.
put_many() {
    local name=$1 prefix=$2 count=$3 par=${4:-4} w pids=() failed=0 f
    for ((w = 0; w < par; w++)); do
        (
            local i bad=0
            for ((i = w + 1; i <= count; i += par)); do
                nctl "$name" "${FAST[@]}" put "$prefix$i" "v$i" >/dev/null 2>&1 || bad=$((bad + 1))
            done
            echo "$bad" >"$COMPAT_TMP/put_many.$w"
        ) &
        pids+=($!)
    done
    wait "${pids[@]}"
    for ((w = 0; w < par; w++)); do
        f=$(cat "$COMPAT_TMP/put_many.$w" 2>/dev/null || echo 1)
        failed=$((failed + f))
    done
    ((failed > 255)) && failed=255
    return "$failed"
}

# count_keys NAME PREFIX [serializable]: number of keys under PREFIX as member NAME sees them.
count_keys() {
    local c=()
    [[ ${3:-} == serializable ]] && c=(--consistency=s)
    local out
    out=$(nctl "$1" "${FAST[@]}" get "$2" --prefix --keys-only "${c[@]}" 2>/dev/null) || return 0
    grep -c . <<<"$out"
}

# wait_caught_up SECONDS NAME PREFIX COUNT: until NAME serves COUNT keys under PREFIX from
# its own state (serializable read). Returns 1 on timeout.
wait_caught_up() {
    local deadline=$((SECONDS + $1)) name=$2 prefix=$3 want=$4
    while ((SECONDS < deadline)); do
        [[ $(count_keys "$name" "$prefix" serializable) == "$want" ]] && return 0
        sleep 0.2
    done
    return 1
}

# check_keys NAME PREFIX COUNT: every PREFIX<i> = v<i> (1..COUNT) is present on NAME
# (serializable: NAME's own copy). Prints the number of wrong or missing keys.
check_keys() {
    local name=$1 prefix=$2 count=$3
    nctl "$name" get "$prefix" --prefix --consistency=s 2>/dev/null | paste -d ' ' - - | sort >"$COMPAT_TMP/check.got"
    for ((i = 1; i <= count; i++)); do echo "$prefix$i v$i"; done | sort >"$COMPAT_TMP/check.want"
    comm -23 "$COMPAT_TMP/check.want" "$COMPAT_TMP/check.got" | wc -l
}

# Acknowledged writes under load (durability.sh, power-loss.sh). The caller sets EPS (the
# endpoints to write through, e.g. $(running_eps)) and `nodes` (the members verify reads back).
# writer PHASE W: put d/PHASE/W/i until the phase's stop file appears; a put is recorded as
# acknowledged only when etcdctl exits 0 (ack.PHASE.W), a failed one with its error (fail.PHASE.W).
writer() {
    local p=$1 w=$2 i=0 acks=$COMPAT_TMP/ack.$1.$2
    : >"$acks"
    while [[ ! -e $COMPAT_TMP/stop.$p && ! -e $COMPAT_TMP/stop.all ]]; do
        i=$((i + 1))
        if CMD_TIMEOUT=4 ectl "$EPS" --dial-timeout=1s --command-timeout=2s put "d/$p/$w/$i" "v$p.$w.$i" >/dev/null 2>"$COMPAT_TMP/err.$1.$2"; then
            echo "d/$p/$w/$i v$p.$w.$i" >>"$acks"
        else
            echo "d/$p/$w/$i $(tail -n 1 "$COMPAT_TMP/err.$1.$2")" >>"$COMPAT_TMP/fail.$1.$2"
        fi
    done
}
WPIDS=()
# start_writers PHASE: WRITERS (default 4) writer loops.
start_writers() {
    local w
    [[ -n ${WRITERS_HOOKED:-} ]] || COMPAT_CLEANUP_HOOKS+=('touch "$COMPAT_TMP/stop.all"; [[ ${#WPIDS[@]} -eq 0 ]] || wait "${WPIDS[@]}" 2>/dev/null')
    WRITERS_HOOKED=1
    WPIDS=()
    for ((w = 1; w <= ${WRITERS:-4}; w++)); do writer "$1" "$w" & WPIDS+=($!); done
}
stop_writers() { touch "$COMPAT_TMP/stop.$1"; wait "${WPIDS[@]}" 2>/dev/null; WPIDS=(); }
acks_of() { cat "$COMPAT_TMP"/ack."$1".* 2>/dev/null | wc -l; }

# verify LABEL PHASES...: every acked put of those phases readable through every member.
verify() {
    local label=$1 n p missing acked revs=""; shift
    for p in "$@"; do cat "$COMPAT_TMP"/ack."$p".* 2>/dev/null; done | sort >"$COMPAT_TMP/acks.all"
    acked=$(wc -l <"$COMPAT_TMP/acks.all")
    ((acked > 0)) && pass "$label: $acked acknowledged puts" || fail "$label: no put was acknowledged"
    for n in "${nodes[@]}"; do
        if ! nctl "$n" get d/ --prefix >"$COMPAT_TMP/dump.$n" 2>"$COMPAT_TMP/dump.err"; then
            fail "$label: reading back through $n failed: $(tail -n 1 "$COMPAT_TMP/dump.err")"; continue
        fi
        paste -d ' ' - - <"$COMPAT_TMP/dump.$n" | sort >"$COMPAT_TMP/got.$n"
        missing=$(comm -23 "$COMPAT_TMP/acks.all" "$COMPAT_TMP/got.$n" | wc -l)
        if ((missing == 0)); then pass "$label: every acknowledged put readable through $n"
        else
            fail "$label: $missing of $acked acknowledged puts missing through $n"
            comm -23 "$COMPAT_TMP/acks.all" "$COMPAT_TMP/got.$n" | head -n 5 | sed 's/^/    missing: /' >&2
        fi
        revs+="$(nctl "$n" get d/ --prefix --limit 1 -w fields 2>/dev/null | awk -F' : ' '/^"Revision"/{print $2}') "
    done
    set -- $revs
    if [[ $# == 3 && $1 == "$2" && $2 == "$3" ]]; then pass "$label: same revision everywhere ($1)"
    else fail "$label: revisions differ: $revs"; fi
}

# same_hashkv LABEL: every running member reports one HashKV (asked up to three times: a member
# that has just caught up may still be hashing a large store).
same_hashkv() {
    local label=$1 hashes try
    for try in 1 2 3; do
        hashes=$(CMD_TIMEOUT=30 cctl --command-timeout=25s endpoint hashkv 2>/dev/null | awk -F', ' '{print $2}' | sort -u)
        [[ $(grep -c . <<<"$hashes") == 1 ]] && break
        sleep 2
    done
    [[ $(grep -c . <<<"$hashes") == 1 ]] && pass "$label: one HashKV on every member ($hashes)" ||
        fail "$label: HashKV differs or was not answered: $(tr '\n' ' ' <<<"$hashes")"
}

# followers_of LEADER NAME...: the names other than LEADER.
others() { local l=$1 n; shift; for n in "$@"; do [[ $n == "$l" ]] || printf '%s ' "$n"; done; }

# wait_exit NAME SECONDS: waits for member NAME to stop by itself; then sets EXIT_STATUS to its
# exit status and forgets it. Returns 1, leaving it running, if it has not stopped in time.
wait_exit() {
    local name=$1 pid=${SERVER_PID[$1]} i
    for ((i = 0; i < $2 * 10; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && return 1
    EXIT_STATUS=0
    wait "$pid" 2>/dev/null || EXIT_STATUS=$?
    unset "SERVER_PID[$name]"
    echo "=== $(date -u +%T.%N) exited with status $EXIT_STATUS" >>"${SERVER_LOG[$name]}"
}

# expect_removed_exit NAME: a member removed from the cluster stops by itself (as etcd's
# does) within 10 s, without crashing (exit status < 128, no Swift "Fatal error" in its log).
expect_removed_exit() {
    local name=$1 rc
    [[ -n ${SERVER_PID[$1]:-} ]] || { fail "removed member $name: not started by us"; return; }
    if ! wait_exit "$name" 10; then
        fail "removed member $name still running 10 s after its removal (etcd's stops)"
        node_stop "$name"
        return
    fi
    rc=$EXIT_STATUS
    if ((rc >= 128)) || grep -q "Fatal error" "${SERVER_LOG[$name]}"; then
        fail "removed member $name crashed on exit (status $rc): $(grep -m1 -E 'Fatal error|removed from the cluster' "${SERVER_LOG[$name]}")"
    else
        pass "removed member $name stopped by itself (status $rc)"
    fi
}

# reconfig_settle: etcd and kvd refuse membership changes ("etcdserver: unhealthy cluster")
# until the member asked has been connected to every voter for 5 s (strict reconfiguration check).
reconfig_settle() { sleep 5; }
