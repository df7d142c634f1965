#!/usr/bin/env bash
# Tests/Compat/python-clients.sh: two third-party clients in another language, Debian's
# python3-etcd3gw (etcd's JSON gateway, as OpenStack uses it) and python3-etcd3 (gRPC), run the
# same steps (python-clients.py: puts, gets, prefixes, create/replace txns, leases, locks,
# watches, deletes, members, status, compaction and its error, an unknown lease) against a fresh etcd 3.4 and
# a fresh kvd, one single-member server each. Every step must answer the same. (Debian's
# python3, where the two packages are installed, not whichever python3 comes first on PATH.)
set -uo pipefail
. "$(dirname "$0")/lib.sh"
compat_init python-clients
target=${DIFF_TARGET:-kvd}
/usr/bin/python3 -c "import etcd3, etcd3gw" 2>/dev/null || die "python3-etcd3 and python3-etcd3gw are not installed (make deps)"

run_clients() {
    timeout 120 /usr/bin/python3 "$COMPAT_DIR/python-clients.py" 127.0.0.1 "${SERVER_CPORT[$1]}" 2>&1 | grep -v '^ *warnings\.warn\|Warning'
}

server_start ref etcd plain
run_clients ref >"$COMPAT_TMP/ref.out"
server_stop ref
server_start tgt "$target" plain
run_clients tgt >"$COMPAT_TMP/tgt.out"
server_stop tgt

# The harness itself: etcd went through every step.
expect_eq "etcd answered every step" "grpc revoke unknown lease" "$(tail -n 1 "$COMPAT_TMP/ref.out" | cut -d: -f1)"
while IFS= read -r want; do
    step=${want%%:*}
    expect_eq "$step" "$want" "$(awk -v s="$step:" 'index($0, s) == 1 {print; exit}' "$COMPAT_TMP/tgt.out")"
done <"$COMPAT_TMP/ref.out"
summary python-clients
