#!/usr/bin/env bash
# Tests/Jepsen/repro-forward.sh: reproduction of BUGS.md #1 (a proposal or read index that
# is forwarded twice is dropped by the receiving member's peer transport).
# Puts and linearizable gets through the members; the leader is paused (SIGSTOP) long
# enough for a new election, then resumed (MODE=pause), or isolated from the other members
# and healed (MODE=isolate, the default: TCP retransmits the queued forwards after the heal);
# CYCLES times (default 4). HB_MS=50 ET_MS=500 makes it more likely. The resumed L, now a follower, forwards
# the requests F had queued at it to the new leader with their original sender (F), on
# L's own stream; the new leader drops them ("dropped a message whose sender does not
# match its stream") and F's clients time out although the cluster has a leader.
# etcd's raft keeps `from` on forwarded MsgProp/MsgReadIndex and its transport accepts
# them. Prints "repro-forward: N passed, N failed" (fails while the bug is present).
set -uo pipefail
. "$(dirname "$0")/cluster.sh"
jc_init repro-forward
jc_start
L=$(jc_wait_leader 10) || die "no leader"
F=$(((L % JC_N) + 1))
log "leader n$L, load through follower n$F"
stop=$JC_TMP/stop
for w in 1 2 3 4 5 6; do
    ( n=0; while [[ ! -e $stop ]]; do n=$((n + 1))
        t=$(((L + w) % JC_N + 1))   # both followers (and, once it is back, the old leader)
        CMD_TIMEOUT=12 jc_ctl "$t" --command-timeout=10s put "f/$w/$n" v >/dev/null 2>&1
        CMD_TIMEOUT=12 jc_ctl "$t" --command-timeout=10s get "f/$w/$n" >/dev/null 2>&1
      done ) &
    JC_BG_PIDS+=($!)
done
sleep 2
for ((c = 0; c < ${CYCLES:-4}; c++)); do
    l=$(jc_wait_leader 10) || l=$L
    if [[ ${MODE:-isolate} == pause ]]; then
        log "cycle $c: pausing leader n$l"
        jc_pause "$l"; sleep "${PAUSE_S:-5}"; jc_resume "$l"
    else
        log "cycle $c: isolating leader n$l"
        net_isolate "$l"; sleep "${PAUSE_S:-5}"; net_heal
    fi
    sleep 3
done
touch "$stop"
for p in "${JC_BG_PIDS[@]}"; do wait "$p" 2>/dev/null; done
JC_BG_PIDS=()
n=$(cat "$JC_TMP"/n*.log | grep -c 'does not match its stream')
if ((n == 0)); then
    pass "no forwarded message dropped"
else
    fail "$n forwarded messages dropped: $(grep -h 'does not match its stream' "$JC_TMP"/n*.log | head -2)"
fi
summary repro-forward
