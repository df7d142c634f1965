#!/usr/bin/env bash
# Tests/Compat/large-ranges.sh: Ranges too large for kvd to build whole (LargeRange streams them in
# bounded memory) beside etcd 3.4, driven by large-ranges.py (Python gRPC): the same writes to a
# fresh etcd and a fresh kvd, then each Range's key-values, count and more are etcd's, encoded as
# etcd encodes them; a get cut short by its deadline, and four readers that stop reading mid-answer,
# leave the member serving; a get of every key grows kvd's peak resident memory by less than half the
# answer.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
compat_init large-ranges
/usr/bin/python3 -c "import etcd3, grpc" 2>/dev/null || die "python3-etcd3 is not installed (make deps)"

server_start ref etcd plain
server_start tgt kvd plain
KVD_PID=${SERVER_PID[tgt]} timeout 600 /usr/bin/python3 "$COMPAT_DIR/large-ranges.py" "${SERVER_CPORT[ref]}" "${SERVER_CPORT[tgt]}" \
    >"$COMPAT_TMP/out" 2>&1
status=$?
server_stop tgt
server_stop ref
report_checks "$COMPAT_TMP/out" "$status" large-ranges.py
summary large-ranges
