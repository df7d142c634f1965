#!/usr/bin/env bash
# Tests/Compat/bad-requests.sh: requests no client library sends (bad-requests.py hand-encodes
# them as raw gRPC calls) against a fresh etcd 3.4 and a fresh kvd, one single-member server each:
# every status (code and message) and the revision afterwards must be etcd's, except where kvd
# does what etcd 3.5 does:
#   - a 3 MiB put: ResourceExhausted with grpc-go's message (the stream is not reset); a 2 MB put:
#     "request is too large"; a truncated message: grpc-go's unmarshalling status;
#   - compares whose target or result is outside the enum: evaluated as etcd 3.4 does;
#   - a txn nested 50 deep is accepted, 130 deep refused (max-txn-ops shrinks with each level);
#   - a sort order outside the enum: etcd 3.4 ignores it, 3.5 and kvd answer "invalid sort
#     option"; a sort target outside it: etcd 3.4 panics (not sent to it), kvd answers as 3.5.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
compat_init bad-requests
target=${DIFF_TARGET:-kvd}
requests=(put-3MiB put-2MB put-truncated range-sort-order-99 txn-compare-target-99 txn-compare-target-99-not-equal
    txn-compare-result-99 txn-nested-50 txn-nested-130)

# answers NAME REQUEST...: the statuses NAME gives, after one key the compares read.
answers() {
    local name=$1; shift
    ctl "$name" put bad/existing v >/dev/null || fail "$name: put bad/existing"
    timeout 120 "$COMPAT_DIR/bad-requests.py" 127.0.0.1 "${SERVER_CPORT[$name]}" "$@" 2>&1
}

server_start ref etcd plain
answers ref "${requests[@]}" >"$COMPAT_TMP/ref.out"
server_stop ref
server_start tgt "$target" plain
if [[ $target == etcd ]]; then  # validating the harness: etcd against itself
    answers tgt "${requests[@]}" >"$COMPAT_TMP/tgt.out"
else
    answers tgt "${requests[@]}" range-sort-target-99 >"$COMPAT_TMP/tgt.out"
fi

# The harness itself: etcd answered every request (a reset or a closed connection means the
# client, not the server, went wrong).
if grep -qE ': (reset|closed|no status|timeout)' "$COMPAT_TMP/ref.out"; then
    fail "etcd did not answer every request: $(cat "$COMPAT_TMP/ref.out")"
fi
# etcd 3.5's answer where 3.4 has none or another.
if [[ $target == etcd ]]; then
    cp "$COMPAT_TMP/ref.out" "$COMPAT_TMP/want.out"
else
    sed -E 's/^(range-sort-order-99): .*/\1: code=3 message=etcdserver: invalid sort option/' "$COMPAT_TMP/ref.out" |
    awk '/^revision:/ { print "range-sort-target-99: code=3 message=etcdserver: invalid sort option" } { print }' \
        >"$COMPAT_TMP/want.out"
fi
while IFS= read -r want; do
    name=${want%%:*}
    got=$(grep -m1 "^$name:" "$COMPAT_TMP/tgt.out")
    expect_eq "$name" "$want" "$got"
done <"$COMPAT_TMP/want.out"
summary bad-requests
