#!/usr/bin/env bash
# Tests/Cluster/dns-discovery.sh: etcd's DNS discovery. In a network namespace of its own, whose
# /etc/resolv.conf names a DNS server the test runs (Tests/Cluster/dns-server.py) on 127.0.0.1,
# three members bootstrap from the SRV records of kvd.test (--discovery-srv, with
# --discovery-srv-name, so _etcd-server-ssl-east._tcp.kvd.test) instead of --initial-cluster, their
# peers advertised as mN.kvd.test (one by its address instead): the cluster forms and serves,
# `member list` names each member
# with its advertised URL, and etcdctl and kvctl find the client endpoints from
# _etcd-client-ssl-east._tcp.kvd.test (--discovery-srv) and print the same, and so do the gateways
# (`kvd gateway start`, `etcd gateway start`) in front of them. Refused as etcd refuses
# them: a member the records do not name, --initial-cluster beside --discovery-srv, and a domain
# without records. Passes against etcd 3.4 too (KVD_BIN=/usr/bin/etcd). Needs root (ip netns).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)

if [[ -z ${KVD_DNS_NETNS:-} ]]; then
    if [[ $(id -u) != 0 ]]; then
        echo "dns-discovery: must run as root (a network namespace with its own resolv.conf)" >&2
        echo "dns-discovery: 0 passed, 1 failed"
        exit 1
    fi
    ns=kvd-dns-$$
    ip netns add "$ns" || exit 1
    trap 'ip netns del "$ns" 2>/dev/null; rm -rf "/etc/netns/$ns"; rmdir /etc/netns 2>/dev/null' EXIT
    trap 'exit 130' INT TERM
    # `ip netns exec` mounts /etc/netns/NAME/resolv.conf over /etc/resolv.conf for what it runs.
    mkdir -p "/etc/netns/$ns"
    printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:2\n' >"/etc/netns/$ns/resolv.conf"
    ip -n "$ns" link set lo up
    KVD_DNS_NETNS=$ns ip netns exec "$ns" bash "$0" "$@"
    exit  # with the test's status; the trap removes the namespace
fi

. "$here/lib.sh"
cluster_init dns-discovery
PKI=$COMPAT_TMP/pki-dns
"$REPO_ROOT/cluster-configs/gen-certs.sh" "$PKI" m1.kvd.test m2.kvd.test m3.kvd.test >/dev/null 2>&1 ||
    die "gen-certs.sh failed"

members=(n1 n2 n3)
zone=$COMPAT_TMP/kvd.test.zone
: >"$zone"
for i in 1 2 3; do
    n=n$i
    node_ports "$n"
    echo "m$i.kvd.test A 127.0.0.1" >>"$zone"
    echo "_etcd-server-ssl-east._tcp.kvd.test SRV 0 0 ${SERVER_PPORT[$n]} m$i.kvd.test" >>"$zone"
    echo "_etcd-client-ssl-east._tcp.kvd.test SRV 0 0 ${SERVER_CPORT[$n]} m$i.kvd.test" >>"$zone"
done
echo "m4.kvd.test A 127.0.0.1" >>"$zone"
python3 "$here/dns-server.py" 127.0.0.1 "$zone" >"$COMPAT_TMP/dns.log" 2>&1 &
dns_pid=$!
COMPAT_CLEANUP_HOOKS+=("kill $dns_pid")
for _ in $(seq 50); do grep -q serving "$COMPAT_TMP/dns.log" && break; sleep 0.1; done
grep -q serving "$COMPAT_TMP/dns.log" || die "the DNS server did not start: $(cat "$COMPAT_TMP/dns.log")"

# member_args NAME HOST: a member advertising https://HOST:its peer port, bootstrapped from DNS.
member_args() {
    local n=$1 host=$2
    printf '%q ' --name "$n" --data-dir "$COMPAT_TMP/$n.data" \
        --listen-client-urls "https://127.0.0.1:${SERVER_CPORT[$n]}" \
        --advertise-client-urls "https://$host:${SERVER_CPORT[$n]}" \
        --listen-peer-urls "https://127.0.0.1:${SERVER_PPORT[$n]}" \
        --initial-advertise-peer-urls "https://$host:${SERVER_PPORT[$n]}" \
        --discovery-srv kvd.test --discovery-srv-name east \
        --initial-cluster-state new --initial-cluster-token "$CLUSTER_TOKEN" \
        --cert-file "$PKI/etcd/server.crt" --key-file "$PKI/etcd/server.key" \
        --trusted-ca-file "$PKI/etcd/ca.crt" --client-cert-auth \
        --peer-cert-file "$PKI/etcd/peer.crt" --peer-key-file "$PKI/etcd/peer.key" \
        --peer-trusted-ca-file "$PKI/etcd/ca.crt" --peer-client-cert-auth \
        --heartbeat-interval "$HB_MS" --election-timeout "$ET_MS"
}

