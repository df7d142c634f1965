#!/usr/bin/env bash
# Tests/Cluster/watch-lease.sh: Watch and Lease through Debian's etcdctl 3.4, kvd beside a
# three-member etcd 3.4 (mTLS). The same sequence runs against both clusters:
#   - watchers started before the writes on member 2 (--prefix --prev-kv -w json, and a
#     single key from --rev 1 -w simple) see puts through member 1, a txn and deletes
#     through member 3, and the delete events of a revoked and of an expired lease;
#   - lease grant (a TTL below etcd's minimum is raised to it), timetolive --keys,
#     keep-alive --once through a follower, list, revoke, timetolive of a revoked lease,
#     a put with a revoked lease; lease list on the leader in expiry order.
# Outputs must be identical after normalising lease IDs, cluster/member IDs, raft terms and
# remaining TTLs that depend on timing.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cluster_init watch-lease
[[ -x $ETCD_BIN ]] || die "etcd binary '$ETCD_BIN' not found (apt-get install etcd-server)"
declare -A WATCH_PIDS=()

scenario() {
    local p=$1 bin=$2 n ic out=$COMPAT_TMP/$1
    for n in 1 2 3; do node_ports "$p$n"; done
    ic=$(initial_cluster "${p}1" "${p}2" "${p}3")
    for n in 1 2 3; do KVD_BIN=$bin node_start "$p$n" new "$ic"; done
    wait_healthy "$START_TIMEOUT" "${p}1" "${p}2" "${p}3" || die "cluster $p did not become healthy"
    CMD_TIMEOUT=60 nctl "${p}2" watch --prefix w/ --prev-kv -w json >"$out.watch-json" 2>/dev/null &
    local w1=$!
    CMD_TIMEOUT=60 nctl "${p}2" watch w/a --rev 1 >"$out.watch-simple" 2>/dev/null &
    local w2=$!
    sleep 1
    {
        echo "put: $(nctl "${p}1" put w/a 1 2>&1)"
        echo "put: $(nctl "${p}1" put w/b 2 2>&1)"
        echo "put: $(nctl "${p}1" put w/a 3 2>&1)"
        echo "txn: $(nctl "${p}3" txn <<<$'value("w/a") = "3"\n\nput w/c 4\ndel w/b\n\nput w/none x\n' 2>&1 | paste -sd ' ')"
        local lease short
        lease=$(nctl "${p}1" lease grant 100 2>&1); echo "grant: $lease"; lease=$(awk '{print $2}' <<<"$lease")
        echo "put: $(nctl "${p}1" put w/leased v --lease="$lease" 2>&1)"
        echo "timetolive: $(nctl "${p}3" lease timetolive "$lease" --keys 2>&1 | sed -E 's/remaining\([0-9]+s\)/remaining(<ttl>)/')"
        echo "keep-alive: $(nctl "${p}2" lease keep-alive --once "$lease" 2>&1)"
        echo "list: $(nctl "${p}3" lease list 2>&1 | paste -sd ' ')"
        echo "revoke: $(nctl "${p}3" lease revoke "$lease" 2>&1)"
        echo "timetolive revoked: $(nctl "${p}1" lease timetolive "$lease" 2>&1)"
        echo "put revoked: $(nctl "${p}1" put w/late v --lease="$lease" 2>&1 | grep -v '^{"level"')"
        short=$(nctl "${p}1" lease grant 1 2>&1); echo "grant below minimum: $short"; short=$(awk '{print $2}' <<<"$short")
        echo "put: $(nctl "${p}1" put w/short v --lease="$short" 2>&1)"
        sleep 4  # the short lease expires (etcd's minimum TTL here is 2 s), its key is deleted
        echo "expired: $(nctl "${p}2" lease timetolive "$short" 2>&1)"
        echo "get: $(nctl "${p}2" get w/ --prefix --keys-only 2>&1 | paste -sd ' ')"
        # lease list on the leader, in etcd's order (soonest expiry first), IDs as grant positions.
        local leader ids=() position id order=""
        leader=$(leaders "${p}1" "${p}2" "${p}3")
        for ttl in 300 100 200; do ids+=("$(nctl "$leader" lease grant "$ttl" 2>&1 | awk '{print $2}')"); done
        for id in $(nctl "$leader" lease list 2>&1 | tail -n +2); do
            for position in 0 1 2; do [[ ${ids[$position]} == "$id" ]] && order+="ttl$((position == 0 ? 300 : position == 1 ? 100 : 200)) "; done
        done
        echo "list on the leader: $order"
        echo "del: $(nctl "${p}3" del w/ --prefix --prev-kv 2>&1 | paste -sd ' ')"
    } >"$out.steps"
    sleep 1
    kill "$w1" "$w2" 2>/dev/null; wait "$w1" "$w2" 2>/dev/null
    for n in 1 2 3; do node_kill9 "$p$n"; done
}

# normalise FILE: lease IDs (hex and decimal), header IDs and terms.
normalise() {
    sed -E -e 's/lease [0-9a-f]{10,16}/lease <lease>/g; s/"lease":[0-9]+/"lease":<lease>/g' \
        -e 's/"(cluster_id|member_id|raft_term)":[0-9]+/"\1":<n>/g' \
        -e 's/(found [0-9]+ leases) [0-9a-f ]+$/\1 <leases>/' "$1"
}

scenario e "$ETCD_BIN"
scenario k "$KVD_BIN"
for part in steps watch-json watch-simple; do
    want=$(normalise "$COMPAT_TMP/e.$part"); got=$(normalise "$COMPAT_TMP/k.$part")
    if [[ -z $want ]]; then fail "$part: etcd produced nothing (harness)"; continue; fi
    if [[ $want == "$got" ]]; then pass "$part identical ($(grep -c . <<<"$got") lines)"
    else fail "$part differs:
$(diff <(echo "$want") <(echo "$got") | head -n 30)"; fi
done
summary watch-lease
