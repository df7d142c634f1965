#!/usr/bin/env bash
# Tests/Cluster/reconfig.sh: membership changes that etcd refuses are refused with etcd's
# errors, and the cluster keeps serving. Expected messages are etcd 3.4's (checked by
# running this script with KVD_BIN=/usr/bin/etcd):
#   - promote a learner that has not caught up (never started):
#       "etcdserver: can only promote a learner member which is in sync with leader"
#   - a second learner: "etcdserver: too many learner members in cluster"
#   - add with a peer URL already in use: "etcdserver: Peer URLs already exists"
#   - remove an unknown ID: "etcdserver: member not found"
#   - member add/promote/remove sent to a follower succeed (etcd forwards them to the leader),
#     and the removed member stops by itself, without crashing
#   - with one of three members down (strict reconfiguration check): removing a live member
#     or adding a voter would leave fewer started members than a quorum:
#       "etcdserver: unhealthy cluster" (and nothing changes).
#   - with --strict-reconfig-check=false (etcd's e2e harness passes it) a new cluster removes a
#     member right after it started, before the members have been connected for 5 s, which the
#     strict check refuses as "unhealthy cluster".
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cluster_init reconfig
nodes=(n1 n2 n3)
cluster_start "${nodes[@]}"
wait_one_leader 10 "${nodes[@]}" >/dev/null || die "no single leader"

member_field() { cctl "${FAST[@]}" member list 2>/dev/null | awk -F', ' -v u="$(peer_url "$1")" -v f="$2" '$4 == u {print $f}'; }
member_count() { cctl "${FAST[@]}" member list 2>/dev/null | grep -c .; }
# refused DESC EXPECTED_MESSAGE ARGS...: the etcdctl command, sent to the current leader
# (so that the outcome does not depend on forwarding), fails with that message.
REFUSED_OUT=""
refused() {
    local desc=$1 want=$2 out rc=0 l; shift 2
    l=$(leaders $(printf '%s\n' "${!SERVER_PID[@]}" | sort))
    out=$(nctl "${l%% *}" "$@" 2>&1) || rc=$?
    REFUSED_OUT=$out
    if ((rc != 0)) && grep -qF "Error: $want" <<<"$out"; then pass "$desc"
    else fail "$desc: want 'Error: $want', got (exit $rc): $(grep -v '^{"level"' <<<"$out" | head -n 3)"; fi
}
serving() {
    local n ok=1
    for n in "$@"; do nctl "$n" "${FAST[@]}" put "serving/$n" "$1" >/dev/null 2>&1 || ok=0; done
    ((ok)) && pass "serving through $*" || fail "not serving through $*"
}

# etcd refuses reconfiguration until the leader has been connected to a quorum for 5 s.
reconfig_settle
leader=$(wait_one_leader 10 "${nodes[@]}") || die "no single leader"
read -r follower _ <<<"$(others "$leader" "${nodes[@]}")"
# lctl ARGS...: etcdctl through the leader only (refusals must not depend on forwarding).
lctl() { nctl "$leader" "$@"; }
node_ports n4; node_ports n5
lctl member add n4 --learner --peer-urls="$(peer_url n4)" >/dev/null 2>&1 || fail "member add n4 --learner"
id4=$(member_field n4 1)
refused "promote a learner that never started" \
    "etcdserver: can only promote a learner member which is in sync with leader" member promote "$id4"
refused "a second learner" "etcdserver: too many learner members in cluster" \
    member add n5 --learner --peer-urls="$(peer_url n5)"
refused "add with a peer URL in use" "etcdserver: Peer URLs already exists" \
    member add n5 --peer-urls="$(peer_url n2)"
refused "remove an unknown member" "etcdserver: member not found" member remove 1234abcd

# Membership requests sent to a follower are served (etcd forwards them to the leader).
node_start n4 existing "$(initial_cluster n1 n2 n3 n4)"
sleep 2
ok=0
for ((i = 0; i < 10; i++)); do
    if out=$(nctl "$follower" member promote "$id4" 2>&1); then ok=1; break; fi
    grep -q "in sync with leader" <<<"$out" || break   # only "not caught up yet" is worth a retry
    sleep 0.5
done
if ((ok)); then pass "member promote through follower $follower"
else fail "member promote through follower $follower: $(grep -v '^{"level"' <<<"$out" | head -n 2)"; lctl member promote "$id4" >/dev/null 2>&1; fi
if out=$(nctl "$follower" member remove "$id4" 2>&1); then pass "member remove through follower $follower"
else fail "member remove through follower $follower: $(grep -v '^{"level"' <<<"$out" | head -n 2)"; lctl member remove "$id4" >/dev/null 2>&1; fi
expect_removed_exit n4
if out=$(nctl "$follower" member add n5 --learner --peer-urls="$(peer_url n5)" 2>&1); then pass "member add through follower $follower"
else fail "member add through follower $follower: $(grep -v '^{"level"' <<<"$out" | head -n 2)"; fi
id5=$(member_field n5 1)
[[ -z $id5 ]] || lctl member remove "$id5" >/dev/null 2>&1 || fail "member remove learner n5"
expect_eq "three members" 3 "$(member_count)"

# One member down: changes that would leave no started quorum are refused.
node_kill9 n3
wait_one_leader 10 n1 n2 >/dev/null || fail "no leader among n1 n2"
sleep 1
id2=$(member_field n2 1)
refused "with n3 down, remove live n2" "etcdserver: unhealthy cluster" member remove "$id2"
removed_n2=$REFUSED_OUT
refused "with n3 down, add a voter" "etcdserver: unhealthy cluster" member add n5 --peer-urls="$(peer_url n5)"
expect_eq "still three members" 3 "$(member_count)"
# If n2 was removed after all, it must at least stop cleanly.
if grep -q "removed from cluster" <<<"$removed_n2"; then expect_removed_exit n2; fi
serving n1 n2
node_restart n3
if wait_healthy 20 $(printf '%s\n' "${!SERVER_PID[@]}" | sort); then pass "healthy after n3 restarts"; else fail "not healthy after n3 restarts: $(cctl member list 2>&1 | grep -v '^{"level"')"; fi

for n in s1 s2 s3; do node_ports "$n"; done
ic=$(initial_cluster s1 s2 s3)
for n in s1 s2 s3; do node_start "$n" new "$ic" --strict-reconfig-check=false; done
if wait_healthy 20 s1 s2 s3; then
    sid=$(nctl s1 member list | awk -F', ' -v u="$(peer_url s3)" '$4 == u {print $1}')
    if out=$(nctl s1 member remove "$sid" 2>&1); then pass "--strict-reconfig-check=false: remove right after the start"
    else fail "--strict-reconfig-check=false: remove right after the start: $(grep -v '^{"level"' <<<"$out" | head -n 2)"; fi
    expect_removed_exit s3
else
    fail "cluster with --strict-reconfig-check=false not healthy"
fi
summary reconfig
