#!/usr/bin/env bash
# Tests/Cluster/tls-flags.sh: etcd's TLS limits, --cipher-suites, --tls-min-version and
# --tls-max-version, on both ports.
#   - three kvd members with --cipher-suites TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 and
#     --tls-max-version TLS1.2 form a cluster (their peer connections obey the same limits) and
#     serve; on the client port a TLS 1.2 handshake offering only another suite fails, one offering
#     that suite succeeds, and TLS 1.3 is refused. etcd 3.4 with the same --cipher-suites answers the
#     two TLS 1.2 handshakes the same way;
#   - a member with --tls-min-version TLS1.3 refuses TLS 1.2 and accepts TLS 1.3;
#   - bad values stop kvd with etcd 3.5's messages.
# Handshakes are made by openssl s_client with the client certificate (the ports require one).
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cluster_init tls-flags
command -v openssl >/dev/null || die "openssl not found"

# handshake NAME ARGS...: "ok CIPHER" when openssl completes a handshake with NAME's client port.
handshake() {
    local n=$1 out cipher; shift
    out=$(timeout 10 openssl s_client -connect "127.0.0.1:${SERVER_CPORT[$n]}" -CAfile "$PKI/etcd/ca.crt" \
        -cert "$PKI/apiserver-etcd-client.crt" -key "$PKI/apiserver-etcd-client.key" "$@" </dev/null 2>&1)
    cipher=$(sed -nE 's/^ *Cipher *: *([A-Z0-9_-]+)$/\1/p; s/^New, [^,]*, Cipher is ([A-Z0-9_-]+)$/\1/p' <<<"$out" | head -1)
    if [[ -n $cipher && $cipher != "0000" && $cipher != "(NONE)" ]]; then echo "ok $cipher"; else echo "refused"; fi
}

# An AES-128-GCM suite: etcd 3.4 (Go's HTTP/2) refuses a list without one.
suite=TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
EXTRA_FLAGS=(--cipher-suites "$suite" --tls-max-version TLS1.2)
cluster_start n1 n2 n3
expect_eq "the limited members serve" "v" "$(nctl n1 put k v >/dev/null && nctl n3 get k --print-value-only)"
expect_eq "TLS 1.2 with another suite" "refused" "$(handshake n1 -tls1_2 -cipher ECDHE-ECDSA-AES256-GCM-SHA384)"
expect_eq "TLS 1.2 with the suite" "ok ECDHE-ECDSA-AES128-GCM-SHA256" "$(handshake n1 -tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256)"
expect_eq "TLS 1.3 above the maximum" "refused" "$(handshake n2 -tls1_3)"

node_ports e1
# etcd 3.4 with its default logger (capnslog) panics logging a refused handshake; zap logs it.
KVD_BIN=$ETCD_BIN node_start e1 new "$(initial_cluster e1)" --cipher-suites "$suite" --logger zap
if wait_healthy "$START_TIMEOUT" e1; then pass "etcd 3.4 serves with the suite"; else fail "etcd 3.4 did not start"; fi
expect_eq "etcd: TLS 1.2 with another suite" "refused" "$(handshake e1 -tls1_2 -cipher ECDHE-ECDSA-AES256-GCM-SHA384)"
expect_eq "etcd: TLS 1.2 with the suite" "ok ECDHE-ECDSA-AES128-GCM-SHA256" "$(handshake e1 -tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256)"
node_stop e1

EXTRA_FLAGS=(--tls-min-version TLS1.3)
node_ports m1
node_start m1 new "$(initial_cluster m1)" "${EXTRA_FLAGS[@]}"
if wait_healthy "$START_TIMEOUT" m1; then pass "a TLS 1.3-only member serves"; else fail "the TLS 1.3-only member did not start"; fi
expect_eq "TLS 1.2 below the minimum" "refused" "$(handshake m1 -tls1_2)"
[[ $(handshake m1 -tls1_3) == ok* ]] && pass "TLS 1.3 accepted" || fail "TLS 1.3 refused"

refusal() { "$KVD_BIN" --data-dir "$COMPAT_TMP/refused" "$@" 2>&1 | grep -c -F "$REFUSAL"; }
REFUSAL='unexpected TLS version "TLS1.1" (must be one of: TLS1.2, TLS1.3)'
expect_eq "--tls-min-version TLS1.1 refused" 1 "$(refusal --tls-min-version TLS1.1)"
REFUSAL='unexpected TLS cipher suite "TLS_RSA_WITH_RC4_128_SHA"'
expect_eq "an unknown suite refused" 1 "$(refusal --cipher-suites TLS_RSA_WITH_RC4_128_SHA)"
REFUSAL='cipher suites cannot be configured when only TLS1.3 is enabled'
expect_eq "suites with TLS 1.3 only refused" 1 "$(refusal --tls-min-version TLS1.3 --cipher-suites "$suite")"
summary tls-flags
