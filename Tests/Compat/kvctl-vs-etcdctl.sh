#!/usr/bin/env bash
# Tests/Compat/kvctl-vs-etcdctl.sh: kvctl must print exactly what etcdctl 3.4
# prints (stdout, stderr, exit code) for the same commands against the same server.
#
# Part 1, plaintext: the commands.sh sequence (it writes, so each client gets its
# own fresh instance of the same server, same node name and ports, one after the
# other: member/cluster IDs and revisions are then identical). Compared byte for
# byte; only the client-made "ts"/"target" of etcdctl's zap warning lines are
# masked (lib.sh normalise_stderr). Steps where etcdctl 3.4 panics or lacks the
# flag are skipped (see commands.sh).
# Part 2, mutual TLS: global TLS flags (--cacert/--cert/--key,
# --insecure-skip-tls-verify) and refused clients, same method.
# Part 3, a granted lease: put --lease, timetolive --keys, list, keep-alive
# (--once and until revoked), revoke, in each output format; alarm list and a
# compacted watch as json; a fresh server per client, the lease ID (hex and
# decimal) and the remaining TTL (timing) masked.
#
#   TARGET=kvd|etcd (server, default kvd)  KVCTL_BIN=...  (to validate the harness:
#   TARGET=etcd KVCTL_BIN=/usr/bin/etcdctl)  KEEP_TMP=1 keeps outputs.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

target=${TARGET:-kvd}
compat_init kvctl-vs-etcdctl
[[ -x $KVCTL_BIN ]] || die "kvctl binary '$KVCTL_BIN' not found (set KVCTL_BIN)"
export NORMALISE_IDS=0
skip="client_only_panic etcdctl34_lacks kvctl_lacks"

# one_side LABEL CLIENT_BIN MODE: a fresh server (same name/ports each time), the sequence, stop.
one_side() {
    local label=$1 bin=$2 mode=$3
    SERVER_NODE[$label]=node1
    SERVER_CPORT[$label]=$cport
    SERVER_PPORT[$label]=$pport
    server_start "$label" "$target" "$mode" "$COMPAT_TMP/$label.data"
    run_sequence "$bin" "$label" "$COMPAT_TMP/out.$label" "$skip"
    server_stop "$label"
}

cport=$(free_port)
pport=$(free_port)

# ---- part 1: plaintext, the shared sequence ----------------------------------
. "$COMPAT_DIR/commands.sh"
one_side plain-etcdctl "$ETCDCTL_BIN" plain
one_side plain-kvctl "$KVCTL_BIN" plain
compare_sequences "$COMPAT_TMP/out.plain-etcdctl" "$COMPAT_TMP/out.plain-kvctl" etcdctl kvctl "<client>"

# ---- part 2: mutual TLS --------------------------------------------------------
pki=$(certs_dir)
ca=(--cacert="$pki/etcd/ca.crt")
good=(--cert="$pki/apiserver-etcd-client.crt" --key="$pki/apiserver-etcd-client.key")
hc=(--cert="$pki/etcd/healthcheck-client.crt" --key="$pki/etcd/healthcheck-client.key")
rogue=(--cert="$pki/rogue/client.crt" --key="$pki/rogue/client.key")
fast=(--dial-timeout=1s --command-timeout=2s)
STEP_ARGS=() STEP_STDIN=() STEP_FLAGS=()
step "${ca[@]}" "${good[@]}" put tk tv
step "${ca[@]}" "${good[@]}" put tk tv2 --prev-kv -w json
step "${ca[@]}" "${good[@]}" get tk -w fields
step "${ca[@]}" "${hc[@]}" get tk --print-value-only
step --insecure-skip-tls-verify "${good[@]}" get tk -w json
step "${ca[@]}" "${good[@]}" --hex get tk
stepi "value(\"tk\") = \"tv2\"${nl}${nl}put tk2 x${nl}${nl}${nl}" "${ca[@]}" "${good[@]}" txn -w json
step "${ca[@]}" "${good[@]}" del tk --prev-kv
step "${ca[@]}" "${good[@]}" compaction 3
step "${ca[@]}" "${good[@]}" compaction --physical 4
step "${ca[@]}" "${good[@]}" get tk --rev 2
step "${ca[@]}" "${fast[@]}" get tk                          # no client cert: refused
step "${ca[@]}" "${rogue[@]}" "${fast[@]}" get tk            # cert from another CA: refused
step "${ca[@]}" --cert="$pki/apiserver-etcd-client.crt" get tk   # cert without key: exit 128
step --cacert="$pki/rogue/ca.crt" "${good[@]}" "${fast[@]}" get tk   # server cert not trusted
step "${fast[@]}" get tk                                     # no TLS flags at all: refused
NO_AUTO_TLS=1 one_side tls-etcdctl "$ETCDCTL_BIN" tls
NO_AUTO_TLS=1 one_side tls-kvctl "$KVCTL_BIN" tls
compare_sequences "$COMPAT_TMP/out.tls-etcdctl" "$COMPAT_TMP/out.tls-kvctl" etcdctl kvctl "<client> (tls)"

