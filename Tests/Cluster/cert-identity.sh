#!/usr/bin/env bash
# Tests/Cluster/cert-identity.sh: etcd's --peer-cert-allowed-cn, --peer-cert-allowed-hostname and
# --client-cert-allowed-hostname, beside etcd 3.4.
#   - one member of each with each flag, probed with openssl s_client on the port the flag guards:
#     a certificate of the trusted CA that names the allowed CN (or, for a host name, has it among
#     its subject alternative names) is accepted, one that does not is refused, and kvd answers
#     every probe as etcd does;
#   - three kvd members with --peer-cert-allowed-cn kvd-peer (their peer certificates' CN) form a
#     cluster and serve; n4, added as a learner and started with a certificate of the same CA whose
#     CN is kvd-server as its peer certificate, gets nothing (the check applies both ways), stays
#     unstarted, and the cluster keeps serving;
#   - etcdctl through --client-cert-allowed-hostname with a certificate that names the host works;
#   - both peer flags together, or a name without a trusted CA, stop kvd with a clear message.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cluster_init cert-identity
command -v openssl >/dev/null || die "openssl not found"

# probe PORT CERT_PREFIX: "accepted" when a TLS session with that client certificate is accepted.
probe() {
    # Stdin stays open a moment: in TLS 1.3 the server's verdict on the client certificate (an
    # alert) arrives after the client's handshake has finished.
    if sleep 0.5 | timeout -k 2 5 openssl s_client -connect "127.0.0.1:$1" -servername localhost \
        -CAfile "$PKI/etcd/ca.crt" -cert "$PKI/$2.crt" -key "$PKI/$2.key" >"$COMPAT_TMP/probe.out" 2>&1; then
        echo accepted
    else
        echo refused
    fi
}

# side_by_side LABEL PORT_KIND FLAG VALUE CERT=EXPECTED...: one etcd 3.4 and one kvd member with
# FLAG VALUE, each certificate probed on both; kvd must answer as expected and as etcd does.
# start_named BIN NAME [flags...]: as start_alone, but waited for with etcdctl holding
# etcd/server's certificate (it names localhost), for members that refuse the usual client one.
server_cert=(--cacert="$PKI/etcd/ca.crt" --cert="$PKI/etcd/server.crt" --key="$PKI/etcd/server.key")
start_named() {
    local bin=$1 name=$2 i; shift 2
    node_ports "$name"
    KVD_BIN=$bin node_start "$name" new "$(initial_cluster "$name")" "$@"
    for ((i = 0; i < 10 * START_TIMEOUT; i++)); do
        ETCDCTL_API=3 timeout 5 "$ETCDCTL_BIN" --endpoints="${SERVER_EP[$name]}" "${server_cert[@]}" endpoint health \
            >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    die "$name: one-member cluster did not become healthy"
}

