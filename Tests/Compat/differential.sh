#!/usr/bin/env bash
# Tests/Compat/differential.sh: the same etcdctl command sequence (commands.sh)
# against a fresh etcd 3.4 and a fresh DIFF_TARGET (kvd by default; `etcd` to
# validate the harness), compared command by command: stdout, stderr and exit
# code, after masking only cluster_id/member_id/raft_term in headers (and the
# client-made ts/target of etcdctl's own warning lines, see lib.sh). Then the HTTP
# endpoints on the plaintext client port, beside gRPC: /health, /version, 404.
#
# Both servers use the same name, token and ports (one after the other), each
# with a fresh data dir, plaintext.
#   DIFF_TARGET=kvd|etcd  (default kvd)   KEEP_TMP=1 keeps outputs and logs.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
. "$COMPAT_DIR/commands.sh"

target=${DIFF_TARGET:-kvd}
compat_init differential
SERVER_NODE[ref]=node1
SERVER_NODE[tgt]=node1

server_start ref etcd plain "$COMPAT_TMP/ref.data"
run_sequence "$ETCDCTL_BIN" ref "$COMPAT_TMP/out.ref"
# client_http NAME: the HTTP endpoints' answers on NAME's (plaintext) client port.
client_http() {
    local path
    for path in /health /version /nope; do
        printf '%s ' "$path"
        curl -s -o - -w ' %{http_code}\n' --max-time 5 "http://127.0.0.1:${SERVER_CPORT[$1]}$path" || echo "curl failed"
    done | sed -E 's/3\.4\.(0|23)/<version>/g; s/3\.6\.0/<version>/g'
}
client_http ref >"$COMPAT_TMP/http.ref"
server_stop ref

# The target reuses the reference's ports and name, on a fresh data dir.
SERVER_CPORT[tgt]=${SERVER_CPORT[ref]}
SERVER_PPORT[tgt]=${SERVER_PPORT[ref]}
server_start tgt "$target" plain "$COMPAT_TMP/tgt.data"
run_sequence "$ETCDCTL_BIN" tgt "$COMPAT_TMP/out.tgt"
client_http tgt >"$COMPAT_TMP/http.tgt"
server_stop tgt

compare_sequences "$COMPAT_TMP/out.ref" "$COMPAT_TMP/out.tgt" etcd "$target" etcdctl
expect_eq "HTTP endpoints on the client port" "$(cat "$COMPAT_TMP/http.ref")" "$(cat "$COMPAT_TMP/http.tgt")"
grep -q '^/health {"health":"true"} 200$' "$COMPAT_TMP/http.tgt" || fail "no healthy /health on $target's client port"
summary differential
