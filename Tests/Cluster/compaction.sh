#!/usr/bin/env bash
# Tests/Cluster/compaction.sh: automatic compaction beside etcd 3.4 (three mTLS members each,
# --auto-compaction-mode periodic --auto-compaction-retention 2s): history older than the
# retention becomes unreadable with etcd's error on every member, recent history stays
# readable; a wrong retention is refused at start.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cluster_init compaction
[[ -x $ETCD_BIN ]] || die "etcd binary '$ETCD_BIN' not found (apt-get install etcd-server)"

scenario() {
    local p=$1 bin=$2 n ic deadline out
    for n in 1 2 3; do node_ports "$p$n"; done
    ic=$(initial_cluster "${p}1" "${p}2" "${p}3")
    for n in 1 2 3; do
        KVD_BIN=$bin node_start "$p$n" new "$ic" --auto-compaction-mode periodic --auto-compaction-retention 2s
    done
    wait_healthy "$START_TIMEOUT" "${p}1" "${p}2" "${p}3" || die "cluster $p did not become healthy"
    nctl "${p}1" put foo v1 >/dev/null && nctl "${p}1" put foo v2 >/dev/null || fail "$p: puts"
    deadline=$((SECONDS + 10))
    while ((SECONDS < deadline)); do
        out=$(nctl "${p}2" get foo --rev=2 2>&1) || break
        nctl "${p}1" put tick x >/dev/null
        sleep 0.5
    done
    echo "$(grep -v '^{"level"' <<<"$out" | tail -n 1)" >"$COMPAT_TMP/$p.old"
    for n in 1 2 3; do
        out=$(nctl "$p$n" get foo --rev=2 2>&1)
        echo "$p$n: $(grep -v '^{"level"' <<<"$out" | tail -n 1)"
    done >"$COMPAT_TMP/$p.members"
    nctl "${p}1" put foo v3 >/dev/null || fail "$p: put v3"
    rev=$(nctl "${p}1" get foo -w json | grep -o '"mod_revision":[0-9]*' | cut -d: -f2)
    nctl "${p}3" get foo --rev="$rev" --print-value-only >"$COMPAT_TMP/$p.recent" 2>&1
    for n in 1 2 3; do node_kill9 "$p$n"; done
}

scenario e "$ETCD_BIN"
scenario k "$KVD_BIN"
want="Error: etcdserver: mvcc: required revision has been compacted"
expect_eq "etcd: revision 2 compacted away (harness check)" "$want" "$(cat "$COMPAT_TMP/e.old")"
expect_eq "revision 2 compacted away" "$want" "$(cat "$COMPAT_TMP/k.old")"
expect_eq "every member agrees" "$(sed 's/^e/n/' "$COMPAT_TMP/e.members")" "$(sed 's/^k/n/' "$COMPAT_TMP/k.members")"
expect_eq "recent history readable" "v3" "$(cat "$COMPAT_TMP/k.recent")"

node_ports bad
out=$(timeout 10 "$KVD_BIN" --name bad --data-dir "$COMPAT_TMP/bad.data" --auto-compaction-mode revision \
    --auto-compaction-retention 1h --listen-client-urls "http://127.0.0.1:${SERVER_CPORT[bad]}" \
    --listen-peer-urls "http://127.0.0.1:${SERVER_PPORT[bad]}" 2>&1); rc=$?
if ((rc != 0)) && grep -q "CompactionRetention" <<<"$out"; then pass "a revision retention of 1h is refused (exit $rc)"
else fail "bad retention: exit $rc: $out"; fi
summary compaction
