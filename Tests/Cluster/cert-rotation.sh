#!/usr/bin/env bash
# Tests/Cluster/cert-rotation.sh: certificates and CAs replaced under load, without a restart.
#
# Three mTLS members share one set of files (server and peer pairs, the trusted CA), replaced the
# way renewals do it (each file written aside and renamed over the old one, the certificate
# before its key), while WRITERS loops put unique keys through every member, each put a new
# etcdctl and so a new TLS connection:
#  1. Renewal: new server and peer key pairs from the same CA. Every member's client and peer
#     ports serve the new certificates (openssl s_client), and every member logs the reload.
#  2. CA rotation: the trusted CA file becomes the old and a new CA together, then the server and
#     peer pairs are re-issued by the new CA. Both ports then verify against the new CA alone;
#     clients with certificates of the old CA are still served.
#  No put fails during 1 and 2. Then the members must still reach each other with the new CA:
#  n3 restarts (dialing the others with its new certificate), then n2 stops, and puts must go on
#  through n1 and n3 alone; with n2 back, every acknowledged put is readable through every member,
#  with one HashKV.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cluster_init cert-rotation
nodes=(n1 n2 n3)

# The members' files are this test's own copy, since it rewrites them.
cp -r "$PKI" "$COMPAT_TMP/live-pki"
PKI=$COMPAT_TMP/live-pki
ROT=$COMPAT_TMP/rotation
mkdir -p "$ROT"

# leaf NAME CA_PREFIX: a new key and a certificate like gen-certs.sh's server and peer ones
# (serverAuth and clientAuth, the loopback SANs), issued by CA_PREFIX.{crt,key}: $ROT/NAME.{crt,key}.
leaf() {
    local name=$1 ca=$2
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$ROT/$name.key" 2>/dev/null &&
        openssl req -new -key "$ROT/$name.key" -subj "/CN=kvd-rotated-$name" -out "$ROT/$name.csr" 2>/dev/null &&
        openssl x509 -req -in "$ROT/$name.csr" -CA "$ca.crt" -CAkey "$ca.key" -CAcreateserial -days 30 -sha256 \
            -extfile <(printf '%s\n' 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1' \
                'extendedKeyUsage=serverAuth,clientAuth' 'keyUsage=critical,digitalSignature,keyEncipherment') \
            -out "$ROT/$name.crt" 2>/dev/null || die "openssl could not issue $name"
}
# replace SRC DST: DST's new content, written aside and renamed over it.
replace() { cp "$1" "$2.new" && mv "$2.new" "$2"; }
# install NAME: the pair $ROT/NAME.{crt,key} in place of the server and the peer pairs (the old
# ones were issued for the same names), each certificate before its key.
install() {
    local target
    for target in server peer; do
        replace "$ROT/$1.crt" "$PKI/etcd/$target.crt" && replace "$ROT/$1.key" "$PKI/etcd/$target.key"
    done
}
serial_of() { openssl x509 -in "$1" -noout -serial; }
# served PORT CAFILE CERT: the serial of the certificate served on PORT, if it verifies against CAFILE.
served() {
    local out
    out=$(timeout 10 openssl s_client -connect "127.0.0.1:$1" -CAfile "$2" -cert "$PKI/$3.crt" -key "$PKI/$3.key" \
        -verify_return_error </dev/null 2>/dev/null) || { echo "handshake failed"; return; }
    openssl x509 -noout -serial <<<"$out" 2>/dev/null || echo "no certificate"
}
# ports_serve LABEL CAFILE SERIAL: every member's client and peer ports serve SERIAL, verified by CAFILE.
ports_serve() {
    local label=$1 ca=$2 want=$3 n got bad=""
    for n in "${nodes[@]}"; do
        got=$(served "${SERVER_CPORT[$n]}" "$ca" apiserver-etcd-client)
        [[ $got == "$want" ]] || bad+=" $n client port: $got;"
        got=$(served "${SERVER_PPORT[$n]}" "$ca" etcd/peer)
        [[ $got == "$want" ]] || bad+=" $n peer port: $got;"
    done
    [[ -z $bad ]] && pass "$label: every client and peer port serves $want" || fail "$label: want $want,$bad"
}
fails_of() { cat "$COMPAT_TMP"/fail."$1".* 2>/dev/null | wc -l; }

cluster_start "${nodes[@]}"
wait_one_leader 10 "${nodes[@]}" >/dev/null || die "no single leader"
EPS=$(running_eps)
start_writers rotate
sleep 2

# rotate LABEL NAME CA_PREFIX: NAME's pair issued by CA_PREFIX in place of the server and peer
# pairs under load; every port must then serve it, verified by CA_PREFIX alone, and puts go on.
rotate() {
    local label=$1 name=$2 ca=$3 a0
    leaf "$name" "$ca"
    a0=$(acks_of rotate)
    install "$name"
    sleep 1
    ports_serve "$label" "$ca.crt" "$(serial_of "$ROT/$name.crt")"
    sleep 2
    (($(acks_of rotate) > a0)) && pass "$label: puts acknowledged after it ($(($(acks_of rotate) - a0)))" ||
        fail "$label: no put acknowledged after it"
}

# 1. Renewal from the same CA.
rotate renewal renewed "$PKI/etcd/ca"
for n in "${nodes[@]}"; do
    grep -q 'reloaded TLS certificate files' "${SERVER_LOG[$n]}" && pass "renewal: $n logs the reload" ||
        fail "renewal: $n does not log 'reloaded TLS certificate files'"
done

# 2. CA rotation: trust both, then re-issue by the new CA.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$ROT/ca2.key" 2>/dev/null
openssl req -x509 -new -key "$ROT/ca2.key" -subj "/CN=etcd-ca-rotated" -days 30 -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign" \
    -out "$ROT/ca2.crt" 2>/dev/null || die "openssl could not make the new CA"
cat "$PKI/etcd/ca.crt" "$ROT/ca2.crt" >"$ROT/bundle.crt"
replace "$ROT/bundle.crt" "$PKI/etcd/ca.crt"
sleep 1
rotate "CA rotation" reissued "$ROT/ca2"
stop_writers rotate
expect_eq "no put failed during the rotations ($(acks_of rotate) acknowledged)" 0 "$(fails_of rotate)"

# The members reach each other with the new CA's certificates: n3 dials anew, then a quorum of
# n1 and n3 alone takes writes.
node_kill9 n3
node_restart n3
wait_healthy 30 n3 || fail "n3 did not come back with the new CA's certificate"
node_kill9 n2
wait_one_leader 15 n1 n3 >/dev/null || fail "no leader among n1 and n3"
EPS=$(running_eps)
start_writers quorum
sleep 3
stop_writers quorum
(($(acks_of quorum) > 0)) && pass "n1 and n3 alone acknowledge puts ($(acks_of quorum))" || fail "n1 and n3 alone acknowledge no put"
node_restart n2
wait_healthy 30 "${nodes[@]}" || fail "n2 did not come back"
verify "after the rotations" rotate quorum
same_hashkv "after the rotations"
summary cert-rotation
