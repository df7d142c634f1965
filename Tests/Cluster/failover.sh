#!/usr/bin/env bash
# Tests/Cluster/failover.sh: (c) kill -9 of the leader: a new leader is elected among the
# survivors and writes resume within 3 election timeouts (measured from the kill to the
# first acknowledged put, asserted <= 3 x --election-timeout); the old leader restarts
# and rejoins as a follower. (d) a kill -9'd follower restarts and catches up from the
# log (no snapshot involved: default --snapshot-count) and holds every key.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cluster_init failover
nodes=(n1 n2 n3)
cluster_start "${nodes[@]}"
leader=$(wait_one_leader 10 "${nodes[@]}") || die "no single leader"
put_many "$leader" before/ 20 2 || fail "puts before the failover"

# (c) kill the leader; write through a survivor until a put is acknowledged.
read -r s1 s2 <<<"$(others "$leader" "${nodes[@]}")"
log "killing leader $leader (survivors $s1 $s2)"
t0=$(now_ms)
node_kill9 "$leader"
ok=0
while (($(now_ms) - t0 < 10000)); do
    if CMD_TIMEOUT=3 nctl "$s1" --dial-timeout=1s --command-timeout=1s put after/first x >/dev/null 2>&1; then
        ok=1; break
    fi
    sleep 0.05
done
t1=$(now_ms)
resume=$((t1 - t0))
limit=$((3 * ET_MS))
if ((ok)); then
    log "writes resumed ${resume} ms after kill -9 of the leader"
    if ((resume <= limit)); then pass "writes resume within 3 election timeouts (${resume} ms <= ${limit} ms)"
    else fail "writes resumed after ${resume} ms > ${limit} ms"; fi
else
    fail "no write acknowledged within 10 s of killing the leader"
fi
if newl=$(wait_one_leader 5 "$s1" "$s2"); then pass "new leader $newl among survivors"; else fail "no single new leader among $s1 $s2"; fi
put_many "$s2" during/ 30 2 || fail "puts with one member down"
for n in "$s1" "$s2"; do expect_eq "$n has the writes" 30 "$(count_keys "$n" during/)"; done

# The old leader restarts and catches up as a follower.
node_restart "$leader"
if wait_caught_up 20 "$leader" during/ 30; then pass "old leader $leader caught up"; else fail "old leader $leader did not catch up"; fi
if is_leader "$leader"; then fail "old leader $leader claims leadership after restart"; else pass "old leader rejoined as follower"; fi
expect_eq "single leader after rejoin" 1 "$(leaders "${nodes[@]}" | wc -w)"

# (d) kill -9 a follower, write, restart it: it catches up from the log.
leader=$(wait_one_leader 10 "${nodes[@]}") || die "no single leader"
read -r f1 f2 <<<"$(others "$leader" "${nodes[@]}")"
log "killing follower $f1"
node_kill9 "$f1"
put_many "$leader" follower/ 100 4 || fail "puts while follower $f1 is down"
nctl "$f2" put follower/last done >/dev/null 2>&1 || fail "put via the other follower $f2"
node_restart "$f1"
if wait_caught_up 20 "$f1" follower/ 101; then pass "follower $f1 caught up (101 keys)"; else fail "follower $f1 did not catch up: $(count_keys "$f1" follower/ serializable) keys"; fi
expect_eq "follower $f1 holds every key" 0 "$(check_keys "$f1" follower/ 100)"
expect_eq "follower $f1 sees the last write" done "$(nctl "$f1" get follower/last --print-value-only 2>&1)"
if grep -qE "$LOG_SNAPSHOT_INSTALLED" "${SERVER_LOG[$f1]}"; then fail "follower $f1 needed a snapshot (expected log catch-up)"; else pass "caught up from the log, no snapshot"; fi
wait_healthy 10 "${nodes[@]}" && pass "all healthy at the end" || fail "not all healthy at the end"
summary failover
