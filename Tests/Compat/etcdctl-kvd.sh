#!/usr/bin/env bash
# Tests/Compat/etcdctl-kvd.sh: Debian's etcdctl 3.4 (ETCDCTL_API=3) drives one
# server, over plaintext and then over mutual TLS (certs from
# cluster-configs/gen-certs.sh), with every command of issue 2 (put/get/del/txn/
# compaction) and the output of each asserted exactly (simple format byte for
# byte; json through jq). Over TLS, clients without a certificate, with a
# certificate from another CA, or without TLS are refused.
#   TARGET=kvd|etcd (default kvd)   KEEP_TMP=1 keeps logs.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

target=${TARGET:-kvd}
compat_init etcdctl-kvd
nl=$'\n'

# expect DESC RC STDOUT [--stdin TEXT] -- ETCDCTL ARGS...
# Runs etcdctl against $srv and checks exit code and exact stdout (trailing
# newlines included). If RC is non-zero, STDOUT is instead the exact last line of stderr.
expect() {
    local desc=$1 rc_want=$2 want=$3 in=""
    shift 3
    if [[ $1 == --stdin ]]; then in=$2; shift 2; fi
    [[ $1 == -- ]] && shift
    local out=$COMPAT_TMP/cmd.out err=$COMPAT_TMP/cmd.err rc=0
    printf '%s' "$in" | ctl "$srv" "$@" >"$out" 2>"$err" || rc=$?
    local got
    if [[ $rc_want == 0 ]]; then got=$(cat "$out"; echo x); want="${want}x"
    else got=$(tail -n 1 "$err"); fi
    if [[ $rc == "$rc_want" && $got == "$want" ]]; then
        pass "$mode: $desc"
    else
        fail "$mode: $desc (etcdctl $*): exit $rc, want $rc_want"
        diff -u --label want --label got <(printf '%s\n' "$want") <(printf '%s\n' "$got") | sed 's/^/    /' >&2
        [[ $rc_want == 0 ]] && sed 's/^/    stderr: /' "$err" >&2
    fi
}

# expect_jq DESC JQ_FILTER WANT -- ETCDCTL ARGS...: `-w json` output through jq -c.
expect_jq() {
    local desc=$1 filter=$2 want=$3 got rc=0
    shift 3; [[ $1 == -- ]] && shift
    got=$(ctl "$srv" -w json "$@" 2>"$COMPAT_TMP/cmd.err" | jq -c "$filter" 2>&1) || rc=$?
    if [[ $rc == 0 && $got == "$want" ]]; then
        pass "$mode: $desc"
    else
        fail "$mode: $desc (etcdctl -w json $* | jq '$filter')"
        diff -u --label want --label got <(printf '%s\n' "$want") <(printf '%s\n' "$got") | sed 's/^/    /' >&2
        sed 's/^/    stderr: /' "$COMPAT_TMP/cmd.err" >&2
    fi
}

# expect_fields DESC WANT -- ETCDCTL ARGS...: `-w fields` output, header IDs masked.
expect_fields() {
    local desc=$1 want=$2 got rc=0
    shift 2; [[ $1 == -- ]] && shift
    got=$(ctl "$srv" -w fields "$@" 2>"$COMPAT_TMP/cmd.err" | normalise_stdout) || rc=$?
    if [[ $rc == 0 && $got == "$want" ]]; then
        pass "$mode: $desc"
    else
        fail "$mode: $desc (etcdctl -w fields $*)"
        diff -u --label want --label got <(printf '%s\n' "$want") <(printf '%s\n' "$got") | sed 's/^/    /' >&2
    fi
}

