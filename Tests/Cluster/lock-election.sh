#!/usr/bin/env bash
# Tests/Cluster/lock-election.sh: etcd's v3lock and v3election services, kvd beside etcd 3.4,
# called through the JSON gateway with curl over mutual TLS (the same services gRPC clients
# call). One member of each runs the same steps; each answer's status and body must match once
# IDs and the term are set aside:
#   - a lock is the key name/<lease hex>; a second holder waits until the first unlocks, and its
#     answer carries the header of the read that found the way clear;
#   - a lock without a lease gets a new one (its key is name/<that lease>);
#   - a campaign waits behind the leader; leader, proclaim (a new value; "election: not leader"
#     for a stale key), resign hands the election to the waiting candidate; observe streams the
#     leader, each proclaimed value and the next leader;
#   - etcd's errors: an unknown lease, no leader, a request without its leader key (gRPC Unknown,
#     HTTP 500, etcd's messages);
#   - over gRPC (lock-cancel.py): a Lock and a Campaign whose caller gives up waiting leave no key.
# Then kvctl beside etcdctl 3.4, against the kvd member: `lock` holds until SIGINT and hands the lock
# to a waiting holder (skipping one that gave up waiting), `lock NAME -- COMMAND` (ETCD_LOCK_KEY, the command's exit status), `elect`
# campaigns (one waits, SIGINT resigns), `elect -l` prints each leader; argument errors. The same
# output and exit codes, lease IDs aside.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cluster_init lock-election
[[ -x $ETCD_BIN ]] || die "etcd binary '$ETCD_BIN' not found (apt-get install etcd-server)"

# gw NAME PATH BODY [CURL ARGS...]: "<status> <body>" from NAME's gateway, IDs and term replaced.
gw() {
    local n=$1 path=$2 body=$3; shift 3
    curl -s -o - -w ' %{http_code}' --max-time 5 --cacert "$PKI/etcd/ca.crt" \
        --cert "$PKI/apiserver-etcd-client.crt" --key "$PKI/apiserver-etcd-client.key" -d "$body" "$@" \
        "${SERVER_EP[$n]}$path" 2>/dev/null |
        sed -E 's/"(cluster_id|member_id|raft_term)":"[0-9]+"/"\1":"N"/g'
}

b64() { printf '%s' "$1" | base64 -w0; }
LOCK=$(b64 mylock) ELECTION=$(b64 myelection)
KEY_A=$(b64 mylock/64) KEY_B=$(b64 mylock/c8) LEADER_A=$(b64 myelection/64)

declare -A GOT=()
run_sequence() {
    local s=$1 n=${1}1
    gw "$n" /v3/lease/grant '{"ID":"100","TTL":60}' >/dev/null
    gw "$n" /v3/lease/grant '{"ID":"200","TTL":60}' >/dev/null
    GOT[$s.lock_a]=$(gw "$n" /v3/lock/lock "{\"name\":\"$LOCK\",\"lease\":\"100\"}")
    gw "$n" /v3/lock/lock "{\"name\":\"$LOCK\",\"lease\":\"200\"}" --max-time 10 >"$COMPAT_TMP/lock_b.$s" &
    local waiter=$!
    sleep 1.5
    GOT[$s.lock_b_waits]=$(cat "$COMPAT_TMP/lock_b.$s")
    GOT[$s.unlock_a]=$(gw "$n" /v3/lock/unlock "{\"key\":\"$KEY_A\"}")
    wait "$waiter"
    GOT[$s.lock_b]=$(cat "$COMPAT_TMP/lock_b.$s")
    GOT[$s.lock_keys]=$(gw "$n" /v3/kv/range "{\"key\":\"$LOCK\",\"range_end\":\"$(b64 mylocl)\",\"keys_only\":true}")
    GOT[$s.unlock_b]=$(gw "$n" /v3/lock/unlock "{\"key\":\"$KEY_B\"}")
    GOT[$s.lock_no_lease]=$(gw "$n" /v3/lock/lock "{\"name\":\"$(b64 other)\"}" | sed -E 's/"key":"[^"]*"/"key":"K"/')
    GOT[$s.lock_unknown_lease]=$(gw "$n" /v3/lock/lock "{\"name\":\"$LOCK\",\"lease\":\"999\"}")

    GOT[$s.no_leader]=$(gw "$n" /v3/election/leader "{\"name\":\"$ELECTION\"}")
    gw "$n" /v3/election/observe "{\"name\":\"$ELECTION\"}" --max-time 7 >"$COMPAT_TMP/observe.$s" &
    local observer=$!
    sleep 0.5
    GOT[$s.campaign_a]=$(gw "$n" /v3/election/campaign "{\"name\":\"$ELECTION\",\"lease\":\"100\",\"value\":\"$(b64 one)\"}")
    gw "$n" /v3/election/campaign "{\"name\":\"$ELECTION\",\"lease\":\"200\",\"value\":\"$(b64 three)\"}" --max-time 10 \
        >"$COMPAT_TMP/campaign_b.$s" &
    local candidate=$!
    sleep 1
    GOT[$s.leader]=$(gw "$n" /v3/election/leader "{\"name\":\"$ELECTION\"}")
    local leader_a="{\"name\":\"$ELECTION\",\"key\":\"$LEADER_A\",\"rev\":\"$(leader_rev "${GOT[$s.campaign_a]}")\",\"lease\":\"100\"}"
    GOT[$s.proclaim]=$(gw "$n" /v3/election/proclaim "{\"leader\":$leader_a,\"value\":\"$(b64 two)\"}")
    GOT[$s.proclaim_stale]=$(gw "$n" /v3/election/proclaim \
        "{\"leader\":{\"name\":\"$ELECTION\",\"key\":\"$LEADER_A\",\"rev\":\"1\",\"lease\":\"100\"},\"value\":\"eA==\"}")
    GOT[$s.proclaim_no_key]=$(gw "$n" /v3/election/proclaim '{"value":"eA=="}')
    GOT[$s.candidate_waits]=$(cat "$COMPAT_TMP/campaign_b.$s")
    GOT[$s.resign]=$(gw "$n" /v3/election/resign "{\"leader\":$leader_a}")
    wait "$candidate"
    GOT[$s.campaign_b]=$(cat "$COMPAT_TMP/campaign_b.$s")
    GOT[$s.new_leader]=$(gw "$n" /v3/election/leader "{\"name\":\"$ELECTION\"}")
    wait "$observer"
    GOT[$s.observed]=$(cat "$COMPAT_TMP/observe.$s")
}

