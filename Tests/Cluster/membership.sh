#!/usr/bin/env bash
# Tests/Cluster/membership.sh: (f) membership changes while a client keeps writing.
#   1. member add n4 --learner; start n4 with --initial-cluster-state existing and an
#      --initial-cluster of all four; wait until it holds every key; member promote n4.
#   2. member remove n1 (a running voter): the cluster keeps serving with n2 n3 n4.
#   3. replace a member: kill -9 n2 (its host "died"), member remove n2, member add n5
#      (a voter), start n5 on a fresh data dir: it catches up.
# Throughout, a background writer puts keys through n3 (recording acks only on exit 0);
# every step must leave the cluster serving, and at the end every acknowledged put is
# readable on every remaining member.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cluster_init membership
cluster_start n1 n2 n3
wait_one_leader 10 n1 n2 n3 >/dev/null || die "no single leader"
put_many n1 base/ 50 2 || fail "initial puts"
reconfig_settle

# member_field NAME FIELD#: from etcdctl's simple member list
#   (ID, status, name, peer URLs, client URLs, is learner), found by NAME's peer URL
#   (an unstarted member has no name yet).
member_field() { cctl "${FAST[@]}" member list 2>/dev/null | awk -F', ' -v u="$(peer_url "$1")" -v f="$2" '$4 == u {print $f}'; }
member_names() { cctl "${FAST[@]}" member list 2>/dev/null | awk -F', ' '{print $3 ($6 == "true" ? "(learner)" : "")}' | sort | paste -sd ' '; }
# serving: a linearizable put and get through every running member.
serving() {
    local n ok=1
    for n in $(printf '%s\n' "${!SERVER_PID[@]}" | sort); do
        nctl "$n" "${FAST[@]}" put "serving/$n" "$1" >/dev/null 2>&1 || { log "put via $n failed at: $1"; ok=0; }
    done
    ((ok)) && pass "serving: $1" || fail "not serving: $1"
}

# Background writer through n3 (never removed).
writer() {
    local i=0
    while [[ ! -e $COMPAT_TMP/stop ]]; do
        i=$((i + 1))
        if CMD_TIMEOUT=5 nctl n3 "${FAST[@]}" put "bg/$i" "v$i" >/dev/null 2>&1; then
            echo "bg/$i v$i" >>"$COMPAT_TMP/acks"
        else
            echo "bg/$i" >>"$COMPAT_TMP/nacks"
        fi
        sleep 0.02
    done
}
: >"$COMPAT_TMP/acks"; : >"$COMPAT_TMP/nacks"
writer &
WRITER_PID=$!
COMPAT_CLEANUP_HOOKS+=('touch "$COMPAT_TMP/stop"; wait $WRITER_PID 2>/dev/null')

# 1. learner n4.
node_ports n4
ic4=$(initial_cluster n1 n2 n3 n4)
if out=$(cctl member add n4 --learner --peer-urls="$(peer_url n4)" 2>&1); then
    pass "member add n4 --learner"
else
    fail "member add n4 --learner: $out"
fi
expect_eq "n4 listed as learner" true "$(member_field n4 6)"
node_start n4 existing "$ic4"
if wait_caught_up 30 n4 base/ 50; then pass "learner n4 caught up"; else fail "learner n4 did not catch up: $(count_keys n4 base/ serializable) keys"; fi
expect_eq "learner n4 holds every key" 0 "$(check_keys n4 base/ 50)"
id4=$(member_field n4 1)
promoted=0
for ((i = 0; i < 30; i++)); do
    if out=$(cctl member promote "$id4" 2>&1); then promoted=1; break; fi
    sleep 0.5
done
if ((promoted)); then pass "member promote n4"; else fail "member promote n4: $out"; fi
expect_eq "n4 is a voter" false "$(member_field n4 6)"
serving "after promoting n4"

# 2. remove n1. Removing a live voter needs the member asked to have been connected to the
# voters for 5 s (strict reconfiguration check), and n4 started only seconds ago.
reconfig_settle
id1=$(member_field n1 1)
if out=$(cctl member remove "$id1" 2>&1); then pass "member remove n1"; else fail "member remove n1: $out"; fi
expect_removed_exit n1
expect_eq "members after removing n1" "n2 n3 n4" "$(member_names)"
wait_one_leader 10 n2 n3 n4 >/dev/null && pass "one leader among n2 n3 n4" || fail "no single leader among n2 n3 n4"
serving "after removing n1"

# 3. replace n2 (dead) with n5 on a fresh data dir.
id2=$(member_field n2 1)
log "leader before killing n2: $(leaders n2 n3 n4)"
node_kill9 n2
# Removing a member while an election is under way may fail (as in etcd); wait for a leader.
wait_one_leader 10 n3 n4 >/dev/null || fail "no leader among n3 n4 after killing n2"
if out=$(cctl member remove "$id2" 2>&1); then pass "member remove of dead n2"; else fail "member remove n2: $out"; fi
node_ports n5
ic5=$(initial_cluster n3 n4 n5)
# Adding a voter needs every voter connected for 5 s, and n4 started only seconds ago.
reconfig_settle
if out=$(cctl member add n5 --peer-urls="$(peer_url n5)" 2>&1); then pass "member add n5"; else fail "member add n5: $out"; fi
node_start n5 existing "$ic5"
if wait_caught_up 30 n5 base/ 50; then pass "replacement n5 caught up"; else fail "replacement n5 did not catch up"; fi
expect_eq "members after replacing n2" "n3 n4 n5" "$(member_names)"
expect_eq "all started" "" "$(cctl member list 2>/dev/null | grep -v ', started, ')"
wait_one_leader 10 n3 n4 n5 >/dev/null && pass "one leader among n3 n4 n5" || fail "no single leader among n3 n4 n5"
serving "after replacing n2 with n5"
if cctl endpoint health --cluster >"$COMPAT_TMP/health" 2>&1 && [[ $(grep -c 'is healthy' "$COMPAT_TMP/health") == 3 ]]; then
    pass "endpoint health --cluster (3 members)"
else
    fail "endpoint health --cluster: $(cat "$COMPAT_TMP/health")"
fi

# Stop the writer; check its acks everywhere.
sleep 1
touch "$COMPAT_TMP/stop"; wait "$WRITER_PID" 2>/dev/null
acked=$(wc -l <"$COMPAT_TMP/acks") nacked=$(wc -l <"$COMPAT_TMP/nacks")
log "background writer: $acked acknowledged, $nacked failed"
((acked > 0)) && pass "background writer made progress ($acked acks)" || fail "background writer got no acks"
# A few failures are allowed around leader changes; more than a quarter means the cluster did not keep serving.
if ((nacked * 4 <= acked)); then pass "writes kept succeeding ($nacked failures)"; else fail "too many failed background writes: $nacked vs $acked acks"; fi
sort "$COMPAT_TMP/acks" >"$COMPAT_TMP/acks.s"
for n in n3 n4 n5; do
    nctl "$n" get bg/ --prefix 2>/dev/null | paste -d ' ' - - | sort >"$COMPAT_TMP/bg.$n"
    expect_eq "every acknowledged put readable on $n" 0 "$(comm -23 "$COMPAT_TMP/acks.s" "$COMPAT_TMP/bg.$n" | wc -l)"
done
summary membership