# The same assertions for both transports, on a fresh server (revision 1).
commands() {
    expect "put" 0 "OK$nl" -- put k1 v1                                  # rev 2
    expect "put second key" 0 "OK$nl" -- put k2 v2                       # rev 3
    expect "put --prev-kv" 0 "OK${nl}k1${nl}v1$nl" -- put k1 v1b --prev-kv   # rev 4
    expect "get" 0 "k1${nl}v1b$nl" -- get k1
    expect "get missing key" 0 "" -- get nothere
    expect_jq "get -w json" '[.header.revision,.kvs[0].key,.kvs[0].create_revision,.kvs[0].mod_revision,.kvs[0].version,.kvs[0].value,.count]' \
        '[4,"azE=",2,4,2,"djFi",1]' -- get k1
    expect_jq "json header has ids" '[(.header.cluster_id>0),(.header.member_id>0),(.header.raft_term>0)]' '[true,true,true]' -- get k1
    expect "get --prefix" 0 "k1${nl}v1b${nl}k2${nl}v2$nl" -- get k --prefix
    expect "get --keys-only" 0 "k1${nl}${nl}k2${nl}${nl}" -- get k --prefix --keys-only
    expect_jq "get --limit: more and count" '[.more,.count,(.kvs|length)]' '[true,2,1]' -- get k --prefix --limit 1
    expect "get --rev" 0 "k1${nl}v1$nl" -- get k1 --rev 2
    expect "get --sort-by MODIFY --order DESCEND --print-value-only" 0 "v1b${nl}v2$nl" -- \
        get k --prefix --sort-by=MODIFY --order=DESCEND --print-value-only
    expect "get --sort-by CREATE --order DESCEND" 0 "k2${nl}v2${nl}k1${nl}v1b$nl" -- get k --prefix --sort-by=CREATE --order=DESCEND
    expect "get --from-key" 0 "k2${nl}${nl}" -- get k2 --from-key --keys-only
    expect "get range end" 0 "k1${nl}v1b$nl" -- get k1 k2
    expect "get --hex" 0 '\x6b\x31'"$nl"'\x76\x31\x62'"$nl" -- get k1 --hex
    expect_fields "get -w fields" '"ClusterID" : <id>
"MemberID" : <id>
"Revision" : 4
"RaftTerm" : <n>
"Key" : "k1"
"CreateRevision" : 2
"ModRevision" : 4
"Version" : 2
"Value" : "v1b"
"Lease" : 0
"More" : false
"Count" : 1' -- get k1
    expect "put --ignore-value" 0 "OK$nl" -- put k1 --ignore-value       # rev 5
    expect "value kept by --ignore-value" 0 "v1b$nl" -- get k1 --print-value-only
    expect "put --ignore-lease" 0 "OK$nl" -- put k2 v2b --ignore-lease   # rev 6
    expect "put empty key" 1 "Error: etcdserver: key is not provided" -- put "" x
    expect "put --ignore-value missing key" 1 "Error: etcdserver: key not found" -- put nokey --ignore-value
    expect "put --ignore-value with value" 128 "Error: put command needs only 1 argument when 'ignore-value' is set" -- \
        put k1 --ignore-value v
    expect "txn success" 0 "SUCCESS${nl}${nl}OK$nl" --stdin "value(\"k1\") = \"v1b\"${nl}${nl}put t yes${nl}${nl}put t no${nl}${nl}" -- txn   # rev 7
    expect "txn wrote" 0 "yes$nl" -- get t --print-value-only
    expect "txn failure" 0 "FAILURE${nl}${nl}t${nl}yes$nl" --stdin "version(\"k1\") > \"10\"${nl}mod(\"k2\") != \"6\"${nl}${nl}put t no${nl}${nl}get t${nl}${nl}" -- txn
    expect "txn create/version compares, del" 0 "SUCCESS${nl}${nl}1${nl}t${nl}yes$nl" \
        --stdin "create(\"k1\") = \"2\"${nl}version(\"t\") < \"2\"${nl}${nl}del t --prev-kv${nl}${nl}${nl}" -- txn   # rev 8
    expect_jq "txn -w json" '[.succeeded,.header.revision,(.responses|length)]' '[true,9,2]' -- txn \
        < <(printf '%s' "value(\"k2\") != \"zz\"${nl}${nl}put t1 a${nl}put t2 b${nl}${nl}${nl}")   # rev 9
    expect "txn duplicate key" 1 "Error: etcdserver: duplicate key given in txn request" \
        --stdin "${nl}put d 1${nl}put d 2${nl}${nl}${nl}" -- txn
    expect "txn malformed" 3 "Error: malformed comparison: value k1 = v1b" --stdin "value k1 = v1b${nl}${nl}${nl}${nl}" -- txn
    expect "del" 0 "1$nl" -- del t1                                       # rev 10
    expect "del missing key" 0 "0$nl" -- del t1
    expect "del --prev-kv" 0 "1${nl}t2${nl}b$nl" -- del t2 --prev-kv     # rev 11
    expect "put for ranges" 0 "OK$nl" -- put p/a 1                      # rev 12
    expect "put for ranges" 0 "OK$nl" -- put p/b 2                      # rev 13
    expect "put for ranges" 0 "OK$nl" -- put q 3                        # rev 14
    expect "del --prefix" 0 "2$nl" -- del p/ --prefix                    # rev 15
    expect "del --from-key" 0 "1$nl" -- del q --from-key                 # rev 16
    expect "compaction" 0 "compacted revision 4$nl" -- compaction 4
    expect "compaction twice" 1 "Error: etcdserver: mvcc: required revision has been compacted" -- compaction 4
    expect "compaction future" 1 "Error: etcdserver: mvcc: required revision is a future revision" -- compaction 1000
    expect "get compacted rev" 1 "Error: etcdserver: mvcc: required revision has been compacted" -- get k1 --rev 3
    expect "get future rev" 1 "Error: etcdserver: mvcc: required revision is a future revision" -- get k1 --rev 1000
    expect "get at compacted rev" 0 "k1${nl}v1b$nl" -- get k1 --rev 4
    expect "compaction --physical" 0 "compacted revision 10$nl" -- compaction 10 --physical
    expect "latest value after compaction" 0 "v1b$nl" -- get k1 --print-value-only
    expect_jq "revision after all" '.header.revision' '16' -- get k1
    local health
    health=$(ctl "$srv" endpoint health 2>&1)
    if [[ $health == "${SERVER_EP[$srv]} is healthy: successfully committed proposal: took = "* ]]; then
        pass "$mode: endpoint health"
    else
        fail "$mode: endpoint health: $health"
    fi
}

