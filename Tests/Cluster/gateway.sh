#!/usr/bin/env bash
# Tests/Cluster/gateway.sh: etcd's gRPC-JSON gateway, kvd beside etcd 3.4, with curl over the
# mutual-TLS client port (as etcd3gw and patroni reach it). One member of each runs the same
# requests; every answer's status and body must be the same once the member and cluster IDs,
# the term and the version are set aside:
#   - kv put/range/deleterange/txn/compaction, /v3beta aliases, an empty body, unknown fields and
#     what follows the first JSON value ignored, etcd's errors as {"error","message","code"} with
#     grpc-gateway's HTTP status (future and compacted revisions, missing key, unknown lease);
#   - undecodable JSON: 400 with code 3 (the message is the decoder's own);
#   - lease grant/timetolive/leases/revoke and a keepalive stream, under /v3/lease and /v3/kv/lease;
#   - a watch whose request body has ended still gets the events written after it (etcd keeps a
#     half-closed watch open), one {"result":...} line each;
#   - GET on a gateway path is 405, an unknown /v3 path 404 "Not Found", other paths Go's 404;
#   - --enable-grpc-gateway=false: the /v3 paths are gone (404 page not found);
#   - --max-concurrent-streams 2: with two watches open a third call waits until one ends.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cluster_init gateway
[[ -x $ETCD_BIN ]] || die "etcd binary '$ETCD_BIN' not found (apt-get install etcd-server)"

# gw NAME PATH [BODY] [CURL ARGS...]: "<status> <body>" from NAME's client port, the IDs,
# term and versions replaced by placeholders.
gw() {
    local n=$1 path=$2 body=${3-}; shift 3 2>/dev/null || shift $#
    local data=()
    [[ -n $body ]] && data=(-d "$body")
    curl -s -o "$COMPAT_TMP/body" -w '%{http_code}' --max-time 5 --cacert "$PKI/etcd/ca.crt" \
        --cert "$PKI/apiserver-etcd-client.crt" --key "$PKI/apiserver-etcd-client.key" "${data[@]}" "$@" \
        "${SERVER_EP[$n]}$path" || true
    printf ' '
    normalise <"$COMPAT_TMP/body"
}

# The fields that differ between any two clusters (IDs, term, URLs, versions, sizes).
normalise() {
    sed -E -e 's/"(cluster_id|member_id|raft_term|raftTerm|leader|raftIndex|raftAppliedIndex|dbSize|dbSizeInUse)":"[0-9]+"/"\1":"N"/g' \
        -e 's/"ID":"[0-9]{6,}"/"ID":"N"/g' -e 's/"version":"3\.[0-9.]+"/"version":"V"/g' \
        -e 's#https://127\.0\.0\.1:[0-9]+#URL#g' -e 's/"name":"[ek]1"/"name":"NAME"/g'
}

declare -A GOT=()
run_sequence() {
    local s=$1 n=${1}1
    GOT[$s.put]=$(gw "$n" /v3/kv/put '{"key":"Zm9v","value":"YmFy"}')
    GOT[$s.range]=$(gw "$n" /v3/kv/range '{"key":"Zm9v"}')
    GOT[$s.beta]=$(gw "$n" /v3beta/kv/range '{"key":"Zm9v","serializable":true}')
    GOT[$s.unknown_field]=$(gw "$n" /v3/kv/range '{"key":"Zm9v","no_such_field":1,"keys_only":true}')
    GOT[$s.trailing]=$(gw "$n" /v3/kv/put '{"key":"YmFy","value":"MQ=="} and what follows')
    GOT[$s.sorted]=$(gw "$n" /v3/kv/range '{"key":"AA==","range_end":"AA==","sort_order":"DESCEND","sortTarget":"MOD"}')
    GOT[$s.future]=$(gw "$n" /v3/kv/range '{"key":"Zm9v","revision":"100"}')
    GOT[$s.empty]=$(gw "$n" /v3/kv/range '' -X POST)
    GOT[$s.no_lease]=$(gw "$n" /v3/kv/put '{"key":"Zm9v","lease":"123"}')
    GOT[$s.bad_json]=$(gw "$n" /v3/kv/range '{"key":1}' | sed -E 's/"(error|message)":"[^"]*"/"\1":"M"/g')
    GOT[$s.txn]=$(gw "$n" /v3/kv/txn '{"compare":[{"key":"Zm9v","result":"EQUAL","target":"VALUE","value":"YmFy"}],"success":[{"request_put":{"key":"Zm9v","value":"YmF6","prev_kv":true}}],"failure":[{"request_range":{"key":"Zm9v"}}]}')
    GOT[$s.txn_fail]=$(gw "$n" /v3/kv/txn '{"compare":[{"key":"Zm9v","target":"VERSION","version":"9"}],"failure":[{"request_range":{"key":"Zm9v"}}]}')
    GOT[$s.grant]=$(gw "$n" /v3/lease/grant '{"ID":"77","TTL":60}')
    GOT[$s.put_lease]=$(gw "$n" /v3/kv/put '{"key":"bGVhc2Vk","value":"eA==","lease":"77"}')
    GOT[$s.ttl]=$(gw "$n" /v3/kv/lease/timetolive '{"ID":"77","keys":true}' | sed -E 's/"TTL":"(59|60)"/"TTL":"T"/')
    GOT[$s.leases]=$(gw "$n" /v3/lease/leases '{}')
    GOT[$s.keepalive]=$(gw "$n" /v3/lease/keepalive '{"ID":"77"}' --max-time 2 | sed -E 's/"TTL":"(59|60)"/"TTL":"T"/')
    GOT[$s.revoke]=$(gw "$n" /v3/kv/lease/revoke '{"ID":"77"}')
    GOT[$s.revoked_range]=$(gw "$n" /v3/kv/range '{"key":"bGVhc2Vk"}')
    GOT[$s.delete]=$(gw "$n" /v3/kv/deleterange '{"key":"Zm9v","prev_kv":true}')
    # The watch's body ends at once; the put comes after, on another connection.
    gw "$n" /v3/watch '{"create_request":{"key":"Zm9v","start_revision":"2"}}' --max-time 4 >"$COMPAT_TMP/watch.$s" &
    local watcher=$!
    sleep 1.5
    gw "$n" /v3/kv/put '{"key":"Zm9v","value":"YWZ0ZXI="}' >/dev/null
    wait "$watcher"
    GOT[$s.watch]=$(cat "$COMPAT_TMP/watch.$s")
    GOT[$s.watch_cancel]=$(gw "$n" /v3/watch '{"create_request":{"key":"Zm9v"}} {"cancel_request":{"watch_id":"0"}}' --max-time 2)
    GOT[$s.compact]=$(gw "$n" /v3/kv/compaction '{"revision":"4","physical":true}')
    GOT[$s.compacted]=$(gw "$n" /v3/kv/range '{"key":"Zm9v","revision":"2"}')
    GOT[$s.members]=$(gw "$n" /v3/cluster/member/list '{}')
    GOT[$s.status]=$(gw "$n" /v3/maintenance/status '{}')
    GOT[$s.alarms]=$(gw "$n" /v3/maintenance/alarm '{"action":"GET"}')
    GOT[$s.get]=$(gw "$n" /v3/kv/range '' -X GET)
    GOT[$s.not_found]=$(gw "$n" /v3/kv/nope '{}')
    GOT[$s.outside]=$(gw "$n" /v4/kv/range '{}')
}

