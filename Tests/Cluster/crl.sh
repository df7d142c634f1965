#!/usr/bin/env bash
# Tests/Cluster/crl.sh: etcd's --client-crl-file and --peer-crl-file. The test CA revokes one of
# its client certificates (healthcheck-client) in a CRL made by openssl ca.
#   - a kvd member with --client-crl-file refuses a client presenting the revoked certificate
#     (etcdctl fails; the log says "rejected connection", "certificate serial ... revoked") and
#     serves one presenting another; etcd 3.4 with the same flag answers both the same way;
#   - the list is read per connection, as etcd reads it: replaced by one that revokes nothing, the
#     same certificate is served without a restart; a list that cannot be read refuses everyone;
#   - --peer-crl-file: the peer port closes a TLS connection that presents the revoked
#     certificate, and keeps one that presents another.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cluster_init crl
command -v openssl >/dev/null || die "openssl not found"

# The CA's records for openssl ca; a list revoking healthcheck-client, and one revoking nothing.
crl=$COMPAT_TMP/crl
mkdir -p "$crl"
: >"$crl/index.txt"
echo 01 >"$crl/crlnumber"
cat >"$crl/ca.cnf" <<EOF
[ ca ]
default_ca = test_ca
[ test_ca ]
database = $crl/index.txt
crlnumber = $crl/crlnumber
default_md = sha256
default_crl_days = 30
EOF
ossl_ca() { openssl ca -config "$crl/ca.cnf" -keyfile "$PKI/etcd/ca.key" -cert "$PKI/etcd/ca.crt" -batch "$@" 2>"$crl/err" ||
    die "openssl ca $*: $(cat "$crl/err")"; }
ossl_ca -gencrl -out "$crl/none.crl"
ossl_ca -revoke "$PKI/etcd/healthcheck-client.crt"
ossl_ca -gencrl -out "$crl/revoked.crl"
cp "$crl/revoked.crl" "$crl/current.crl"
serial=$(openssl x509 -in "$PKI/etcd/healthcheck-client.crt" -noout -serial | sed 's/^serial=//' | tr 'A-F' 'a-f' | sed 's/^\(00\)*//')

# as_client NAME CERT ARGS...: etcdctl against NAME with the client certificate CERT (a prefix in the PKI).
as_client() {
    local n=$1 cert=$2; shift 2
    timeout -k 2 "$CMD_TIMEOUT" "$ETCDCTL_BIN" --endpoints="${SERVER_EP[$n]}" --dial-timeout=2s --command-timeout=3s \
        --cacert="$PKI/etcd/ca.crt" --cert="$PKI/$cert.crt" --key="$PKI/$cert.key" "$@"
}
good=apiserver-etcd-client
revoked=etcd/healthcheck-client
# rejections NAME [PATTERN]: NAME's "rejected connection" log lines (that also match PATTERN).
rejections() { grep 'rejected connection' "${SERVER_LOG[$1]}" | grep -c -- "${2:-.}"; }

node_ports n1
node_start n1 new "$(initial_cluster n1)" --client-crl-file "$crl/current.crl" --peer-crl-file "$crl/current.crl"
wait_healthy "$START_TIMEOUT" n1 || die "n1 did not start"
expect_eq "a client with an unrevoked certificate is served" v "$(as_client n1 "$good" put k v >/dev/null && as_client n1 "$good" get k --print-value-only)"
if as_client n1 "$revoked" get k >/dev/null 2>&1; then fail "a client with the revoked certificate was served"
else pass "a client with the revoked certificate is refused"; fi
(($(rejections n1 "certificate serial $serial revoked") > 0)) &&
    pass "the log says why (certificate serial $serial revoked)" ||
    fail "no 'certificate serial $serial revoked' in the log: $(grep 'rejected connection' "${SERVER_LOG[n1]}" | tail -n 1)"

cp "$crl/none.crl" "$crl/current.crl"
expect_eq "with a list that revokes nothing, the same certificate is served (no restart)" v \
    "$(as_client n1 "$revoked" get k --print-value-only 2>/dev/null)"
echo "not a list" >"$crl/current.crl"
if as_client n1 "$good" get k >/dev/null 2>&1; then fail "served while the list cannot be read"
else pass "while the list cannot be read nobody is served"; fi
cp "$crl/revoked.crl" "$crl/current.crl"

# The peer port: a TLS connection presenting the revoked certificate is closed after the handshake.
peer_hello() {
    local cert=$1
    (sleep 1.5; printf 'x') | timeout 10 openssl s_client -connect "127.0.0.1:${SERVER_PPORT[n1]}" -CAfile "$PKI/etcd/ca.crt" \
        -cert "$PKI/$cert.crt" -key "$PKI/$cert.key" -ign_eof 2>&1 >/dev/null
}
before=$(rejections n1 revoked)
peer_hello "$revoked" >/dev/null
expect_eq "the peer port refuses the revoked certificate after the handshake" 1 "$(($(rejections n1 revoked) - before))"
before=$(rejections n1)
peer_hello "$good" >/dev/null
expect_eq "the peer port keeps a connection with another certificate" 0 "$(($(rejections n1) - before))"

# etcd 3.4 with the same flag.
node_ports e1
KVD_BIN=$ETCD_BIN node_start e1 new "$(initial_cluster e1)" --client-crl-file "$crl/current.crl"
if wait_healthy "$START_TIMEOUT" e1; then
    expect_eq "etcd: a client with an unrevoked certificate is served" v \
        "$(as_client e1 "$good" put k v >/dev/null && as_client e1 "$good" get k --print-value-only)"
    if as_client e1 "$revoked" get k >/dev/null 2>&1; then fail "etcd served the revoked certificate (the test is wrong)"
    else pass "etcd refuses the revoked certificate too"; fi
else
    fail "etcd 3.4 did not start with --client-crl-file"
fi
summary crl
