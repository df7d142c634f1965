#!/usr/bin/env bash
# Tests/Compat/range-stream.sh: etcd 3.7's KV.RangeStream on a fresh single-member kvd, driven by
# range-stream.py (Python gRPC, Debian's python3-grpc): the chunks of every request, merged, equal
# kvd's Range answer for it (Range itself is checked against etcd 3.4 by the other suites; etcd
# 3.4 has no RangeStream); chunk sizes follow etcd's (10 keys first, doubling, halving for big
# values); header, more and count only on the last chunk; refusals with etcd's codes and messages.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
compat_init range-stream
/usr/bin/python3 -c "import etcd3, grpc" 2>/dev/null || die "python3-etcd3 is not installed (make deps)"

server_start tgt kvd plain
timeout 300 /usr/bin/python3 "$COMPAT_DIR/range-stream.py" "${SERVER_CPORT[tgt]}" >"$COMPAT_TMP/out" 2>&1
status=$?
server_stop tgt
report_checks "$COMPAT_TMP/out" "$status" range-stream.py
summary range-stream
