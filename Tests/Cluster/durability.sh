#!/usr/bin/env bash
# Tests/Cluster/durability.sh: (h) no acknowledged write is lost across kill -9.
# WRITERS (default 4) background loops put unique keys through all three endpoints
# (etcdctl fails over between them); a put is recorded as acknowledged only when
# etcdctl exits 0. Phase 1 (minority): kill -9 a follower, restart it; then kill -9 the
# leader, restart it. Phase 2 (all): kill -9 all three members at once mid-load, restart
# them. After each phase every acknowledged put must be readable (linearizably) through
# every member, and the members must agree on the revision.
# QUICK=1 skips phase 1.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cluster_init durability
nodes=(n1 n2 n3)
cluster_start "${nodes[@]}"
wait_one_leader 10 "${nodes[@]}" >/dev/null || die "no single leader"
EPS=$(running_eps)

if [[ ${QUICK:-0} != 1 ]]; then
    start_writers 1
    sleep 1.5
    leader=$(wait_one_leader 5 "${nodes[@]}") || fail "phase 1: no single leader"
    read -r f1 _ <<<"$(others "$leader" "${nodes[@]}")"
    a0=$(acks_of 1); log "phase 1: kill -9 follower $f1 ($a0 acks so far)"
    node_kill9 "$f1"
    sleep 1.5
    node_restart "$f1"
    wait_healthy 20 "${nodes[@]}" || fail "phase 1: cluster not healthy after restarting $f1"
    leader=$(wait_one_leader 5 "${nodes[@]}") || fail "phase 1: no single leader"
    a1=$(acks_of 1); log "phase 1: kill -9 leader $leader ($a1 acks so far)"
    ((a1 > a0)) && pass "phase 1: writes acknowledged with a follower down" || fail "phase 1: no writes acknowledged with a follower down"
    node_kill9 "$leader"
    sleep 2
    node_restart "$leader"
    wait_healthy 20 "${nodes[@]}" || fail "phase 1: cluster not healthy after restarting $leader"
    sleep 1
    stop_writers 1
    a2=$(acks_of 1)
    ((a2 > a1)) && pass "phase 1: writes acknowledged after killing the leader" || fail "phase 1: no writes acknowledged after killing the leader"
    verify "minority kill -9" 1
fi

start_writers 2
sleep 2
a0=$(acks_of 2)
pids=()
for n in "${nodes[@]}"; do pids+=("${SERVER_PID[$n]}"); done
log "phase 2: kill -9 of all three (pids ${pids[*]}) with $a0 acks so far"
for n in "${nodes[@]}"; do echo "=== $(date -u +%T.%N) kill -9 (all)" >>"${SERVER_LOG[$n]}"; done
kill -KILL "${pids[@]}" 2>/dev/null
for n in "${nodes[@]}"; do server_kill9 "$n"; done
sleep 1
for n in "${nodes[@]}"; do node_restart "$n"; done
wait_healthy 30 "${nodes[@]}" || fail "phase 2: cluster not healthy after restarting all three"
wait_one_leader 10 "${nodes[@]}" >/dev/null || fail "phase 2: no single leader after restart"
sleep 1.5
stop_writers 2
a1=$(acks_of 2)
((a1 > a0)) && pass "phase 2: writes acknowledged after the restart" || fail "phase 2: no writes acknowledged after the restart"
if [[ ${QUICK:-0} == 1 ]]; then verify "all kill -9" 2; else verify "all kill -9" 1 2; fi
summary durability
