#!/usr/bin/env bash
# Tests/Cluster/formation.sh: (a) three members form a cluster and elect exactly one
# leader; (b) writes through any member are readable linearizably through every member.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cluster_init formation
nodes=(n1 n2 n3)
cluster_start "${nodes[@]}"

# (a) exactly one leader, and every member agrees on it and on the member list.
if leader=$(wait_one_leader 10 "${nodes[@]}"); then pass "one leader ($leader)"; else fail "exactly one leader: got '$(leaders "${nodes[@]}")'"; fi
lid=$(member_id "$leader")
for n in "${nodes[@]}"; do
    got=$(CMD_TIMEOUT=5 nctl "$n" endpoint status -w fields 2>/dev/null | awk -F' : ' '/^"Leader"/{print $2}')
    expect_eq "$n sees leader $leader" "$lid" "$(printf '%x' "${got:-0}")"
done
ml=$(cctl member list 2>/dev/null | awk -F', ' '{print $3, $2}' | sort)
expect_eq "member list" "$(printf 'n1 started\nn2 started\nn3 started')" "$ml"
if cctl endpoint health --cluster >"$COMPAT_TMP/health" 2>&1 && [[ $(grep -c 'is healthy' "$COMPAT_TMP/health") == 3 ]]; then
    pass "endpoint health --cluster"
else
    fail "endpoint health --cluster: $(cat "$COMPAT_TMP/health")"
fi

# (b) write through each member, read through every member (linearizable get).
for w in "${nodes[@]}"; do
    for i in 1 2 3; do
        nctl "$w" put "via/$w/$i" "v-$w-$i" >/dev/null 2>&1 || fail "put via $w #$i"
    done
    for r in "${nodes[@]}"; do
        got=$(nctl "$r" get "via/$w/" --prefix --print-value-only 2>&1 | paste -sd ' ')
        expect_eq "written via $w, read via $r" "v-$w-1 v-$w-2 v-$w-3" "$got"
    done
done
# A read right after an acked write through another member sees it (read-your-writes across members).
for i in $(seq 1 10); do
    w=${nodes[$((i % 3))]} r=${nodes[$(((i + 1) % 3))]}
    nctl "$w" put seq "$i" >/dev/null 2>&1
    got=$(nctl "$r" get seq --print-value-only 2>&1)
    [[ $got == "$i" ]] || { fail "linearizable read via $r after put $i via $w: got '$got'"; continue; }
    pass "seq $i"
done
# Same revision and same data everywhere (serializable reads, after a linearizable barrier).
nctl n1 get health >/dev/null 2>&1
sleep 0.5
revs=""
for n in "${nodes[@]}"; do
    revs+="$(nctl "$n" get via/ --prefix --consistency=s -w fields 2>/dev/null | awk -F' : ' '/^"Revision"/{print $2}') "
done
set -- $revs
if [[ $# == 3 && $1 == "$2" && $2 == "$3" ]]; then pass "same revision everywhere ($1)"; else fail "revisions differ: $revs"; fi
# Leases through followers: only the leader tracks deadlines, so keep-alives and TTL queries
# sent to a follower are forwarded (twice each, over the follower's cached peer connection).
leader=$(wait_one_leader 10 "${nodes[@]}")
read -r f1 f2 <<<"$(others "$leader" "${nodes[@]}")"
lease=$(nctl "$f1" lease grant 600 | awk '{print $2}')
if [[ -n $lease ]]; then pass "lease grant through follower $f1 ($lease)"; else fail "lease grant through $f1"; fi
nctl "$f1" put leased/k v --lease="$lease" >/dev/null || fail "put with the lease"
for n in "$f1" "$f2" "$f2"; do
    out=$(nctl "$n" lease keep-alive --once "$lease" 2>&1)
    expect_eq "keep-alive --once through $n" "lease $lease keepalived with TTL(600)" "$out"
done
out=$(nctl "$f2" lease timetolive "$lease" --keys 2>&1)
if [[ $out =~ ^lease\ $lease\ granted\ with\ TTL\(600s\),\ remaining\(([0-9]+)s\),\ attached\ keys\(\[leased/k\]\)$ ]] && ((BASH_REMATCH[1] >= 590)); then
    pass "timetolive --keys through $f2: $out"
else
    fail "timetolive through $f2: $out"
fi

# Each client connection is logged with its certificate's CN (the apiserver client's is
# "kube-apiserver-etcd-client" in this PKI).
if grep -q 'cn=kube-apiserver-etcd-client .*client connected' "${SERVER_LOG[n1]}"; then pass "client identity (certificate CN) logged"
else fail "no 'client connected' line with the client's CN in n1's log"; fi
summary formation