# ---- plaintext ----------------------------------------------------------------
mode=plain srv=plain
server_start plain "$target" plain
commands
server_stop plain

# ---- mutual TLS ----------------------------------------------------------------
mode=tls srv=tls
server_start tls "$target" tls
pki=$COMPAT_TMP/pki
commands

# refused clients: etcdctl must fail (bounded by short timeouts)
refused() { # DESC ETCDCTL_ARGS...
    local desc=$1 rc=0; shift
    timeout -k 2 "$CMD_TIMEOUT" "$ETCDCTL_BIN" --dial-timeout=1s --command-timeout=2s "$@" get k1 \
        >"$COMPAT_TMP/ref.out" 2>"$COMPAT_TMP/ref.err" || rc=$?
    if [[ $rc != 0 && ! -s $COMPAT_TMP/ref.out ]]; then
        pass "tls: refused: $desc"
    else
        fail "tls: $desc was not refused (exit $rc)"; cat "$COMPAT_TMP/ref.out" >&2
    fi
}
ep=${SERVER_EP[tls]}
refused "client without a certificate" --endpoints="$ep" --cacert="$pki/etcd/ca.crt"
refused "client certificate from another CA" --endpoints="$ep" --cacert="$pki/etcd/ca.crt" \
    --cert="$pki/rogue/client.crt" --key="$pki/rogue/client.key"
refused "plaintext client" --endpoints="${ep/https:/http:}"
refused "client not trusting the server's CA" --endpoints="$ep" --cacert="$pki/rogue/ca.crt" \
    --cert="$pki/apiserver-etcd-client.crt" --key="$pki/apiserver-etcd-client.key"
# other certificates of the PKI are accepted
rc=0; out=$(timeout 10 "$ETCDCTL_BIN" --endpoints="$ep" --cacert="$pki/etcd/ca.crt" \
    --cert="$pki/etcd/healthcheck-client.crt" --key="$pki/etcd/healthcheck-client.key" get k1 --print-value-only 2>&1) || rc=$?
expect_eq "tls: healthcheck-client certificate accepted" "0 v1b" "$rc $out"
rc=0; out=$(timeout 10 "$ETCDCTL_BIN" --endpoints="$ep" --insecure-skip-tls-verify \
    --cert="$pki/apiserver-etcd-client.crt" --key="$pki/apiserver-etcd-client.key" get k1 --print-value-only 2>&1) || rc=$?
expect_eq "tls: --insecure-skip-tls-verify with a client certificate" "0 v1b" "$rc $out"
# the server still serves after the refused handshakes
expect "still serving after refusals" 0 "v1b$nl" -- get k1 --print-value-only
server_stop tls

summary etcdctl-kvd
