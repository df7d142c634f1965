#!/usr/bin/env bash
# Tests/Compat/differential.sh: the same etcdctl command sequence (commands.sh)
# against a fresh etcd 3.4 and a fresh DIFF_TARGET (kvd by default; `etcd` to
# validate the harness), compared command by command: stdout, stderr and exit
# code, after masking only cluster_id/member_id/raft_term in headers (and the
# client-made ts/target of etcdctl's own warning lines, see lib.sh).
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
server_stop ref

# The target reuses the reference's ports and name, on a fresh data dir.
SERVER_CPORT[tgt]=${SERVER_CPORT[ref]}
SERVER_PPORT[tgt]=${SERVER_PPORT[ref]}
server_start tgt "$target" plain "$COMPAT_TMP/tgt.data"
run_sequence "$ETCDCTL_BIN" tgt "$COMPAT_TMP/out.tgt"
server_stop tgt

compare_sequences "$COMPAT_TMP/out.ref" "$COMPAT_TMP/out.tgt" etcd "$target" etcdctl
summary differential
