# shellcheck shell=bash
# Tests/Jepsen/cluster.sh: a kvd cluster inside the namespaces of netns.sh, over mutual TLS
# (client and peer), plus etcdctl from the client namespace and pass/fail bookkeeping.
#
#   . Tests/Jepsen/cluster.sh
#   jc_init partition            # temp dir, cleanup trap, namespaces, PKI with the namespace IPs
#   jc_start                     # members 1..JC_N, each in its namespace, waits for a leader
#   jc_ctl 2 put k v             # etcdctl (from the client namespace) against member 2
#   jc_leader                    # index of the member that reports being leader (or nothing)
#   jc_kill9 2; jc_restart 2; jc_pause 2; jc_resume 2
#   jc_power_cut 2 torn SEED     # kill -9, then its unsynced bytes lost (Tests/Faults)
#   jc_disk 2 "delay 300"; jc_disk 2 eio; jc_disk 2 ""   # its syncs slow, failing, healthy
#   jc_clock 2 +7200; jc_clock 2 +0                     # its wall clock 2 h ahead, then right
#   jc_converged 20              # same revision and hashkv on every member (prints them)
#
# Cleanup (EXIT trap): background jobs registered in JC_BG_PIDS, then the kvd members
# (by PID, SIGCONT first so a paused one can die), then the namespaces; logs are printed
# if the script failed; the temp dir is removed unless KEEP_TMP=1.

JEPSEN_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$JEPSEN_DIR/../.." && pwd)
# shellcheck source=netns.sh
. "$JEPSEN_DIR/netns.sh"
# shellcheck source=../Faults/faults.sh
. "$JEPSEN_DIR/../Faults/faults.sh"

