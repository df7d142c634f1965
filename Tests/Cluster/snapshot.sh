#!/usr/bin/env bash
# Tests/Cluster/snapshot.sh: (e) with --snapshot-count 50, a follower stopped while more
# than 300 writes happen restarts and catches up through a snapshot (its log must say
# "installed snapshot"; the leader's "recorded snapshot"/"sent snapshot" are reported),
# then holds every key and the user and role added while it was down, and keeps following
# new writes from the log afterwards; a lease revoked then deletes its key there as elsewhere. (f) Stopped again while the log is compacted past it, it
# still catches up after both other members restarted: images are written when a follower
# needs one, so a restarted leader must make one (it used to have none until the next
# --snapshot-count entries). (g) With --experimental-snapshot-catchup-entries 1000 it catches up
# from the log instead.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cluster_init snapshot
nodes=(n1 n2 n3)
EXTRA_FLAGS=(--snapshot-count 50)
cluster_start "${nodes[@]}"
leader=$(wait_one_leader 10 "${nodes[@]}") || die "no single leader"
put_many "$leader" pre/ 20 2 || fail "puts before stopping the follower"
read -r f1 f2 <<<"$(others "$leader" "${nodes[@]}")"
log "stopping follower $f1 (SIGTERM), then 320 writes through $leader and $f2"
node_stop "$f1"
# Users and roles are part of the snapshot too.
{ nctl "$leader" user add snapuser:pw && nctl "$leader" role add snaprole &&
    nctl "$leader" user grant-role snapuser snaprole; } >/dev/null || fail "user and role changes while $f1 is down"
# A key attached to a lease: the snapshot must carry the attachment (a member that joined by
# snapshot once kept such a key when the lease was revoked, and its key space diverged).
lease=$(nctl "$leader" lease grant 600 | awk '{print $2}')
nctl "$leader" put snaplease/k v --lease="$lease" >/dev/null || fail "put with a lease while $f1 is down"
put_many "$leader" snap/a/ 200 4 || fail "puts through the leader while $f1 is down"
put_many "$f2" snap/b/ 120 4 || fail "puts through follower $f2 while $f1 is down"
if grep -qE "$LOG_SNAPSHOT_RECORDED" "${SERVER_LOG[$leader]}"; then pass "leader recorded a snapshot"; else fail "leader $leader logged no 'recorded snapshot' after 340 writes with --snapshot-count 50"; fi
node_restart "$f1"
if wait_caught_up 30 "$f1" snap/ 320; then pass "follower $f1 caught up (320 keys)"; else fail "follower $f1 did not catch up: $(count_keys "$f1" snap/ serializable) of 320 keys"; fi
if grep -qE "$LOG_SNAPSHOT_INSTALLED" "${SERVER_LOG[$f1]}"; then pass "follower $f1 installed a snapshot"
else fail "follower $f1 did not log 'installed snapshot'"; grep -E "snapshot" "${SERVER_LOG[$f1]}" "${SERVER_LOG[$leader]}" | tail -n 10 | sed 's/^/    /' >&2; fi
expect_eq "follower $f1 holds every snap/a key" 0 "$(check_keys "$f1" snap/a/ 200)"
expect_eq "follower $f1 holds every snap/b key" 0 "$(check_keys "$f1" snap/b/ 120)"
expect_eq "follower $f1 holds every pre key" 0 "$(check_keys "$f1" pre/ 20)"
expect_eq "follower $f1 holds the user added while it was down" "User: snapuser Roles: snaprole" \
    "$(nctl "$f1" user get snapuser 2>&1 | paste -sd ' ')"
# After the snapshot it follows the log again, and a lease revoked now takes its keys there too.
nctl "$leader" lease revoke "$lease" >/dev/null || fail "revoking the lease after the catch-up"
put_many "$leader" post/ 30 2 || fail "puts after the catch-up"
if wait_caught_up 10 "$f1" post/ 30; then pass "follower $f1 follows new writes"; else fail "follower $f1 does not follow new writes"; fi
expect_eq "the revoked lease's key is gone on follower $f1 too" 0 "$(count_keys "$f1" snaplease/ serializable)"
# Same revision everywhere.
sleep 0.3
revs=""
for n in "${nodes[@]}"; do
    revs+="$(nctl "$n" get post/ --prefix --consistency=s -w fields 2>/dev/null | awk -F' : ' '/^"Revision"/{print $2}') "
done
set -- $revs
if [[ $# == 3 && $1 == "$2" && $2 == "$3" ]]; then pass "same revision everywhere ($1)"; else fail "revisions differ: $revs"; fi
log "stopping $f1 again, 200 writes, then restarting $leader and $f2"
node_stop "$f1"
put_many "$leader" again/ 200 4 || fail "puts while $f1 is down again"
sleep 1  # the last snapshot is recorded and the log compacted past $f1
node_stop "$leader"
node_stop "$f2"
node_restart "$leader"
node_restart "$f2"
wait_one_leader 20 "$leader" "$f2" >/dev/null || fail "no leader after restarting $leader and $f2"
node_restart "$f1"
if wait_caught_up 30 "$f1" again/ 200; then pass "follower $f1 caught up from restarted members (200 keys)"
else fail "follower $f1 did not catch up from restarted members: $(count_keys "$f1" again/ serializable) of 200 keys"; fi
expect_eq "follower $f1 holds every again/ key" 0 "$(check_keys "$f1" again/ 200)"

# (g) --experimental-snapshot-catchup-entries 1000 on every member: the log behind each snapshot
# keeps enough for a follower 200 writes behind, which then catches up from the log.
log "--experimental-snapshot-catchup-entries 1000: stopping $f1, 200 writes, restarting it"
for n in "${nodes[@]}"; do
    node_stop "$n"
    NODE_ARGS[$n]+=$(printf ' %q' --experimental-snapshot-catchup-entries 1000)
done
for n in "$leader" "$f2"; do node_restart "$n"; done
wait_one_leader 20 "$leader" "$f2" >/dev/null || fail "no leader after restarting with the catch-up flag"
installed=$(grep -cE "$LOG_SNAPSHOT_INSTALLED" "${SERVER_LOG[$f1]}")
put_many "$leader" late/ 200 4 || fail "puts while $f1 is down with the catch-up flag"
sleep 1  # snapshots are recorded every 50 entries
node_restart "$f1"
if wait_caught_up 30 "$f1" late/ 200; then pass "follower $f1 caught up (200 keys)"
else fail "follower $f1 did not catch up: $(count_keys "$f1" late/ serializable) of 200 keys"; fi
expect_eq "follower $f1 caught up from the log, not a snapshot" "$installed" "$(grep -cE "$LOG_SNAPSHOT_INSTALLED" "${SERVER_LOG[$f1]}")"
summary snapshot
