#!/usr/bin/env bash
# Tests/Cluster/restore.sh: disaster recovery as etcd documents it. A snapshot saved from one
# member of a running cluster (etcdctl snapshot save) is restored with `kvctl snapshot restore`
# into three new data directories with a new --initial-cluster; the new cluster starts from them
# and serves the same keys at the same revisions (and the same users and roles), with only its
# own members, and takes writes; a member added to it afterwards gets the restored keys too.
# A corrupted snapshot is refused, and so is a data directory that already exists.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cluster_init restore
[[ -x $KVCTL_BIN ]] || die "kvctl binary '$KVCTL_BIN' not found (set KVCTL_BIN)"

cluster_start o1 o2 o3
wait_one_leader 10 o1 o2 o3 >/dev/null || die "no leader"
put_many o1 data/ 60 4 || fail "puts"
lease=$(nctl o1 lease grant 3600 | awk '{print $2}')
nctl o1 put leased/k v --lease="$lease" >/dev/null || fail "leased put"
nctl o2 compaction 10 >/dev/null || fail "compaction"
{ nctl o1 user add keeper:pw && nctl o1 role add keepers && nctl o1 user grant-role keeper keepers; } >/dev/null ||
    fail "user and role"
want_json=$(nctl o2 get data/1 -w json | grep -o '"kvs":.*')
want_rev=$(nctl o2 get data/ --prefix -w json | grep -o '"revision":[0-9]*' | head -n 1)
CMD_TIMEOUT=20 nctl o2 snapshot save "$COMPAT_TMP/snap.db" >/dev/null 2>&1 || fail "snapshot save"
for n in o1 o2 o3; do node_stop "$n"; done

# A corrupted copy fails the SHA-256 check.
cp "$COMPAT_TMP/snap.db" "$COMPAT_TMP/bad.db"
printf 'X' | dd of="$COMPAT_TMP/bad.db" bs=1 seek=100 conv=notrunc 2>/dev/null
for n in r1 r2 r3; do node_ports "$n"; done
ic=$(initial_cluster r1 r2 r3)
restore() {  # restore NAME FILE
    "$KVCTL_BIN" snapshot restore "$2" --name "$1" --data-dir "$COMPAT_TMP/$1.data" \
        --initial-cluster "$ic" --initial-cluster-token restored --initial-advertise-peer-urls "$(peer_url "$1")"
}
if out=$(restore r1 "$COMPAT_TMP/bad.db" 2>&1); then fail "a corrupted snapshot was restored"
else pass "a corrupted snapshot is refused: $(tail -n 1 <<<"$out")"; rm -rf "$COMPAT_TMP/r1.data"; fi
for n in r1 r2 r3; do
    if out=$(restore "$n" "$COMPAT_TMP/snap.db" 2>&1); then pass "restore $n"; else fail "restore $n: $out"; fi
done
if out=$(restore r1 "$COMPAT_TMP/snap.db" 2>&1); then fail "restore over an existing data dir succeeded"
else pass "an existing data dir is refused: $(tail -n 1 <<<"$out")"; fi

CLUSTER_TOKEN=restored
for n in r1 r2 r3; do node_start "$n" new "$ic"; done
wait_healthy "$START_TIMEOUT" r1 r2 r3 || die "the restored cluster did not become healthy"
wait_one_leader 10 r1 r2 r3 >/dev/null && pass "the restored cluster has one leader" || fail "no leader"
for n in r1 r2 r3; do
    expect_eq "$n serves data/1 as before" "$want_json" "$(nctl "$n" get data/1 -w json | grep -o '"kvs":.*')"
    expect_eq "$n has all keys" 60 "$(count_keys "$n" data/)"
done
expect_eq "same revision" "$want_rev" "$(nctl r1 get data/ --prefix -w json | grep -o '"revision":[0-9]*' | head -n 1)"
expect_eq "members are the new ones" "r1 r2 r3" "$(cctl member list | awk -F', ' '{print $3}' | sort | paste -sd ' ')"
expect_eq "the lease survived" "$lease" "$(nctl r2 lease list | tail -n 1)"
expect_eq "users and roles survived" "User: keeper Roles: keepers" "$(nctl r3 user get keeper 2>&1 | paste -sd ' ')"
nctl r3 put after restore >/dev/null && pass "writes after the restore" || fail "no writes after the restore"
out=$(nctl r1 get data/1 --rev=5 2>&1)
grep -q "required revision has been compacted" <<<"$out" && pass "compaction point kept" || fail "compaction point lost: $out"

# A member added to the restored cluster gets the restored key space: the restored members' logs
# begin after it, so the leader has to send it a snapshot (replaying their logs from the start
# would give it none of the restored keys).
node_ports r4
# etcd refuses member add until every member has been connected for 5 s (strict reconfig check).
sleep 6
if out=$(nctl r1 member add r4 --peer-urls="$(peer_url r4)" 2>&1); then
    node_start r4 existing "$ic,r4=$(peer_url r4)"
    if wait_healthy "$START_TIMEOUT" r4; then
        wait_caught_up 20 r4 data/ 60 && pass "the added member has all keys" ||
            fail "the added member has $(count_keys r4 data/ serializable) of 60 keys"
        expect_eq "the added member serves data/1 as before" "$want_json" "$(nctl r4 get data/1 --consistency=s -w json | grep -o '"kvs":.*')"
    else
        fail "the member added after the restore did not become healthy"
    fi
else
    fail "member add after the restore: $out"
fi
summary restore