KVD_BIN=${KVD_BIN:-$REPO_ROOT/.build/debug/kvd}
ETCDCTL_BIN=${ETCDCTL_BIN:-/usr/bin/etcdctl}
for _v in KVD_BIN ETCDCTL_BIN; do
    if [[ ${!_v} == */* && ${!_v} != /* ]]; then printf -v "$_v" '%s' "$PWD/${!_v}"; fi
done
unset _v
export ETCDCTL_API=3
JC_N=${JC_N:-3}
HB_MS=${HB_MS:-100}
ET_MS=${ET_MS:-1000}
JC_TOKEN=kvd-jepsen
JC_NAME=""
JC_TMP=""
JC_PKI=""
JC_FAILED=0
PASS=0
FAIL=0
JC_BG_PIDS=()
declare -A JC_PID=() JC_PAUSED=()
FAST=(--dial-timeout=1s --command-timeout=2s)

log() { echo "[$JC_NAME $(date -u +%T.%3N)] $*" >&2; }
die() { log "FATAL: $*"; JC_FAILED=1; exit 1; }
pass() { PASS=$((PASS + 1)); echo "ok   - $*"; }
fail() { FAIL=$((FAIL + 1)); JC_FAILED=1; echo "FAIL - $*"; }
summary() { echo "$1: $PASS passed, $FAIL failed"; ((FAIL == 0)); }
now_ms() { date +%s%3N; }

jc_init() {
    JC_NAME=$1
    JC_TMP=$(mktemp -d "${TMPDIR:-/tmp}/kvd-jepsen-$1.XXXXXX")
    NET_LOG=$JC_TMP/net.log
    trap '_jc_cleanup $?' EXIT
    trap 'exit 130' INT TERM
    [[ -x $KVD_BIN ]] || die "kvd binary '$KVD_BIN' not found (build it: swift build --product kvd)"
    [[ -x $ETCDCTL_BIN ]] || die "etcdctl '$ETCDCTL_BIN' not found (Debian package etcd-client)"
    netns_setup "$JC_N" || die "could not create network namespaces (prefix $NETNS_PREFIX)"
    build_fault_libraries "$JC_TMP" || die "cannot build the fault libraries (Tests/Faults)"
    local i sans=()
    for ((i = 1; i <= JC_N; i++)); do sans+=("$(netns_ip "$i")"); done
    JC_PKI=$JC_TMP/pki
    "$REPO_ROOT/cluster-configs/gen-certs.sh" "$JC_PKI" "${sans[@]}" || die "gen-certs.sh failed"
}

_jc_cleanup() {
    local rc=$1 p i
    trap - EXIT
    for p in "${JC_BG_PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for i in "${!JC_PID[@]}"; do
        p=${JC_PID[$i]}
        kill -CONT "$p" 2>/dev/null
        kill -9 "$p" 2>/dev/null
    done
    for i in "${!JC_PID[@]}"; do wait "${JC_PID[$i]}" 2>/dev/null; done
    for p in "${JC_BG_PIDS[@]}"; do wait "$p" 2>/dev/null; done
    netns_teardown
    if [[ $rc -ne 0 || $JC_FAILED -ne 0 ]] && [[ -n $JC_TMP ]]; then
        for ((i = 1; i <= JC_N; i++)); do
            [[ -s $JC_TMP/n$i.log ]] || continue
            echo "----- log of n$i: last ${LOG_LINES:-40} lines -----" >&2
            tail -n "${LOG_LINES:-40}" "$JC_TMP/n$i.log" >&2
        done
        [[ -s $NET_LOG ]] && { echo "----- faults -----" >&2; cat "$NET_LOG" >&2; }
    fi
    if [[ ${KEEP_TMP:-0} == 1 ]]; then
        log "kept temp dir $JC_TMP"
    elif [[ -n $JC_TMP ]]; then
        rm -rf "$JC_TMP"
    fi
    exit "$rc"
}

jc_ep() { echo "https://$(netns_ip "$1"):2379"; }
jc_all_eps() {
    local i out=""
    for ((i = 1; i <= JC_N; i++)); do out+="${out:+,}$(jc_ep "$i")"; done
    echo "$out"
}
jc_initial_cluster() {
    local i out=""
    for ((i = 1; i <= JC_N; i++)); do out+="${out:+,}n$i=https://$(netns_ip "$i"):2380"; done
    echo "$out"
}

jc_args() {
    local i=$1 ip
    ip=$(netns_ip "$i")
    JC_ARGS=(
        --name "n$i" --data-dir "$JC_TMP/n$i.data"
        --listen-client-urls "https://$ip:2379" --advertise-client-urls "https://$ip:2379"
        --listen-peer-urls "https://$ip:2380" --initial-advertise-peer-urls "https://$ip:2380"
        --initial-cluster "$(jc_initial_cluster)" --initial-cluster-state "${JC_STATE[$i]:-new}" --initial-cluster-token "$JC_TOKEN"
        --cert-file "$JC_PKI/etcd/server.crt" --key-file "$JC_PKI/etcd/server.key"
        --trusted-ca-file "$JC_PKI/etcd/ca.crt" --client-cert-auth
        --peer-cert-file "$JC_PKI/etcd/peer.crt" --peer-key-file "$JC_PKI/etcd/peer.key"
        --peer-trusted-ca-file "$JC_PKI/etcd/ca.crt" --peer-client-cert-auth
        --heartbeat-interval "$HB_MS" --election-timeout "$ET_MS"
        "${JC_EXTRA_FLAGS[@]}"
    )
}
JC_EXTRA_FLAGS=()
declare -A JC_STATE=()   # "existing" for a member added to the running cluster (jc_args)

# jc_node_start I: start member I in its namespace (no wait). ip netns exec and env exec kvd,
# so the PID recorded is kvd's own. Every member runs with the fault libraries (Tests/Faults):
# its syncs slowed or failed through $JC_TMP/nI.fault (jc_disk), its sync log in nI.synclog
# (jc_power_cut), its wall clock offset by nI.clock (jc_clock).
jc_node_start() {
    local i=$1
    jc_args "$i"
    echo "=== $(date -u +%T.%N) start" >>"$JC_TMP/n$i.log"
    [[ -s $JC_TMP/n$i.clock ]] || echo "+0" >"$JC_TMP/n$i.clock"
    ip netns exec "$(netns_name "$i")" env "LD_PRELOAD=$(fault_preload "$JC_TMP")" "CLOCKSHIFT_FILE=$JC_TMP/n$i.clock" \
        "DISKFAULT_CONTROL=$JC_TMP/n$i.fault" "POWERLOSS_LOG=$JC_TMP/n$i.synclog" "POWERLOSS_DIR=$JC_TMP/n$i.data/" \
        "$KVD_BIN" "${JC_ARGS[@]}" >>"$JC_TMP/n$i.log" 2>&1 </dev/null &
    JC_PID[$i]=$!
    JC_PAUSED[$i]=0
}
jc_restart() {
    jc_running "$1" && return 0
    [[ -n ${JC_PID[$1]:-} ]] && wait "${JC_PID[$1]}" 2>/dev/null   # reap a member that died by itself
    jc_node_start "$1"
}
# jc_running I: member I's process exists and is not a zombie (an exited child stays one until waited).
jc_running() {
    local st
    [[ -n ${JC_PID[$1]:-} ]] || return 1
    st=$(ps -o stat= -p "${JC_PID[$1]}" 2>/dev/null) || return 1
    [[ -n $st && $st != Z* ]]
}
jc_kill9() {
    local p=${JC_PID[$1]:-}
    [[ -n $p ]] || return 0
    echo "=== $(date -u +%T.%N) kill -9" >>"$JC_TMP/n$1.log"
    kill -CONT "$p" 2>/dev/null
    kill -9 "$p" 2>/dev/null
    wait "$p" 2>/dev/null
    unset "JC_PID[$1]"
    JC_PAUSED[$1]=0
    _net_log "kill9 $1"
}
# jc_power_cut I MODE SEED: kill -9 member I, then cut its files back to what its syncs made
# durable (MODE torn or clean, Tests/Faults/powerloss.py); prints what was cut.
jc_power_cut() {
    jc_kill9 "$1"
    echo "=== $(date -u +%T.%N) power cut ($2)" >>"$JC_TMP/n$1.log"
    power_cut_files "$JC_TMP/n$1.synclog" "$2" "$3" | tee -a "$JC_TMP/n$1.log"
}
# jc_disk I FAULT: member I's syncs from now on: "" (as usual), "delay MS", or "eio".
jc_disk() { echo "$2" >"$JC_TMP/n$1.fault"; _net_log "disk $1 ${2:-healthy}"; }
# jc_clock I OFFSET: member I's wall clock from now on (within a second): OFFSET seconds
# ("+7200", "-30") from the real one ("+0": the real one). Its monotonic clocks are left alone.
jc_clock() { echo "$2" >"$JC_TMP/n$1.clock"; _net_log "clock $1 $2"; }
jc_pause() {
    echo "=== $(date -u +%T.%N) SIGSTOP" >>"$JC_TMP/n$1.log"
    kill -STOP "${JC_PID[$1]}" && JC_PAUSED[$1]=1 && _net_log "pause $1"
}
jc_resume() {
    [[ ${JC_PAUSED[$1]:-0} == 1 ]] || return 0
    echo "=== $(date -u +%T.%N) SIGCONT" >>"$JC_TMP/n$1.log"
    kill -CONT "${JC_PID[$1]}" && JC_PAUSED[$1]=0 && _net_log "resume $1"
}

# jc_ctl_eps EPS ARGS...: etcdctl from the client namespace with the apiserver client certificate.
jc_ctl_eps() {
    local eps=$1; shift
    ip netns exec "$(netns_client_name)" timeout -k 1 "${CMD_TIMEOUT:-6}" "$ETCDCTL_BIN" --endpoints="$eps" \
        --cacert="$JC_PKI/etcd/ca.crt" --cert="$JC_PKI/apiserver-etcd-client.crt" \
        --key="$JC_PKI/apiserver-etcd-client.key" "$@"
}
jc_ctl() { local i=$1; shift; jc_ctl_eps "$(jc_ep "$i")" "$@"; }

# jc_status I: "member_id leader revision raft_term raft_index applied" of member I (hex ids), or fails.
jc_status() {
    CMD_TIMEOUT=4 jc_ctl "$1" "${FAST[@]}" endpoint status -w json 2>/dev/null | python3 -c '
import json, sys
try:
    s = json.load(sys.stdin)[0]["Status"]
except Exception:
    sys.exit(1)
h = s.get("header", {})
print("%x %x %d %d %d %d" % (h.get("member_id", 0), s.get("leader", 0), h.get("revision", 0),
      s.get("raftTerm", 0), s.get("raftIndex", 0), s.get("raftAppliedIndex", 0)))'
}
jc_is_leader() {
    local st
    st=$(jc_status "$1") || return 1
    set -- $st
    [[ $1 == "$2" ]]
}

# jc_leader [MEMBERS...]: the one member among MEMBERS (default all) that reports leader.
jc_leader() {
    local i out=()
    local members=("$@")
    ((${#members[@]})) || members=($(seq 1 "$JC_N"))
    for i in "${members[@]}"; do jc_is_leader "$i" && out+=("$i"); done
    [[ ${#out[@]} == 1 ]] && echo "${out[0]}"
}

# jc_wait_leader SECONDS [MEMBERS...]: until exactly one of MEMBERS reports leader; prints it.
jc_wait_leader() {
    local secs=$1; shift
    local deadline=$((SECONDS + secs)) l
    while ((SECONDS < deadline)); do
        l=$(jc_leader "$@") && [[ -n $l ]] && { echo "$l"; return 0; }
        sleep 0.2
    done
    return 1
}

# jc_start: start all members, wait until each answers a linearizable get and one is leader.
jc_start() {
    local i deadline ok
    for ((i = 1; i <= JC_N; i++)); do jc_node_start "$i"; done
    deadline=$((SECONDS + ${START_TIMEOUT:-30}))
    while ((SECONDS < deadline)); do
        ok=1
        for ((i = 1; i <= JC_N; i++)); do
            jc_running "$i" || die "member n$i exited at start"
            CMD_TIMEOUT=4 jc_ctl "$i" "${FAST[@]}" get health >/dev/null 2>&1 || { ok=0; break; }
        done
        ((ok)) && jc_wait_leader 10 >/dev/null && return 0
        sleep 0.3
    done
    die "cluster did not become healthy within ${START_TIMEOUT:-30}s"
}

# jc_hashkv I: the hashkv hash of member I at its current revision.
jc_hashkv() {
    CMD_TIMEOUT=5 jc_ctl "$1" "${FAST[@]}" endpoint hashkv -w json 2>/dev/null | python3 -c '
import json, sys
try:
    print(json.load(sys.stdin)[0]["HashKV"]["hash"])
except Exception:
    sys.exit(1)'
}

# jc_converged SECONDS: until every member reports the same revision and the same hashkv.
# Prints "rev hash" per member on the last attempt to $JC_TMP/converge.txt; returns 1 on timeout.
jc_converged() {
    local secs=$1 deadline i st revs hashes ok
    deadline=$((SECONDS + secs))
    # A write through the cluster moves every member's applied index past all older entries.
    while ((SECONDS < deadline)); do
        : >"$JC_TMP/converge.txt"
        revs=() hashes=()
        ok=1
        for ((i = 1; i <= JC_N; i++)); do
            st=$(jc_status "$i") || { ok=0; echo "n$i: no status" >>"$JC_TMP/converge.txt"; continue; }
            set -- $st
            revs+=("$3")
            hashes+=("$(jc_hashkv "$i" || echo none)")
            echo "n$i: revision $3 term $4 index $5 applied $6 hashkv ${hashes[-1]}" >>"$JC_TMP/converge.txt"
        done
        if ((ok)) && [[ $(printf '%s\n' "${revs[@]}" | sort -u | wc -l) == 1 &&
            $(printf '%s\n' "${hashes[@]}" | sort -u | wc -l) == 1 && ${hashes[0]} != none ]]; then
            return 0
        fi
        sleep 0.5
    done
    return 1
}