round=0
side_by_side() {
    local label=$1 kind=$2 flag=$3 value=$4 spec cert want e k
    shift 4
    round=$((round + 1))
    local etcd=e$round kvd=k$round
    start_named "$ETCD_BIN" "$etcd" "$flag" "$value" --logger zap
    start_named "$KVD_BIN" "$kvd" "$flag" "$value"
    for spec in "$@"; do
        cert=${spec%%=*}
        want=${spec#*=}
        if [[ $kind == peer ]]; then e=$(probe "${SERVER_PPORT[$etcd]}" "$cert"); k=$(probe "${SERVER_PPORT[$kvd]}" "$cert")
        else e=$(probe "${SERVER_CPORT[$etcd]}" "$cert"); k=$(probe "${SERVER_CPORT[$kvd]}" "$cert"); fi
        expect_eq "$label: etcd 3.4 with $cert" "$want" "$e"
        expect_eq "$label: kvd with $cert" "$want" "$k"
    done
    node_stop "$etcd"
    node_stop "$kvd"
}

# etcd/peer: CN kvd-peer; etcd/server: CN kvd-server; both with SANs localhost, 127.0.0.1, ::1 and
# usable as client certificates. The two client certificates have no SANs.
side_by_side "peer allowed CN" peer --peer-cert-allowed-cn kvd-peer \
    etcd/peer=accepted etcd/server=refused etcd/healthcheck-client=refused
side_by_side "peer allowed hostname" peer --peer-cert-allowed-hostname localhost \
    etcd/peer=accepted etcd/server=accepted etcd/healthcheck-client=refused
side_by_side "peer allowed hostname (IP)" peer --peer-cert-allowed-hostname 127.0.0.2 \
    etcd/peer=refused
side_by_side "client allowed hostname" client --client-cert-allowed-hostname localhost \
    etcd/server=accepted apiserver-etcd-client=refused etcd/peer=accepted

# A cluster whose members must all be kvd-peer.
EXTRA_FLAGS=(--peer-cert-allowed-cn kvd-peer)
nodes=(n1 n2 n3)
cluster_start "${nodes[@]}"
wait_one_leader 10 "${nodes[@]}" >/dev/null || die "no single leader"
put_many n1 base/ 20 2 || fail "puts through n1"
expect_eq "members with the allowed CN replicate" 20 "$(count_keys n3 base/ serializable)"
reconfig_settle

node_ports n4
if out=$(cctl member add n4 --learner --peer-urls="$(peer_url n4)" 2>&1); then
    pass "member add n4 --learner"
else
    fail "member add n4 --learner: $out"
fi
PEER_CERT=$PKI/etcd/server.crt PEER_KEY=$PKI/etcd/server.key node_start n4 existing "$(initial_cluster n1 n2 n3 n4)" "${EXTRA_FLAGS[@]}"
sleep $((5 * ET_MS / 1000))   # five election timeouts
if node_running n4; then
    expect_eq "n4 with CN kvd-server received no data" 0 "$(count_keys n4 base/ serializable)"
else
    pass "n4 with CN kvd-server could not start"
fi
member_field() { cctl "${FAST[@]}" member list 2>/dev/null | awk -F', ' -v u="$(peer_url "$1")" -v f="$2" '$4 == u {print $f}'; }
expect_eq "n4 stays unstarted" unstarted "$(member_field n4 2)"
if put_many n2 during/ 10 2 && [[ $(count_keys n3 during/) == 10 ]]; then pass "the cluster keeps serving"; else fail "the cluster stopped serving"; fi
node_stop n4
for n in "${nodes[@]}"; do node_stop "$n"; done

# The client port: etcdctl with a certificate that names the host.
EXTRA_FLAGS=()
start_named "$KVD_BIN" c1 --client-cert-allowed-hostname localhost
expect_eq "etcdctl with a certificate for localhost" v \
    "$(ETCDCTL_API=3 timeout 10 "$ETCDCTL_BIN" --endpoints="${SERVER_EP[c1]}" "${server_cert[@]}" put k v >/dev/null &&
        ETCDCTL_API=3 timeout 10 "$ETCDCTL_BIN" --endpoints="${SERVER_EP[c1]}" "${server_cert[@]}" get k --print-value-only)"
if CMD_TIMEOUT=5 nctl c1 --dial-timeout=2s get k >/dev/null 2>&1; then
    fail "etcdctl with a certificate without the host was served"
else
    pass "etcdctl with a certificate without the host is refused"
fi
node_stop c1

refusal() { timeout 10 "$KVD_BIN" --data-dir "$COMPAT_TMP/refused" "$@" 2>&1 | grep -c -F -e "$REFUSAL"; }
peer_tls=(--listen-peer-urls https://127.0.0.1:2 --initial-advertise-peer-urls https://127.0.0.1:2
    --initial-cluster default=https://127.0.0.1:2 --peer-cert-file "$PKI/etcd/peer.crt" --peer-key-file "$PKI/etcd/peer.key")
REFUSAL='AllowedCN and AllowedHostname are mutually exclusive (cn="kvd-peer", hostname="localhost")'
expect_eq "both peer names refused" 1 \
    "$(refusal "${peer_tls[@]}" --peer-trusted-ca-file "$PKI/etcd/ca.crt" --peer-cert-allowed-cn kvd-peer --peer-cert-allowed-hostname localhost)"
REFUSAL='--peer-cert-allowed-cn and --peer-cert-allowed-hostname need --peer-trusted-ca-file'
expect_eq "an allowed CN without a trusted CA refused" 1 "$(refusal "${peer_tls[@]}" --peer-cert-allowed-cn kvd-peer)"
summary cert-identity
