#!/usr/bin/env bash
# Tests/Cluster/pings.sh: gRPC keepalive pings with no RPC open, kvd beside etcd 3.4 (one mTLS
# member each; Tests/Cluster/pings.py speaks HTTP/2 directly). Pings 6 s apart (clientv3 with
# PermitWithoutStream, like kube-apiserver's every 30 s) are all acknowledged and never answered
# with GOAWAY "too_many_pings"; a flood of pings half a second apart gets the same answer from
# both servers; and a ping after every response, as grpc-go's bandwidth estimator sends them on
# every connection, never costs the connection (kvd used to answer the 200th with GOAWAY
# ENHANCE_YOUR_CALM). The server's own keepalive: by default an idle client is not pinged within
# seconds (both servers); with --grpc-keepalive-interval 1s --grpc-keepalive-timeout 1s kvd pings
# it, keeps it while it answers and drops it when it does not. etcd 3.4 does that over plaintext
# only: with TLS it serves gRPC through its HTTP server, where grpc-go ignores these parameters
# (it pinged no one here); kvd follows the flags on both.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cluster_init pings
[[ -x $ETCD_BIN ]] || die "etcd binary '$ETCD_BIN' not found (apt-get install etcd-server)"
PY=/usr/bin/python3
$PY -c 'import h2' 2>/dev/null || die "python3-h2 is not installed (apt-get install python3-h2)"

probe() {  # probe NAME INTERVAL COUNT
    $PY "$CLUSTER_DIR/pings.py" 127.0.0.1 "${SERVER_CPORT[$1]}" "$PKI/etcd/ca.crt" \
        "$PKI/apiserver-etcd-client.crt" "$PKI/apiserver-etcd-client.key" "$2" "$3" 2>&1
}

for side in e k; do
    bin=$KVD_BIN; [[ $side == e ]] && bin=$ETCD_BIN
    node_ports "${side}1"
    KVD_BIN=$bin node_start "${side}1" new "$(initial_cluster "${side}1")"
    wait_healthy "$START_TIMEOUT" "${side}1" || die "$side did not become healthy"
    probe "${side}1" 6 4 >"$COMPAT_TMP/$side.slow" &
    slow=$!
    probe "${side}1" 0.5 12 >"$COMPAT_TMP/$side.flood"
    probe "${side}1" rpc 500 >"$COMPAT_TMP/$side.rpc"
    probe "${side}1" idle-silent 3 >"$COMPAT_TMP/$side.idle-default"
    wait "$slow"
    node_kill9 "${side}1"
done
expect_eq "an idle client by default (kvd)" "not pinged, open" "$(cat "$COMPAT_TMP/k.idle-default")"
expect_eq "an idle client by default (etcd, harness check)" "not pinged, open" "$(cat "$COMPAT_TMP/e.idle-default")"
node_ports k2
node_start k2 new "$(initial_cluster k2)" --grpc-keepalive-interval 1s --grpc-keepalive-timeout 1s
wait_healthy "$START_TIMEOUT" k2 || die "kvd with keepalive flags did not become healthy"
probe k2 idle-answering 4 >"$COMPAT_TMP/k.idle-answering" &
answering=$!
probe k2 idle-silent 5 >"$COMPAT_TMP/k.idle-silent"
wait "$answering"
node_kill9 k2
expect_eq "keepalive 1s/1s, a client that answers (kvd)" "pinged, open" "$(cat "$COMPAT_TMP/k.idle-answering")"
expect_eq "keepalive 1s/1s, a client that does not (kvd)" "pinged, closed" "$(cat "$COMPAT_TMP/k.idle-silent")"
expect_eq "pings every 6 s without RPCs (kvd)" "acked 4 of 4" "$(cat "$COMPAT_TMP/k.slow")"
expect_eq "pings every 6 s without RPCs (etcd, harness check)" "acked 4 of 4" "$(cat "$COMPAT_TMP/e.slow")"
expect_eq "a ping flood: the same answer as etcd's" "$(cat "$COMPAT_TMP/e.flood")" "$(cat "$COMPAT_TMP/k.flood")"
expect_eq "a ping after each of 500 calls (kvd)" "answered 500 of 500, acked 500" "$(cat "$COMPAT_TMP/k.rpc")"
expect_eq "a ping after each of 500 calls (etcd, harness check)" "answered 500 of 500, acked 500" "$(cat "$COMPAT_TMP/e.rpc")"
summary pings