for i in 1 2 3; do
    n=n$i
    SERVER_DATA[$n]=$COMPAT_TMP/$n.data
    SERVER_LOG[$n]=$COMPAT_TMP/$n.log
    SERVER_BIN[$n]=$KVD_BIN
    # n3 advertises its address, not the name its record gives: the same endpoint, as etcd sees it.
    host=m$i.kvd.test
    [[ $n == n3 ]] && host=127.0.0.1
    NODE_ARGS[$n]=$(member_args "$n" "$host")
    _node_exec "$n"
done
wait_healthy "$START_TIMEOUT" "${members[@]}" || die "the members bootstrapped from DNS did not become healthy"
pass "three members bootstrapped from the SRV records formed a cluster"
asked=$(grep -c 'query _etcd-server-ssl-east._tcp.kvd.test 33' "$COMPAT_TMP/dns.log")
if ((asked >= 3)); then pass "the members asked for _etcd-server-ssl-east._tcp.kvd.test"; else fail "only $asked SRV queries"; fi

expect_eq "put through n1" OK "$(nctl n1 put k1 v1 2>&1)"
for n in n2 n3; do expect_eq "get through $n" v1 "$(nctl "$n" get k1 --print-value-only 2>&1)"; done
expect_eq "member list: each member's name and the peer URL its record gives" \
    "$(for i in 1 2 3; do echo "n$i, https://m$i.kvd.test:${SERVER_PPORT[n$i]}"; done)" \
    "$(nctl n1 member list 2>/dev/null | awk -F', ' '{print $3 ", " $4}' | sort)"

# Clients: the endpoints from _etcd-client-ssl-east._tcp.kvd.test, in place of --endpoints.
discovered() {
    local bin=$1; shift
    timeout -k 2 "$CMD_TIMEOUT" "$bin" --discovery-srv kvd.test --discovery-srv-name east \
        --cacert="$PKI/etcd/ca.crt" --cert="$PKI/apiserver-etcd-client.crt" --key="$PKI/apiserver-etcd-client.key" "$@"
}
# (etcdctl 3.4's endpoint commands without --cluster ask --endpoints, not the discovered ones.)
expected_health=$({
    for i in 1 2; do echo "https://m$i.kvd.test:${SERVER_CPORT[n$i]} is healthy"; done
    echo "https://127.0.0.1:${SERVER_CPORT[n3]} is healthy"
} | sort)
for bin in "$ETCDCTL_BIN" "$KVCTL_BIN"; do
    tool=$(basename "$bin")
    expect_eq "$tool --discovery-srv: get" v1 "$(discovered "$bin" get k1 --print-value-only 2>&1)"
    expect_eq "$tool --discovery-srv: put" OK "$(discovered "$bin" put "k-$tool" v 2>&1)"
    expect_eq "$tool --discovery-srv: endpoint health --cluster, the members' advertised client URLs" \
        "$expected_health" "$(discovered "$bin" endpoint health --cluster 2>&1 | sed 's/: successfully.*//' | sort)"
done
expect_eq "kvctl and etcdctl print the same endpoint status --cluster columns" \
    "$(discovered "$ETCDCTL_BIN" endpoint status --cluster 2>&1 | awk -F', ' '{print $1, $2, $5, $6}' | sort)" \
    "$(discovered "$KVCTL_BIN" endpoint status --cluster 2>&1 | awk -F', ' '{print $1, $2, $5, $6}' | sort)"
