#!/usr/bin/env bash
# Tests/Cluster/unix-peers.sh: etcd's unix:// and unixs:// peer URLs (a Unix domain socket whose
# path is the URL's host:port, relative to the working directory). Three members whose peer URLs
# are sockets in the test's directory, clients on https as usual: the cluster forms, a put
# through one member is read through the others, `member list` shows the unix URLs, and with the
# leader killed the other two elect a leader and go on, the killed member catching up after its
# restart (its socket file left behind by the kill is replaced). Passes against etcd 3.4 too (unix:// only).
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cluster_init unix-peers

members=(u1 u2 u3)
# As etcd names them: relative to the member's working directory (the test's temporary one).
cd "$COMPAT_TMP" || die "cd $COMPAT_TMP"
# u1 and u2 on unixs:// (mutual TLS on the socket, the members' certificates checked against the
# URL's host, localhost, as etcd checks them), u3 on plain unix://. Against etcd 3.4 all three are
# on unix://: etcd 3.4 refuses every client certificate on a unix socket ("address @: missing
# port in address"), so its members cannot talk over unixs://.
declare -A SOCKET_URL=([u1]=unixs://localhost:1 [u2]=unixs://localhost:2 [u3]=unix://u3.sock:1)
if [[ $(basename "$KVD_BIN") == etcd ]]; then SOCKET_URL=([u1]=unix://u1.sock:1 [u2]=unix://u2.sock:1 [u3]=unix://u3.sock:1); fi
socket_url() { echo "${SOCKET_URL[$1]}"; }
cluster=""
for n in "${members[@]}"; do node_ports "$n"; cluster+="${cluster:+,}$n=$(socket_url "$n")"; done
for n in "${members[@]}"; do
    SERVER_DATA[$n]=$COMPAT_TMP/$n.data
    SERVER_LOG[$n]=$COMPAT_TMP/$n.log
    SERVER_BIN[$n]=$KVD_BIN
    args=(
        --name "$n" --data-dir "${SERVER_DATA[$n]}"
        --listen-client-urls "${SERVER_EP[$n]}" --advertise-client-urls "${SERVER_EP[$n]}"
        --listen-peer-urls "$(socket_url "$n")" --initial-advertise-peer-urls "$(socket_url "$n")"
        --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token "$CLUSTER_TOKEN"
        --cert-file "$PKI/etcd/server.crt" --key-file "$PKI/etcd/server.key"
        --trusted-ca-file "$PKI/etcd/ca.crt" --client-cert-auth
        --peer-cert-file "$PKI/etcd/peer.crt" --peer-key-file "$PKI/etcd/peer.key"
        --peer-trusted-ca-file "$PKI/etcd/ca.crt" --peer-client-cert-auth
        --heartbeat-interval "$HB_MS" --election-timeout "$ET_MS"
    )
    NODE_ARGS[$n]=$(printf '%q ' "${args[@]}")
    _node_exec "$n"
done
wait_healthy "$START_TIMEOUT" "${members[@]}" || die "the cluster on unix peer URLs did not become healthy"
pass "three members formed a cluster over unix peer URLs"
expect_eq "a socket file per member" 3 "$(find "$COMPAT_TMP" -maxdepth 1 -type s \( -name 'localhost:?' -o -name 'u?.sock:1' \) | wc -l)"

expect_eq "put through u1" OK "$(nctl u1 put k1 v1 2>&1)"
for n in u2 u3; do expect_eq "get through $n" v1 "$(nctl "$n" get k1 --print-value-only 2>&1)"; done
expect_eq "member list: the unix peer URLs" "$(printf '%s\n' "$(socket_url u1)" "$(socket_url u2)" "$(socket_url u3)" | sort)" \
    "$(nctl u1 member list 2>/dev/null | awk -F', ' '{print $4}' | sort)"

leader=$(wait_one_leader "$START_TIMEOUT" "${members[@]}") || die "no leader"
node_kill9 "$leader"
rest=($(others "$leader" "${members[@]}"))
wait_one_leader "$START_TIMEOUT" "${rest[@]}" >/dev/null || fail "no leader among ${rest[*]} after $leader was killed"
expect_eq "put through ${rest[0]} with $leader down" OK "$(nctl "${rest[0]}" put k2 v2 2>&1)"
node_restart "$leader"
wait_healthy "$START_TIMEOUT" "$leader" || fail "$leader did not come back"
expect_eq "$leader caught up after its restart" v2 "$(nctl "$leader" get k2 --print-value-only 2>&1)"
summary unix-peers
