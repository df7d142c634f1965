#!/usr/bin/env bash
# Tests/Cluster/power-loss.sh: no acknowledged write is lost to a power cut, and a member either
# recovers from one or refuses to start, saying why (it never serves a forked log).
#
# A power cut, not a kill -9: every member runs under Tests/Faults/powerloss.c (LD_PRELOAD), which
# logs what each fsync/fdatasync made durable; after the kill -9, powerloss.py cuts every file back
# to it ("torn": keeping a random part of the unsynced tail, so the last record can end mid-way),
# as the kernel's page cache would have been lost with the power. WRITERS loops put unique keys
# through every member meanwhile; a put counts once etcdctl exits 0.
#  1. The leader loses power under load, its files torn; restarted, it catches up.
#  2. All three lose power at once under load (twice, torn and clean; QUICK=1: once, torn);
#     restarted, they elect a leader and take writes.
# After each: every acknowledged put readable through every member, one revision and one HashKV
# everywhere, and no member refused to start. The cuts must have taken bytes away (else the
# test proves nothing: it fails).
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cluster_init power-loss
nodes=(n1 n2 n3)

. "$CLUSTER_DIR/../Faults/faults.sh"
build_fault_libraries "$COMPAT_TMP" || die "cannot build the fault libraries"
for n in "${nodes[@]}"; do
    NODE_ENV[$n]="LD_PRELOAD=$COMPAT_TMP/powerloss.so POWERLOSS_LOG=$COMPAT_TMP/$n.synclog POWERLOSS_DIR=$COMPAT_TMP/$n.data/"
done
cluster_start "${nodes[@]}"
wait_one_leader 10 "${nodes[@]}" >/dev/null || die "no single leader"
EPS=$(running_eps)
dropped_total=0
seed=${SEED:-$RANDOM}
log "seed $seed (SEED=$seed reproduces the cuts)"

# power_cut MODE NAME...: kill -9 the members at once, then cut their files back.
power_cut() {
    local mode=$1 n out pids=(); shift
    for n in "$@"; do
        pids+=("${SERVER_PID[$n]}")
        echo "=== $(date -u +%T.%N) power cut ($mode)" >>"${SERVER_LOG[$n]}"
    done
    kill -KILL "${pids[@]}" 2>/dev/null
    for n in "$@"; do
        server_kill9 "$n"
        seed=$((seed + 1))
        out=$(power_cut_files "$COMPAT_TMP/$n.synclog" "$mode" "$seed") || die "powerloss.py failed for $n"
        log "$n: $out"
        echo "=== $out" >>"${SERVER_LOG[$n]}"
        dropped_total=$((dropped_total + $(sed -E 's/.*wal_bytes=([0-9]+).*/\1/' <<<"$out")))
    done
}

# recovered LABEL: every member up (none refused to start), one HashKV.
recovered() {
    local label=$1 n
    wait_healthy 30 "${nodes[@]}" || fail "$label: cluster not healthy after the restart"
    for n in "${nodes[@]}"; do
        node_running "$n" && pass "$label: $n runs" ||
            fail "$label: $n stopped: $(grep -v '^===' "${SERVER_LOG[$n]}" | tail -n 2 | tr '\n' ' ')"
    done
    wait_one_leader 10 "${nodes[@]}" >/dev/null || fail "$label: no single leader"
}


# 1. The leader alone.
start_writers 1
sleep 2
leader=$(wait_one_leader 5 "${nodes[@]}") || die "no leader"
a0=$(acks_of 1)
log "phase 1: power cut of leader $leader ($a0 acks so far)"
power_cut torn "$leader"
sleep 1.5
node_restart "$leader"
recovered "leader's power cut"
sleep 1.5
stop_writers 1
(($(acks_of 1) > a0)) && pass "phase 1: writes acknowledged after the leader's power cut" || fail "phase 1: none after the cut"
verify "leader's power cut" 1
same_hashkv "leader's power cut"

# 2. All three at once.
phase=2
modes=(torn clean)
[[ ${QUICK:-0} == 1 ]] && modes=(torn)
for mode in "${modes[@]}"; do
    start_writers "$phase"
    sleep 2
    a0=$(acks_of "$phase")
    log "phase $phase: power cut ($mode) of all three ($a0 acks so far)"
    power_cut "$mode" "${nodes[@]}"
    sleep 1
    for n in "${nodes[@]}"; do node_restart "$n"; done
    recovered "power cut ($mode) of all three"
    sleep 1.5
    stop_writers "$phase"
    (($(acks_of "$phase") > a0)) && pass "phase $phase: writes acknowledged after the restart" || fail "phase $phase: none after the restart"
    verify "power cut ($mode) of all three" $(seq 1 "$phase")
    same_hashkv "power cut ($mode) of all three"
    phase=$((phase + 1))
done

((dropped_total > 0)) && pass "the power cuts took away $dropped_total unsynced bytes of write-ahead log" ||
    fail "the power cuts took nothing from the write-ahead logs (powerloss.so not loaded, or nothing was ever unsynced)"
summary power-loss
