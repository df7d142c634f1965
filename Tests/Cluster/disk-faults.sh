#!/usr/bin/env bash
# Tests/Cluster/disk-faults.sh: a disk that fails or slows down under a member, injected for real
# (Tests/Faults/diskfault.c, an LD_PRELOAD library over fsync and fdatasync, driven per member by
# a control file).
#  1. A follower whose syncs take 300 ms, then the leader's (below the 1 s election timeout): every
#     put is acknowledged and nobody starts an election (the term stays).
#  2. The leader's next sync fails (EIO): it stops at once, loudly, without retrying the sync as
#     if it had succeeded; the put it was syncing is not acknowledged by it; the other two elect a
#     leader and acknowledge writes; restarted on a healthy disk, it catches up, and every member
#     holds the same keys.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cluster_init disk-faults

. "$CLUSTER_DIR/../Faults/faults.sh"
build_fault_libraries "$COMPAT_TMP" || die "cannot build the fault libraries"
for n in n1 n2 n3; do
    : >"$COMPAT_TMP/$n.fault"
    NODE_ENV[$n]="LD_PRELOAD=$COMPAT_TMP/diskfault.so DISKFAULT_CONTROL=$COMPAT_TMP/$n.fault"
done
cluster_start n1 n2 n3
leader=$(wait_one_leader 15 n1 n2 n3) || die "no leader"
read -r -a followers <<<"$(others "$leader" n1 n2 n3)"
put_many "$leader" a/ 30 && pass "30 puts before any fault" || fail "puts before any fault"

# 1. Slow syncs.
term=$(raft_term "$leader")
echo "delay 300" >"$COMPAT_TMP/${followers[0]}.fault"
put_many "$leader" slow-follower/ 20 && pass "20 puts with a follower syncing in 300 ms" || fail "puts with a slow follower"
: >"$COMPAT_TMP/${followers[0]}.fault"
echo "delay 300" >"$COMPAT_TMP/$leader.fault"
put_many "$leader" slow-leader/ 20 && pass "20 puts with the leader syncing in 300 ms" || fail "puts with a slow leader"
: >"$COMPAT_TMP/$leader.fault"
grep -q 'diskfault: fdatasync.*delayed 300 ms' "${SERVER_LOG[${followers[0]}]}" && grep -q 'diskfault: fdatasync.*delayed 300 ms' "${SERVER_LOG[$leader]}" &&
    pass "the follower's and the leader's syncs were slowed" || fail "no sync was slowed (diskfault not loaded?)"
expect_eq "no election while syncs took 300 ms (leader, term)" "$leader $term" "$(leaders n1 n2 n3) $(raft_term "$leader")"

# 2. A failed sync on the leader.
echo eio >"$COMPAT_TMP/$leader.fault"
if nctl "$leader" "${FAST[@]}" put b/1 v1 >/dev/null 2>&1; then
    fail "the leader acknowledged a put whose sync failed"
else
    pass "the put the leader was syncing when its sync failed is not acknowledged by it"
fi
if ! wait_exit "$leader" 10; then
    fail "the leader still runs 10 s after its sync failed"
    node_stop "$leader"
elif ((EXIT_STATUS != 0)); then
    pass "the leader stopped by itself (status $EXIT_STATUS)"
else
    fail "the leader exited 0 after a failed sync"
fi
expect_eq "syncs that failed before the member stopped (it never syncs again after a failure)" 1 \
    "$(grep -c 'diskfault: .* -> EIO' "${SERVER_LOG[$leader]}")"
grep -q 'raft log write failed' "${SERVER_LOG[$leader]}" && pass "it said why it stopped" ||
    fail "no 'raft log write failed' in its log: $(tail -n 3 "${SERVER_LOG[$leader]}")"

new_leader=$(wait_one_leader 15 "${followers[@]}") && pass "the others elected $new_leader" || fail "no new leader"
put_many "${new_leader:-${followers[0]}}" c/ 30 && pass "30 puts acknowledged without the failed member" || fail "puts without it"

: >"$COMPAT_TMP/$leader.fault"
node_restart "$leader"
wait_caught_up 30 "$leader" c/ 30 && pass "restarted on a healthy disk, it caught up" || fail "it did not catch up"
for n in n1 n2 n3; do
    expect_eq "$n holds every acknowledged key" "0 0 0 0" \
        "$(check_keys "$n" a/ 30) $(check_keys "$n" slow-follower/ 20) $(check_keys "$n" slow-leader/ 20) $(check_keys "$n" c/ 30)"
done
b=$(for n in n1 n2 n3; do count_keys "$n" b/ serializable; done | sort -u | tr '\n' ' ')
expect_eq "the members agree on the put that was never acknowledged (present on all or none)" 1 "$(wc -w <<<"$b")"
summary disk-faults