# tool_scenario TOOL TAG: lock and elect with TOOL against k1; outputs into GOT[tool.TAG.*].
tool_scenario() {
    local tool=$1 tag=$2 T=$COMPAT_TMP holder waiter observer first second rc1 rc2 rc3
    local connect=(--endpoints="${SERVER_EP[k1]}" $(tls_flags))
    # Commands that end by themselves; those signalled below run without a wrapper, so the signal is theirs.
    t() { timeout -k 2 30 "$tool" "${connect[@]}" "$@"; }
    "$tool" "${connect[@]}" lock "tl$tag" >"$T/hold.$tag" 2>&1 &
    holder=$!
    sleep 1
    "$tool" "${connect[@]}" lock "tl$tag" >"$T/wait.$tag" 2>&1 &
    waiter=$!
    sleep 1
    GOT[tool.$tag.waiting]=$(cat "$T/wait.$tag")
    kill -INT "$holder"; wait "$holder"; rc1=$?
    sleep 1
    kill -INT "$waiter"; wait "$waiter"; rc2=$?
    GOT[tool.$tag.lock]="$(tool_norm <"$T/hold.$tag") rc=$rc1 | $(tool_norm <"$T/wait.$tag") rc=$rc2"
    # A waiter that gives up (SIGINT) leaves no key behind: the holder's release reaches the next one.
    "$tool" "${connect[@]}" lock "th$tag" >"$T/h1.$tag" 2>&1 &
    local h1=$! h2 h3
    sleep 0.7
    "$tool" "${connect[@]}" lock "th$tag" >"$T/h2.$tag" 2>&1 &
    h2=$!
    sleep 0.3
    "$tool" "${connect[@]}" lock "th$tag" >"$T/h3.$tag" 2>&1 &
    h3=$!
    sleep 0.3
    kill -INT "$h2"; wait "$h2"
    kill -INT "$h1"; wait "$h1"
    sleep 1
    GOT[tool.$tag.handover]="$(tool_norm <"$T/h3.$tag") | $(tool_norm <"$T/h2.$tag")"
    kill -INT "$h3"; wait "$h3"
    GOT[tool.$tag.lock_exec]="$(t lock "tc$tag" -- sh -c 'echo "key $ETCD_LOCK_KEY rev ${ETCD_LOCK_REV:+set}"; exit 3' 2>&1 |
        tool_norm) rc=${PIPESTATUS[0]}"
    "$tool" "${connect[@]}" elect -l "te$tag" >"$T/observe.$tag" 2>&1 &
    observer=$!
    sleep 0.5
    "$tool" "${connect[@]}" elect "te$tag" one >"$T/first.$tag" 2>&1 &
    first=$!
    sleep 1
    "$tool" "${connect[@]}" elect "te$tag" two >"$T/second.$tag" 2>&1 &
    second=$!
    sleep 1
    kill -INT "$first"; wait "$first"; rc1=$?
    sleep 1
    kill -INT "$second"; wait "$second"; rc2=$?
    sleep 0.5
    kill -INT "$observer"; wait "$observer"; rc3=$?
    GOT[tool.$tag.elect]="$(tool_norm <"$T/first.$tag") rc=$rc1 | $(tool_norm <"$T/second.$tag") rc=$rc2"
    GOT[tool.$tag.observe]="$(tool_norm <"$T/observe.$tag") rc=$rc3"
    GOT[tool.$tag.errors]="$(t elect "te$tag" 2>&1) rc=$? | $(t elect -l "te$tag" x 2>&1) rc=$? | $(t elect a b c 2>&1) rc=$? | $(t lock 2>&1) rc=$?"
}

