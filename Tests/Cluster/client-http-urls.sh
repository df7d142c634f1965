#!/usr/bin/env bash
# Tests/Cluster/client-http-urls.sh: etcd 3.5's --listen-client-http-urls. A member started with
# an https URL there serves the client's HTTP/1.1 traffic on it (/health, the JSON gateway, with
# the client port's mutual TLS) and gRPC alone on --listen-client-urls, as etcd 3.5 does: etcdctl
# works on the client URL and not on the HTTP one, curl works on the HTTP URL and not on the
# client one. (etcd 3.4 has no such flag.)
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cluster_init client-http-urls

node_ports hx
http_ep=https://127.0.0.1:${SERVER_CPORT[hx]}
start_alone "$KVD_BIN" h1 --listen-client-http-urls "$http_ep"

get() {  # get URL [curl args...]: the body, or "failed"
    local url=$1; shift
    curl -s --max-time 5 --cacert "$PKI/etcd/ca.crt" --cert "$PKI/apiserver-etcd-client.crt" \
        --key "$PKI/apiserver-etcd-client.key" "$@" "$url" || echo failed
}
expect_eq "/health on the HTTP URL" '{"health":"true"}' "$(get "$http_ep/health")"
expect_eq "a gateway put on the HTTP URL" yes \
    "$(get "$http_ep/v3/kv/put" -X POST -d '{"key":"Zm9v","value":"YmFy"}' | grep -q '"revision"' && echo yes || echo no)"
expect_eq "a gateway range on the HTTP URL" yes \
    "$(get "$http_ep/v3/kv/range" -X POST -d '{"key":"Zm9v"}' | grep -q '"value":"YmFy"' && echo yes || echo no)"
expect_eq "no HTTP on the client URL" failed "$(get "${SERVER_EP[h1]}/health")"
expect_eq "gRPC on the client URL" bar "$(nctl h1 get foo --print-value-only 2>/dev/null)"
if CMD_TIMEOUT=5 ectl "$http_ep" --dial-timeout=2s get foo >/dev/null 2>&1; then
    fail "gRPC was served on the HTTP URL"
else
    pass "no gRPC on the HTTP URL"
fi
summary client-http-urls