# ---- part 3: a granted lease, ID masked ------------------------------------------
# lease_flow LABEL CLIENT_BIN: a fresh server, one lease used by every step; each step's
# report (stdout, normalised stderr, exit code) in $COMPAT_TMP/lease.LABEL/N.
lease_flow() {
    local label=$1 bin=$2 dir=$COMPAT_TMP/lease.$1 ep id dec n=0
    SERVER_NODE[$label]=node1
    SERVER_CPORT[$label]=$cport
    SERVER_PPORT[$label]=$pport
    server_start "$label" "$target" plain "$COMPAT_TMP/$label.data"
    ep=${SERVER_EP[$label]}
    mkdir -p "$dir"
    id=$("$bin" --endpoints="$ep" lease grant 100 | awk '{print $2}')
    dec=$((16#${id:-0}))
    lstep() {
        local rc=0
        n=$((n + 1))
        timeout -k 2 "$CMD_TIMEOUT" "$bin" --endpoints="$ep" "$@" >"$dir/$n.out" 2>"$dir/$n.err" || rc=$?
        {
            echo "args: ${*//$id/<lease>}"
            sed -E -e "s/$id/<lease>/g" -e "s/$dec/<lease>/g" -e 's/remaining\([0-9]+s\)/remaining(<ttl>)/' \
                -e 's/"ttl":[0-9]+/"ttl":<ttl>/' -e 's/^"TTL" : [0-9]+$/"TTL" : <ttl>/' "$dir/$n.out"
            echo "stderr:"
            normalise_stderr <"$dir/$n.err"
            echo "exit: $rc"
        } >"$dir/$n"
    }
    lstep put --lease="$id" lk1 v1
    lstep put --lease="$id" lk2 v2 -w json
    lstep get lk --prefix -w json
    lstep lease timetolive "$id"
    lstep lease timetolive "$id" --keys
    lstep lease timetolive "$id" --keys -w json
    lstep lease timetolive "$id" --keys -w fields
    lstep lease timetolive "$id" -w protobuf
    lstep lease list
    lstep lease list -w json
    lstep lease list -w fields
    lstep lease list -w table
    lstep lease keep-alive --once "$id"
    lstep lease keep-alive --once "$id" -w json
    lstep lease keep-alive --once "$id" -w fields
    lstep lease keep-alive --once "$id" -w protobuf
    lstep lease revoke "$id" -w json
    lstep get lk --prefix -w json                  # the lease's keys went with it
    lstep lease timetolive "$id" --keys            # already expired
    lstep lease keep-alive "$id"                   # at once "expired or revoked.", exit 0
    lstep lease keep-alive --once "$id"            # lease not found, exit 2
    lstep lease revoke "$id"                       # lease not found, exit 1
    lstep lease revoke "$id" -w protobuf
    lstep alarm list -w json
    lstep alarm list -w protobuf
    lstep compaction 3
    lstep watch --rev 2 lk1 -w json                # compacted: canceled, exit 5
    lstep watch --rev 2 lk1 -w protobuf
    server_stop "$label"
}
lease_flow lease-etcdctl "$ETCDCTL_BIN"
lease_flow lease-kvctl "$KVCTL_BIN"
for report in "$COMPAT_TMP"/lease.lease-etcdctl/*; do
    [[ $report == *.out || $report == *.err ]] && continue
    other=$COMPAT_TMP/lease.lease-kvctl/${report##*/}
    if diff -q "$report" "$other" >/dev/null 2>&1; then
        pass "lease step ${report##*/}"
    else
        fail "lease step ${report##*/}: $(head -n 1 "$report")"
        diff -u --label etcdctl --label kvctl "$report" "$other" | sed 's/^/    /' >&2 || true
    fi
done

summary kvctl-vs-etcdctl