# Lease IDs and the per-tool names set aside.
tool_norm() { sed -E -e 's#/[0-9a-f]{1,16}$#/LEASE#' -e 's#/[0-9a-f]{1,16} #/LEASE #' -e 's/t([lceh])[ek]/t\1/g'; }

# The revision in a campaign answer's leader key.
leader_rev() { sed -E 's/.*"leader":\{[^}]*"rev":"([0-9]+)".*/\1/' <<<"$1"; }

for side in e k; do
    if [[ $side == e ]]; then bin=$ETCD_BIN; else bin=$KVD_BIN; fi
    start_alone "$bin" "${side}1"
    run_sequence "$side"
    GOT[$side.gave_up]=$(timeout 60 /usr/bin/python3 "$CLUSTER_DIR/lock-cancel.py" 127.0.0.1 "${SERVER_CPORT[${side}1]}" \
        "$PKI/etcd/ca.crt" "$PKI/apiserver-etcd-client.crt" "$PKI/apiserver-etcd-client.key" 2>&1)
    if [[ $side == k ]]; then
        tool_scenario "$ETCDCTL_BIN" e
        tool_scenario "$KVCTL_BIN" k
    fi
    node_stop "${side}1"
done

for key in lock_a lock_b_waits unlock_a lock_b lock_keys unlock_b lock_no_lease lock_unknown_lease no_leader \
    campaign_a leader proclaim proclaim_stale proclaim_no_key candidate_waits resign campaign_b new_leader observed; do
    expect_eq "$key (kvd as etcd 3.4)" "${GOT[e.$key]}" "${GOT[k.$key]}"
done
# What the differential cannot see when both sides are wrong the same way.
expect_eq "the second lock waited" "" "${GOT[k.lock_b_waits]}"
[[ ${GOT[k.lock_b]} == *"\"key\":\"$KEY_B\""*' 200' ]] && pass "the second lock was granted after the unlock" \
    || fail "the second lock was granted after the unlock: ${GOT[k.lock_b]}"
[[ $(grep -c '"result"' <<<"${GOT[k.observed]}") == 3 ]] && pass "observe saw one, two, three" \
    || fail "observe saw one, two, three: ${GOT[k.observed]}"
expect_eq "a lock and a campaign given up by their callers (kvd as etcd 3.4)" "${GOT[e.gave_up]}" "${GOT[k.gave_up]}"
[[ $(grep -c 'afterwards: 1$' <<<"${GOT[k.gave_up]}") == 2 ]] && pass "a waiter that gave up leaves no key behind" \
    || fail "a waiter that gave up leaves no key behind: ${GOT[k.gave_up]}"
for key in lock handover lock_exec elect observe errors; do
    expect_eq "kvctl $key (as etcdctl 3.4)" "${GOT[tool.e.$key]}" "${GOT[tool.k.$key]}"
done
expect_eq "kvctl lock waits behind the holder" "" "${GOT[tool.k.waiting]}"
[[ ${GOT[tool.k.handover]} == th/LEASE* ]] && pass "kvctl lock: the holder's release skips a waiter that gave up" \
    || fail "kvctl lock: the holder's release skips a waiter that gave up: ${GOT[tool.k.handover]}"
[[ $(grep -c LEASE <<<"${GOT[tool.k.observe]}") == 2 ]] && pass "kvctl elect -l saw both leaders" \
    || fail "kvctl elect -l saw both leaders: ${GOT[tool.k.observe]}"
summary lock-election