etcdctl_missing=$(timeout 10 "$ETCDCTL_BIN" --discovery-srv nothing.test get k1 2>&1)
kvctl_missing=$(timeout 10 "$KVCTL_BIN" --discovery-srv nothing.test get k1 2>&1)
kvctl_status=$?
expect_eq "kvctl: a domain without records exits 1" 1 "$kvctl_status"
expect_eq "kvctl: a domain without records says so as etcdctl does" \
    "$(sed 's/ on [0-9.]*:[0-9]*:/:/g' <<<"$etcdctl_missing")" "$kvctl_missing"

# The gateway (kvd's and etcd 3.4's): its endpoints from the same records, --endpoints pointing
# nowhere. Without --insecure-discovery only https endpoints that accept a connection are kept; one
# more record, an http one, must be left out.
echo "_etcd-client-east._tcp.kvd.test SRV 0 0 1 m4.kvd.test" >>"$zone"
kill "$dns_pid"
wait "$dns_pid" 2>/dev/null
python3 "$here/dns-server.py" 127.0.0.1 "$zone" >"$COMPAT_TMP/dns.log" 2>&1 &
dns_pid=$!
COMPAT_CLEANUP_HOOKS+=("kill $dns_pid")
for _ in $(seq 50); do grep -q serving "$COMPAT_TMP/dns.log" && break; sleep 0.1; done
grep -q serving "$COMPAT_TMP/dns.log" || die "the DNS server did not start again: $(cat "$COMPAT_TMP/dns.log")"
for gateway in "$KVD_BIN" "$ETCD_BIN"; do
    tool=$(basename "$gateway")
    for insecure in "" --insecure-discovery; do
        port=$(_new_port)
        "$gateway" gateway start --discovery-srv kvd.test --discovery-srv-name east $insecure \
            --endpoints 127.0.0.1:1 --listen-addr "127.0.0.1:$port" >"$COMPAT_TMP/gateway-$tool${insecure}.log" 2>&1 </dev/null &
        gateway_pid=$!
        COMPAT_CLEANUP_HOOKS+=("kill $gateway_pid 2>/dev/null")
        out=""
        for _ in $(seq 30); do
            out=$(ectl "https://127.0.0.1:$port" get k1 --print-value-only 2>&1) && break
            sleep 0.2
        done
        expect_eq "$tool gateway --discovery-srv ${insecure:-(validated)}: get through it" v1 "$out"
        kill "$gateway_pid"
        wait "$gateway_pid" 2>/dev/null
    done
    if grep 'failed to validate discovered endpoints' "$COMPAT_TMP/gateway-$tool.log" | grep -q 'http://m4.kvd.test.:1.* is insecure'; then
        pass "$tool gateway: the http endpoint left out when validating"
    else
        fail "$tool gateway: no word of the insecure endpoint: $(tail -n 3 "$COMPAT_TMP/gateway-$tool.log")"
    fi
done

# Refusals, each before the member serves anything.
refused() {
    local n=$1 expected=$2; shift 2
    local out status
    out=$(eval "timeout 20 \"\$KVD_BIN\" $*" 2>&1)
    status=$?
    if ((status != 0)) && grep -qF "$expected" <<<"$out"; then
        pass "$n refused: $expected"
    else
        fail "$n: expected a refusal saying '$expected', got status $status: $(tail -n 3 <<<"$out")"
    fi
}
node_ports n4
refused n4 'cannot find local etcd member "n4" in SRV records' "$(member_args n4 m4.kvd.test)"
refused n4 'multiple discovery or bootstrap flags are set' \
    "$(member_args n4 m4.kvd.test) --initial-cluster n4=https://m4.kvd.test:${SERVER_PPORT[n4]}"
refused n4 '_etcd-server-ssl-west' "$(member_args n4 m4.kvd.test | sed 's/ east / west /')"
expect_eq "no data directory left by the refused members" "" "$(ls -d "$COMPAT_TMP/n4.data" 2>/dev/null)"

# A restart does not look up the SRV records again (as etcd: the data directory knows the cluster).
asked=$(grep -c 'query _etcd-server' "$COMPAT_TMP/dns.log")
node_kill9 n2
node_restart n2
wait_healthy "$START_TIMEOUT" n2 || fail "n2 did not come back after its restart"
expect_eq "n2 serves after its restart" v1 "$(nctl n2 get k1 --print-value-only 2>&1)"
expect_eq "n2's restart looked up no SRV record" "$asked" "$(grep -c 'query _etcd-server' "$COMPAT_TMP/dns.log")"

summary dns-discovery
