# shellcheck shell=bash
# Tests/Compat/lib.sh: shared helpers for the black-box compatibility tests.
#
# Source it from a test script (after `set -euo pipefail` if you like):
#   . "$(dirname "$0")/lib.sh"
#   compat_init differential          # temp dir + cleanup trap
#   server_start a etcd               # name, kind (etcd|kvd), [plain|tls], [data dir]
#   ctl a get foo                     # etcdctl against server "a" (timeout-bounded)
#
# Servers are started with etcd's flags only (one command line for etcd or kvd),
# on free loopback ports (never 2379/2380), each with its own data dir and log
# file under the temp dir. They are stopped by PID only; the EXIT trap stops all
# servers this script started, prints their logs if the script failed, and
# removes the temp dir (KEEP_TMP=1 keeps it).
#
# Environment:
#   KVD_BIN      kvd binary      (default: <repo>/.build/debug/kvd)
#   KVCTL_BIN    kvctl binary    (default: <repo>/.build/debug/kvctl)
#   ETCD_BIN     etcd binary     (default: /usr/bin/etcd)
#   ETCDCTL_BIN  etcdctl binary  (default: /usr/bin/etcdctl)
#   CMD_TIMEOUT  seconds per client command (default 10)
#   START_TIMEOUT seconds to wait for a server to answer (default 20)