for side in e k; do
    if [[ $side == e ]]; then bin=$ETCD_BIN; else bin=$KVD_BIN; fi
    start_alone "$bin" "${side}1"
    run_sequence "$side"
    node_stop "${side}1"
done

for key in put range beta unknown_field trailing sorted future empty no_lease bad_json txn txn_fail grant put_lease \
    ttl leases keepalive revoke revoked_range delete watch watch_cancel compact compacted members status alarms \
    get not_found outside; do
    expect_eq "gateway $key (kvd as etcd 3.4)" "${GOT[e.$key]}" "${GOT[k.$key]}"
done
# The watch saw the put made after its body had ended (not only its creation).
[[ ${GOT[k.watch]} == *'"value":"YWZ0ZXI="'* ]] && pass "half-closed watch gets later events" \
    || fail "half-closed watch gets later events: ${GOT[k.watch]}"

# --enable-grpc-gateway=false, on both.
for side in e k; do
    if [[ $side == e ]]; then bin=$ETCD_BIN; else bin=$KVD_BIN; fi
    start_alone "$bin" "${side}2" --enable-grpc-gateway=false
    GOT[$side.disabled]=$(gw "${side}2" /v3/kv/range '{"key":"Zm9v"}')
    GOT[$side.disabled_health]=$(gw "${side}2" /health | cut -c1-3)
    node_stop "${side}2"
done
expect_eq "--enable-grpc-gateway=false (kvd as etcd 3.4)" "${GOT[e.disabled]}" "${GOT[k.disabled]}"

# --max-concurrent-streams 2: etcd's gateway is one gRPC connection to its member, so two open
# watches take every stream and a third call waits; once a watch ends it goes through.
for side in e k; do
    if [[ $side == e ]]; then bin=$ETCD_BIN; else bin=$KVD_BIN; fi
    start_alone "$bin" "${side}3" --max-concurrent-streams 2
    gw "${side}3" /v3/watch '{"create_request":{"key":"YQ=="}}' --max-time 8 >/dev/null &
    first=$!
    gw "${side}3" /v3/watch '{"create_request":{"key":"Yg=="}}' --max-time 4 >/dev/null &
    sleep 1
    GOT[$side.third_waits]=$(gw "${side}3" /v3/kv/range '{"key":"YQ=="}' --max-time 2 | cut -c1-3)
    sleep 2.5  # the second watch has ended
    GOT[$side.third_after]=$(gw "${side}3" /v3/kv/range '{"key":"YQ=="}' --max-time 2 | cut -c1-3)
    wait "$first"
    node_stop "${side}3"
done
expect_eq "--max-concurrent-streams: a third call waits (kvd as etcd 3.4)" "${GOT[e.third_waits]}" "${GOT[k.third_waits]}"
expect_eq "--max-concurrent-streams: it waited (curl's time-out)" "000" "${GOT[k.third_waits]}"
expect_eq "--max-concurrent-streams: it goes through once a stream ends" "200" "${GOT[k.third_after]}"
expect_eq "--enable-grpc-gateway=false keeps /health" "200" "${GOT[k.disabled_health]}"
summary gateway
