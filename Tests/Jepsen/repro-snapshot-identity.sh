#!/usr/bin/env bash
# Tests/Jepsen/repro-snapshot-identity.sh: reproduction of BUGS.md #2 (a member that caught
# up by snapshot restarts with the snapshot sender's member ID).
# With --snapshot-count 20: a follower F is killed, the leader L writes 60 keys (its log is
# compacted past F), F restarts and catches up by snapshot, then F is killed and restarted
# again. F must still be F: its log's "restarting member" line and its endpoint status must
# carry F's own member ID, and it must serve the writes made meanwhile.
# Prints "repro-snapshot-identity: N passed, N failed". Bounded: about 40 s.
set -uo pipefail
. "$(dirname "$0")/cluster.sh"
JC_EXTRA_FLAGS=(--snapshot-count 20)
jc_init repro-snapshot-identity
jc_start
L=$(jc_wait_leader 10) || die "no leader"
F=$(((L % JC_N) + 1))
st=$(jc_status "$F") || die "no status from n$F"
fid=${st%% *}
log "leader n$L, follower n$F has member ID $fid"
jc_kill9 "$F"
for i in $(seq 1 60); do jc_ctl "$L" "${FAST[@]}" put "snap/$i" "v$i" >/dev/null 2>&1 || fail "put snap/$i"; done
jc_restart "$F"
jc_converged 20 || fail "n$F did not catch up after its first restart: $(paste -sd ';' "$JC_TMP/converge.txt")"
if grep -q 'installed snapshot' "$JC_TMP/n$F.log"; then pass "n$F caught up by snapshot"; else
    fail "n$F did not install a snapshot (the scenario needs one)"; fi
st=$(jc_status "$F")
[[ ${st%% *} == "$fid" ]] && pass "n$F still has member ID $fid after installing the snapshot" ||
    fail "n$F reports member ID ${st%% *} after installing the snapshot, want $fid"
jc_kill9 "$F"
jc_ctl "$L" "${FAST[@]}" put snap/after v-after >/dev/null 2>&1 || fail "put snap/after"
jc_restart "$F"
sleep 3
line=$(grep 'restarting member' "$JC_TMP/n$F.log" | tail -1)
if [[ $line == *"member-id=$fid "* ]]; then pass "n$F restarts as member $fid"; else
    fail "n$F restarts with another member ID (want $fid): $line"; fi
st=$(jc_status "$F") || st="none"
[[ ${st%% *} == "$fid" ]] && pass "endpoint status of n$F after the restart: member ID $fid" ||
    fail "endpoint status of n$F after the restart: member ID ${st%% *}, want $fid (status: $st)"
if jc_converged 15; then pass "all members converged after the restart"; else
    fail "members did not converge after the restart: $(paste -sd ';' "$JC_TMP/converge.txt")"; fi
got=$(CMD_TIMEOUT=6 jc_ctl "$F" "${FAST[@]}" get snap/after --consistency=s --print-value-only 2>&1)
[[ $got == v-after ]] && pass "n$F has the write made while it was down" || fail "n$F: snap/after = '$got', want v-after"
summary repro-snapshot-identity