COMPAT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$COMPAT_DIR/../.." && pwd)
KVD_BIN=${KVD_BIN:-$REPO_ROOT/.build/debug/kvd}
KVCTL_BIN=${KVCTL_BIN:-$REPO_ROOT/.build/debug/kvctl}
ETCD_BIN=${ETCD_BIN:-/usr/bin/etcd}
ETCDCTL_BIN=${ETCDCTL_BIN:-/usr/bin/etcdctl}
# Relative paths (as the Makefile passes them) are taken from the caller's cwd.
for _v in KVD_BIN KVCTL_BIN ETCD_BIN ETCDCTL_BIN; do
    if [[ ${!_v} == */* && ${!_v} != /* ]]; then printf -v "$_v" '%s' "$PWD/${!_v}"; fi
done
unset _v
CMD_TIMEOUT=${CMD_TIMEOUT:-10}
START_TIMEOUT=${START_TIMEOUT:-20}
export ETCDCTL_API=3

COMPAT_NAME=""
COMPAT_TMP=""
COMPAT_FAILED=0        # set to 1 (or exit non-zero) to get server logs printed
PASS=0
FAIL=0
declare -A SERVER_PID=() SERVER_BIN=() SERVER_KIND=() SERVER_MODE=() SERVER_DATA=() \
    SERVER_LOG=() SERVER_EP=() SERVER_CPORT=() SERVER_PPORT=() SERVER_NODE=()
declare -A _USED_PORTS=()
COMPAT_CLEANUP_HOOKS=()   # commands run first by the EXIT trap (e.g. stop background writers)

log() { echo "[$COMPAT_NAME] $*" >&2; }
vlog() { if [[ ${VERBOSE:-0} == 1 ]]; then log "$@"; fi; }
die() { log "FATAL: $*"; COMPAT_FAILED=1; exit 1; }

# compat_init NAME: make the temp dir and install the cleanup trap.
compat_init() {
    COMPAT_NAME=$1
    COMPAT_TMP=$(mktemp -d "${TMPDIR:-/tmp}/kvd-compat-$1.XXXXXX")
    trap '_compat_cleanup $?' EXIT
    trap 'exit 130' INT TERM
}

_compat_cleanup() {
    local rc=$1 name
    trap - EXIT
    local hook
    for hook in "${COMPAT_CLEANUP_HOOKS[@]}"; do
        eval "$hook" || true
    done
    for name in "${!SERVER_PID[@]}"; do
        server_stop "$name" || true
    done
    if [[ $rc -ne 0 || $COMPAT_FAILED -ne 0 ]]; then
        for name in "${!SERVER_LOG[@]}"; do
            if [[ -s ${SERVER_LOG[$name]} ]]; then
                echo "----- log of server '$name' (${SERVER_KIND[$name]}): last 60 lines -----" >&2
                tail -n 60 "${SERVER_LOG[$name]}" >&2
                echo "----- end of log of '$name' -----" >&2
            fi
        done
    fi
    if [[ ${KEEP_TMP:-0} == 1 ]]; then
        log "kept temp dir $COMPAT_TMP"
    elif [[ -n $COMPAT_TMP ]]; then
        rm -rf "$COMPAT_TMP"
    fi
    exit "$rc"
}

# free_port: print a loopback TCP port nobody listens on (and not handed out before),
# from 20000-31999: below Linux's ephemeral range (32768+), so that no client
# connection takes it between a server's kill and its restart.
free_port() {
    local p i
    for ((i = 0; i < 200; i++)); do
        p=$((20000 + RANDOM % 12000))
        [[ -n ${_USED_PORTS[$p]:-} ]] && continue
        if ! ss -Htln "( sport = :$p )" 2>/dev/null | grep -q .; then
            _USED_PORTS[$p]=1
            echo "$p"
            return 0
        fi
    done
    die "no free port found"
}

# bin_for KIND: the server binary for etcd|kvd.
bin_for() {
    case $1 in
        etcd) echo "$ETCD_BIN" ;;
        kvd) echo "$KVD_BIN" ;;
        *) die "unknown server kind '$1' (want etcd or kvd)" ;;
    esac
}

# certs_dir: generate (once per test run) the PKI and print its directory.
certs_dir() {
    local d=$COMPAT_TMP/pki
    "$REPO_ROOT/cluster-configs/gen-certs.sh" "$d" >&2 || die "gen-certs.sh failed"
    echo "$d"
}

# server_start NAME KIND [plain|tls] [DATA_DIR]
# Starts a single-member server; reuses NAME's ports and data dir on a restart.
# Sets SERVER_EP[NAME] (the client URL). Waits until it answers, else dies.
# The member name and cluster token come from SERVER_NODE[NAME] (default NAME), so
# two servers given the same node name and ports get the same etcd member/cluster IDs.
server_start() {
    local name=$1 kind=$2 mode=${3:-plain} data=${4:-}
    local bin cport pport scheme node=${SERVER_NODE[$1]:-$1}
    bin=$(bin_for "$kind")
    [[ -x $bin ]] || die "$kind binary '$bin' not found or not executable"
    if [[ -z ${SERVER_CPORT[$name]:-} ]]; then
        SERVER_CPORT[$name]=$(free_port)
        SERVER_PPORT[$name]=$(free_port)
    fi
    cport=${SERVER_CPORT[$name]}
    pport=${SERVER_PPORT[$name]}
    [[ -n $data ]] || data=${SERVER_DATA[$name]:-$COMPAT_TMP/$name.data}
    mkdir -p "$COMPAT_TMP"
    scheme=http
    [[ $mode == tls ]] && scheme=https
    SERVER_KIND[$name]=$kind
    SERVER_BIN[$name]=$bin
    SERVER_MODE[$name]=$mode
    SERVER_DATA[$name]=$data
    SERVER_LOG[$name]=$COMPAT_TMP/$name.log
    SERVER_EP[$name]=$scheme://127.0.0.1:$cport
    local args=(
        --name "$node"
        --data-dir "$data"
        --listen-client-urls "$scheme://127.0.0.1:$cport"
        --advertise-client-urls "$scheme://127.0.0.1:$cport"
        --listen-peer-urls "http://127.0.0.1:$pport"
        --initial-advertise-peer-urls "http://127.0.0.1:$pport"
        --initial-cluster "$node=http://127.0.0.1:$pport"
        --initial-cluster-state new
        --initial-cluster-token "kvd-compat-$node"
    )
    if [[ $mode == tls ]]; then
        local pki
        pki=$(certs_dir)
        args+=(
            --cert-file "$pki/etcd/server.crt"
            --key-file "$pki/etcd/server.key"
            --trusted-ca-file "$pki/etcd/ca.crt"
            --client-cert-auth
        )
    fi
    echo "=== start: $bin ${args[*]}" >>"${SERVER_LOG[$name]}"
    # setsid: the server gets its own process group, so a Ctrl-C to the test
    # does not race our orderly stop; we still stop it by PID only.
    setsid "$bin" "${args[@]}" >>"${SERVER_LOG[$name]}" 2>&1 </dev/null &
    SERVER_PID[$name]=$!
    server_wait "$name"
}

# ctl_tls_flags NAME: etcdctl flags (as lines) to reach NAME with the good client cert.
ctl_tls_flags() {
    if [[ ${SERVER_MODE[$1]} == tls ]]; then
        local pki=$COMPAT_TMP/pki
        printf '%s\n' "--cacert=$pki/etcd/ca.crt" "--cert=$pki/apiserver-etcd-client.crt" \
            "--key=$pki/apiserver-etcd-client.key"
    fi
}

# ctl NAME ARGS...: etcdctl (API 3) against server NAME, bounded by CMD_TIMEOUT.
ctl() {
    local name=$1; shift
    local tls=()
    mapfile -t tls < <(ctl_tls_flags "$name")
    timeout -k 2 "$CMD_TIMEOUT" "$ETCDCTL_BIN" --endpoints="${SERVER_EP[$name]}" "${tls[@]}" "$@"
}

# server_wait NAME: wait (bounded) until NAME answers a `get`; die if it exits or times out.
server_wait() {
    local name=$1 deadline=$((SECONDS + START_TIMEOUT))
    while ((SECONDS < deadline)); do
        if ! kill -0 "${SERVER_PID[$name]}" 2>/dev/null; then
            wait "${SERVER_PID[$name]}" 2>/dev/null || true
            unset "SERVER_PID[$name]"
            die "server '$name' (${SERVER_KIND[$name]}) exited during start-up; log: ${SERVER_LOG[$name]}"
        fi
        if CMD_TIMEOUT=3 ctl "$name" --dial-timeout=1s --command-timeout=2s \
            get compat-health-probe >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.2
    done
    die "server '$name' (${SERVER_KIND[$name]}) did not answer within ${START_TIMEOUT}s"
}

# server_stop NAME: SIGTERM by PID, wait up to 10 s, then SIGKILL.
server_stop() {
    local name=$1 pid=${SERVER_PID[$1]:-} i
    [[ -n $pid ]] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    unset "SERVER_PID[$name]"
}

# server_kill9 NAME: crash it (SIGKILL by PID) and reap it.
server_kill9() {
    local name=$1 pid=${SERVER_PID[$1]:-}
    [[ -n $pid ]] || return 0
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    unset "SERVER_PID[$name]"
}

# ---- result bookkeeping -------------------------------------------------------

pass() { PASS=$((PASS + 1)); [[ ${VERBOSE:-0} == 1 ]] && log "ok: $*"; return 0; }
fail() { FAIL=$((FAIL + 1)); COMPAT_FAILED=1; log "FAIL: $*"; return 0; }

# expect_eq DESC EXPECTED ACTUAL
expect_eq() {
    if [[ "$2" == "$3" ]]; then
        pass "$1"
    else
        fail "$1"
        diff -u <(printf '%s\n' "$2") <(printf '%s\n' "$3") | sed 's/^/    /' >&2 || true
    fi
}

# report_checks FILE STATUS SCRIPT: every "ok: ..." and "FAIL: ..." line a checker script wrote to
# FILE counts as a check; a non-zero exit STATUS of SCRIPT fails one more.
report_checks() {
    local file=$1 status=$2 script=$3 line
    while IFS= read -r line; do
        case $line in
        ok:*) pass "${line#ok: }" ;;
        FAIL:*) fail "${line#FAIL: }" ;;
        esac
    done <"$file"
    ((status == 0)) || fail "$script exited $status: $(grep -v '^ok:' "$file" | tail -n 5)"
}

# summary LABEL: print "LABEL: N passed, M failed" and return non-zero if any failed.
# expect_same_calls REF_OUTPUT TGT_OUTPUT: the "CALL name|answer" lines two runs printed, one by one.
expect_same_calls() {
    local ref_calls tgt_calls i name
    mapfile -t ref_calls < <(grep '^CALL ' "$1")
    mapfile -t tgt_calls < <(grep '^CALL ' "$2")
    expect_eq "as many answers as calls" "${#ref_calls[@]}" "${#tgt_calls[@]}"
    for i in "${!ref_calls[@]}"; do
        name=${ref_calls[$i]#CALL }
        name=${name%%|*}
        expect_eq "answer to '$name'" "${ref_calls[$i]}" "${tgt_calls[$i]:-}"
    done
}

summary() {
    echo "$1: $PASS passed, $FAIL failed"
    [[ $FAIL -eq 0 ]]
}

# ---- running a command sequence (commands.sh) -----------------------------------

# run_sequence CLIENT_BIN SERVER_NAME OUTDIR [SKIP_FLAGS]
# Runs every step of STEP_ARGS with CLIENT_BIN against SERVER_NAME; for step i
# writes OUTDIR/i.out, i.err, i.rc. Steps whose STEP_FLAGS is one of the
# space-separated SKIP_FLAGS are not run (rc "skipped"). The client gets
# --endpoints and, for a TLS server, the good client cert, unless NO_AUTO_TLS=1
# (then the steps carry their own TLS flags).
run_sequence() {
    local bin=$1 name=$2 dir=$3 skip=" ${4:-} " i args tls=()
    mkdir -p "$dir"
    [[ ${NO_AUTO_TLS:-0} == 1 ]] || mapfile -t tls < <(ctl_tls_flags "$name")
    for i in "${!STEP_ARGS[@]}"; do
        if [[ -n ${STEP_FLAGS[$i]} && $skip == *" ${STEP_FLAGS[$i]} "* ]]; then
            echo skipped >"$dir/$i.rc"; : >"$dir/$i.out"; : >"$dir/$i.err"
            continue
        fi
        eval "args=(${STEP_ARGS[$i]})"
        local rc=0
        printf '%s' "${STEP_STDIN[$i]}" |
            timeout -k 2 "$CMD_TIMEOUT" "$bin" --endpoints="${SERVER_EP[$name]}" "${tls[@]}" "${args[@]}" \
                >"$dir/$i.out" 2>"$dir/$i.err" || rc=$?
        echo "$rc" >"$dir/$i.rc"
    done
}

# normalise_stdout: mask only cluster_id, member_id and raft_term of response
# headers (json and fields formats). Zeros are left alone: etcd leaves them 0 in
# the headers nested in txn responses, and kvd must too.
normalise_stdout() {
    sed -E \
        -e 's/"cluster_id":[1-9][0-9]*/"cluster_id":<id>/g' \
        -e 's/"member_id":[1-9][0-9]*/"member_id":<id>/g' \
        -e 's/"raft_term":[1-9][0-9]*/"raft_term":<n>/g' \
        -e 's/^"ClusterID" : [1-9][0-9]*$/"ClusterID" : <id>/' \
        -e 's/^"MemberID" : [1-9][0-9]*$/"MemberID" : <id>/' \
        -e 's/^"RaftTerm" : [1-9][0-9]*$/"RaftTerm" : <n>/'
}

# normalise_stderr: etcdctl's client library logs a zap JSON warning for each
# failed RPC; its "ts" (wall clock) and "target" (a random client UUID and the
# endpoint) are made by the client, not the server, so they are masked. The rest
# of the line, including the gRPC code and message, is compared.
normalise_stderr() {
    sed -E \
        -e '/^\{"level":/s/"ts":"[^"]*"/"ts":"<ts>"/' \
        -e '/^\{"level":/s/"target":"endpoint:\/\/client-[^"]*"/"target":"<target>"/'
}

# step_report DIR I: the normalised stdout, stderr and exit code of step I.
# NORMALISE_IDS=0 compares stdout byte for byte (no header masking).
# For a client_only_panic step (etcdctl crashes before any RPC) only the first
# stderr line ("panic: ...") is kept: Go's stack trace holds varying pointers.
step_report() {
    local dir=$1 i=$2
    echo "stdout:"
    if [[ ${NORMALISE_IDS:-1} == 1 ]]; then normalise_stdout <"$dir/$i.out"; else cat "$dir/$i.out"; fi
    echo "stderr:"
    if [[ ${STEP_FLAGS[$i]} == client_only_panic ]]; then
        head -n 1 "$dir/$i.err"
    else
        normalise_stderr <"$dir/$i.err"
    fi
    echo "exit: $(cat "$dir/$i.rc")"
}

# compare_sequences LEFT_DIR RIGHT_DIR LEFT_LABEL RIGHT_LABEL CLIENT_LABEL
# Diffs step by step, counting PASS/FAIL; prints a diff for each failing step.
compare_sequences() {
    local a=$1 b=$2 la=$3 lb=$4 cl=$5 i args
    for i in "${!STEP_ARGS[@]}"; do
        [[ $(cat "$a/$i.rc") == skipped || $(cat "$b/$i.rc") == skipped ]] && continue
        if diff -q <(step_report "$a" "$i") <(step_report "$b" "$i") >/dev/null; then
            pass "step $i"
        else
            fail "step $i: $cl ${STEP_ARGS[$i]}"
            if [[ -n ${STEP_STDIN[$i]} ]]; then
                printf '    stdin: %q%s\n' "${STEP_STDIN[$i]:0:300}" "$( ((${#STEP_STDIN[$i]} > 300)) && echo " ...(${#STEP_STDIN[$i]} bytes)")" >&2
            fi
            diff -u --label "$la" --label "$lb" <(step_report "$a" "$i") <(step_report "$b" "$i") |
                sed 's/^/    /' >&2 || true
        fi
    done
}
