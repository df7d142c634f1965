#!/usr/bin/env bash
# Tests/Cluster/corrupt.sh: etcd's corruption checks, --experimental-initial-corrupt-check and
# --experimental-corrupt-check-time (1 s here), as etcd does them.
#   - three members started with both flags each run the initial check and serve;
#   - a member restarted with intact data passes the check again;
#   - one record of a stopped member's history is deleted straight from its RocksDB (Debian's ldb,
#     the damage a bad disk does); restarted with the flag, it refuses to start and says so
#     ("found data inconsistency with peers"), the other two keep serving;
#   - restarted without the initial check it serves, and its HashKV differs from the others'
#     (the damage is real; the refusal was the check's);
#   - the leader's periodic check then raises the CORRUPT alarm for it: alarm list names it, a
#     put is refused with etcd's "etcdserver: corrupt cluster", a get still answers; with the
#     member stopped and the alarm disarmed, puts go through again.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cluster_init corrupt
command -v ldb >/dev/null || die "ldb not found (apt-get install rocksdb-tools)"

EXTRA_FLAGS=(--experimental-initial-corrupt-check --experimental-corrupt-check-time 1s)
cluster_start n1 n2 n3
for n in n1 n2 n3; do
    for ((i = 0; i < 50; i++)); do grep -q 'initial corruption check' "${SERVER_LOG[$n]}" && break; sleep 0.1; done
    [[ $(grep -c 'starting initial corruption check' "${SERVER_LOG[$n]}") == 1 ]] && pass "$n ran the check" || fail "$n did not run the check"
done

revision=""
for i in $(seq 1 20); do
    out=$(nctl n1 put "key$i" "value$i" -w json 2>/dev/null) || fail "put key$i"
    [[ $i == 7 ]] && revision=$(sed -E 's/.*"revision":([0-9]+).*/\1/' <<<"$out")
done
[[ -n $revision ]] && pass "revision of key7: $revision" || fail "no revision for key7"
hashes() { cctl endpoint hashkv 2>/dev/null | awk -F', ' '{print $2}' | sort -u | wc -l; }
for ((i = 0; i < 50; i++)); do [[ $(hashes) == 1 ]] && break; sleep 0.2; done
expect_eq "the members' hashes agree" 1 "$(hashes)"

node_stop n3
node_restart n3
if wait_healthy "$START_TIMEOUT" n3; then pass "n3 restarts with intact data"; else fail "n3 did not restart with intact data"; fi
for ((i = 0; i < 50; i++)); do [[ $(grep -c 'initial corruption checking passed' "${SERVER_LOG[n3]}") -ge 2 ]] && break; sleep 0.1; done
[[ $(grep -c 'initial corruption checking passed' "${SERVER_LOG[n3]}") -ge 2 ]] && pass "intact data passes the check" ||
    fail "intact data did not pass the check"

node_stop n3
record=$(printf '0x%016x%016x' "$revision" 0)
ldb --db="${SERVER_DATA[n3]}/member/db" --column_family=kv delete --hex "$record" >/dev/null 2>&1 &&
    pass "n3's record $record deleted" || fail "ldb could not delete n3's record $record"
node_restart n3
pid=${SERVER_PID[n3]}
for ((i = 0; i < 10 * START_TIMEOUT; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$pid" 2>/dev/null; then
    fail "n3 with damaged data is still running"
    server_kill9 n3
else
    wait "$pid"; rc=$?
    unset "SERVER_PID[n3]"
    expect_eq "n3 with damaged data stops with an error" 1 "$((rc != 0))"
fi
[[ $(grep -c 'found data inconsistency with peers' "${SERVER_LOG[n3]}") -ge 1 ]] && pass "n3 says why" || fail "n3 does not say why"
if wait_healthy 10 n1 n2; then pass "n1 and n2 keep serving"; else fail "n1 and n2 stopped serving"; fi

NODE_ARGS[n3]=${NODE_ARGS[n3]//--experimental-initial-corrupt-check/}
node_restart n3
if wait_healthy "$START_TIMEOUT" n3; then pass "n3 serves without the check"; else fail "n3 did not serve without the check"; fi
expect_eq "n3's hash differs from the others'" 2 "$(hashes)"

n3_id=$(python3 -c "print(int('$(member_id n3)', 16))")
for ((i = 0; i < 100; i++)); do nctl n1 alarm list 2>/dev/null | grep -q CORRUPT && break; sleep 0.1; done
expect_eq "the periodic check raised CORRUPT for n3" "memberID:$n3_id alarm:CORRUPT" "$(nctl n1 alarm list 2>&1 | sed "s/ *$//")"
expect_eq "a put is refused" "Error: etcdserver: corrupt cluster" "$(nctl n1 put after v 2>&1 | grep -v '^{"level"')"
expect_eq "a get still answers" "value1" "$(nctl n2 get key1 --print-value-only 2>&1)"
node_stop n3
nctl n1 alarm disarm >/dev/null 2>&1 && pass "alarm disarm" || fail "alarm disarm"
expect_eq "puts go through once it is disarmed" "OK" "$(nctl n1 put after v 2>&1)"
summary corrupt
