#!/usr/bin/env bash
# Tests/Cluster/http.sh: etcd's HTTP endpoints, kvd beside etcd 3.4, on --listen-metrics-urls
# and on the mutual-TLS client port (beside gRPC, as etcd serves them). Three kvd members and
# three etcd members, each with a metrics URL:
#   - /health is 200 {"health":"true"} with a leader, 503 {"health":"false"} (plus a newline, as
#     Go's http.Error writes it) once a member has lost its quorum; POST is 405; an unknown
#     path is 404 with Go's body; /version.
#   - the client port answers /health, /version, /metrics and unknown paths as etcd's does
#     (curl as Prometheus scrapes it, with the client certificate), while etcdctl uses the same
#     port; without a client certificate the handshake fails on both. Over HTTP/2 too: curl
#     negotiates the same protocol with both, and /health, /metrics and the JSON gateway answer.
#   - /metrics is Prometheus text and carries the metric names the issue lists, as etcd's does,
#     with values that follow the cluster (has_leader 1, applied proposals growing), and etcd's
#     identity gauges: etcd_server_version labelled with the version /version reports,
#     etcd_server_id with the member's ID as `member list` prints it; etcd's mvcc counters
#     (range, put, delete, txn) grow by what etcd's grow by for the same requests.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cluster_init http
[[ -x $ETCD_BIN ]] || die "etcd binary '$ETCD_BIN' not found (apt-get install etcd-server)"
declare -A MPORT=()

# start_cluster P BIN: members P1..P3 running BIN, each with a metrics port.
start_cluster() {
    local p=$1 bin=$2 n ic
    for n in 1 2 3; do node_ports "$p$n"; MPORT[$p$n]=$(_new_port); done
    ic=$(initial_cluster "${p}1" "${p}2" "${p}3")
    for n in 1 2 3; do
        KVD_BIN=$bin node_start "$p$n" new "$ic" --listen-metrics-urls "http://127.0.0.1:${MPORT[$p$n]}"
    done
    wait_healthy "$START_TIMEOUT" "${p}1" "${p}2" "${p}3" || die "cluster $p did not become healthy"
}

# http NAME METHOD PATH: "<status> <body>" from NAME's metrics URL.
http() {
    curl -s -X "$2" -o "$COMPAT_TMP/body" -w '%{http_code}' --max-time 5 "http://127.0.0.1:${MPORT[$1]}$3" || true
    printf ' '; cat "$COMPAT_TMP/body"
}

# https NAME PATH [CURL ARGS...]: "<status> <body>" from NAME's client port, with the client certificate.
https() {
    local n=$1 path=$2; shift 2
    curl -s -o "$COMPAT_TMP/body" -w '%{http_code}' --max-time 5 --cacert "$PKI/etcd/ca.crt" \
        --cert "$PKI/apiserver-etcd-client.crt" --key "$PKI/apiserver-etcd-client.key" "$@" "${SERVER_EP[$n]}$path" || true
    printf ' '; cat "$COMPAT_TMP/body"
}

metric() { curl -s --max-time 5 "http://127.0.0.1:${MPORT[$1]}/metrics" | awk -v m="$2" '$1 == m {print $2 + 0}'; }

NAMES=(etcd_server_has_leader etcd_server_is_leader etcd_server_leader_changes_seen_total
    etcd_server_proposals_committed_total etcd_server_proposals_applied_total etcd_server_proposals_pending
    etcd_server_proposals_failed_total etcd_disk_wal_fsync_duration_seconds_bucket
    etcd_disk_backend_commit_duration_seconds_bucket etcd_mvcc_db_total_size_in_bytes
    etcd_debugging_mvcc_keys_total grpc_server_started_total grpc_server_handled_total
    etcd_server_version etcd_server_id etcd_mvcc_range_total etcd_mvcc_put_total etcd_mvcc_delete_total
    etcd_mvcc_txn_total)

declare -A GOT=()
for side in e k; do
    if [[ $side == e ]]; then start_cluster e "$ETCD_BIN"; else start_cluster k "$KVD_BIN"; fi
    nctl "${side}1" put foo bar >/dev/null || fail "$side: put"
    nctl "${side}2" get foo >/dev/null || fail "$side: get"
    GOT[$side.health]=$(http "${side}1" GET /health)
    GOT[$side.post]=$(http "${side}1" POST /health | head -c 4)
    GOT[$side.version]=$(http "${side}2" GET /version)
    GOT[$side.missing]=$(http "${side}3" GET /nope)
    GOT[$side.client_health]=$(https "${side}1" /health)
    GOT[$side.client_health_http11]=$(https "${side}2" /health --http1.1)
    GOT[$side.client_version]=$(https "${side}3" /version)
    # HTTP/2 on the client port: what curl negotiates by itself (ALPN), and /health and the JSON
    # gateway asked over HTTP/2 (etcd routes an HTTP/2 request by its content type).
    GOT[$side.client_alpn]=$(curl -s -o /dev/null -w 'HTTP/%{http_version}' --max-time 5 --cacert "$PKI/etcd/ca.crt" \
        --cert "$PKI/apiserver-etcd-client.crt" --key "$PKI/apiserver-etcd-client.key" "${SERVER_EP[${side}1]}/health")
    GOT[$side.client_health_http2]=$(https "${side}2" /health --http2)
    GOT[$side.client_gateway_http2]=$(https "${side}3" /v3/kv/range --http2 -X POST -d '{"key":"Zm9v"}' |
        sed -E 's/"header":\{[^}]*\},?//')
    GOT[$side.client_metrics_http2]=$(https "${side}1" /metrics --http2 | awk '$1 == "etcd_server_has_leader" {print "has_leader", $2 + 0}')
    GOT[$side.client_missing]=$(https "${side}1" /nope)
    GOT[$side.client_no_cert]=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$PKI/etcd/ca.crt" "${SERVER_EP[${side}1]}/health")
    https "${side}2" /metrics >"$COMPAT_TMP/client-metrics.$side"
    GOT[$side.client_metrics]=$(awk '$1 == "etcd_server_has_leader" {print "has_leader", $2 + 0}' "$COMPAT_TMP/client-metrics.$side")
    GOT[$side.grpc_after_http]=$(nctl "${side}1" get foo --print-value-only 2>&1)
    nctl "${side}1" member list >"$COMPAT_TMP/members.$side" 2>&1 || fail "$side: member list"
    if [[ $side == k ]]; then  # etcd 3.5's probes; etcd 3.4 has neither
        expect_eq "kvd /livez" "200 ok" "$(http k1 GET /livez)"
        expect_eq "kvd /readyz" "200 ok" "$(http k2 GET /readyz)"
    fi
    curl -s --max-time 5 "http://127.0.0.1:${MPORT[${side}1]}/metrics" >"$COMPAT_TMP/metrics.$side"
    # Peer round trips are measured by the leader (kvd times its heartbeats).
    leader=$(wait_one_leader 10 "${side}1" "${side}2" "${side}3")
    curl -s --max-time 5 "http://127.0.0.1:${MPORT[$leader]}/metrics" >>"$COMPAT_TMP/metrics.$side"
    GOT[$side.has_leader]=$(metric "${side}1" etcd_server_has_leader)
    a1=$(metric "${side}1" etcd_server_proposals_applied_total)
    nctl "${side}1" put foo baz >/dev/null || fail "$side: second put"
    sleep 0.3
    a2=$(metric "${side}1" etcd_server_proposals_applied_total)
    if ((a2 > a1)); then pass "$side: proposals_applied_total grows with a put ($a1 -> $a2)"; else fail "$side: proposals_applied_total $a1 -> $a2"; fi
    # The mvcc operation counters, on the member that serves the reads (every member applies the
    # writes): what a sequence of requests adds to each.
    before=$(for m in range put delete txn; do metric "${side}1" "etcd_mvcc_${m}_total"; done | paste -sd' ')
    nctl "${side}1" put ops/a 1 >/dev/null && nctl "${side}1" put ops/b 2 --prev-kv >/dev/null &&
        nctl "${side}1" get ops/a >/dev/null && nctl "${side}1" get ops/ --prefix --consistency=s >/dev/null &&
        nctl "${side}1" del ops/a --prev-kv >/dev/null &&
        printf 'value("ops/b") = "2"\n\nput ops/c 3\nput ops/d 4\n\n\n' | nctl "${side}1" txn >/dev/null &&
        printf 'version("ops/b") = "1"\n\nget ops/b\n\n\n' | nctl "${side}1" txn >/dev/null || fail "$side: the counted requests"
    sleep 0.3
    after=$(for m in range put delete txn; do metric "${side}1" "etcd_mvcc_${m}_total"; done | paste -sd' ')
    GOT[$side.mvcc_ops]=$(paste -d' ' <(tr ' ' '\n' <<<"$after") <(tr ' ' '\n' <<<"$before") | awk '{printf "%s%d", (NR > 1 ? " " : ""), $1 - $2}')
    # Without a quorum the survivor reports itself unhealthy.
    node_kill9 "${side}2"; node_kill9 "${side}3"
    sleep 3
    GOT[$side.lost]=$(http "${side}1" GET /health)
    GOT[$side.lost_leader]=$(metric "${side}1" etcd_server_has_leader)
    [[ $side == k ]] && expect_eq "kvd /readyz without a quorum" "503 not ready" "$(http k1 GET /readyz)"
    node_kill9 "${side}1"
done

# kvd reports etcd 3.6.0 (Kubernetes' watch cache needs >= 3.5.13), etcd 3.4.23 its own.
expect_eq "kvd /version (metrics URL; etcd 3.4 serves it on the client port only)" '200 {"etcdserver":"3.6.0","etcdcluster":"3.6.0"}' "${GOT[k.version]}"
GOT[e.version]=${GOT[e.version]//3.4.23/3.6.0}; GOT[e.version]=${GOT[e.version]//3.4.0/3.6.0}
GOT[e.client_version]=${GOT[e.client_version]//3.4.23/3.6.0}; GOT[e.client_version]=${GOT[e.client_version]//3.4.0/3.6.0}
for check in health post missing has_leader lost lost_leader client_health client_health_http11 \
    client_alpn client_health_http2 client_gateway_http2 client_metrics_http2 client_version client_missing client_no_cert client_metrics grpc_after_http mvcc_ops; do
    if [[ ${GOT[e.$check]} == "${GOT[k.$check]}" ]]; then pass "$check: ${GOT[k.$check]//$'\n'/\\n}"
    else fail "$check: etcd '${GOT[e.$check]//$'\n'/\\n}', kvd '${GOT[k.$check]//$'\n'/\\n}'"; fi
done
expect_eq "health with a leader" '200 {"health":"true"}' "${GOT[k.health]}"
for name in "${NAMES[@]}"; do
    in_etcd=0; in_kvd=0
    grep -q "^$name[ {]" "$COMPAT_TMP/metrics.e" && in_etcd=1
    grep -q "^$name[ {]" "$COMPAT_TMP/metrics.k" && in_kvd=1
    if ((in_etcd && in_kvd)); then pass "metric $name"; else fail "metric $name: in etcd $in_etcd, in kvd $in_kvd"; fi
done
# The identity gauges name what /version and `member list` name.
for side in e k; do
    version=$(awk -F'"' '$1 == "etcd_server_version{server_version=" && $3 ~ /^} 1(\.0)?$/ {print $2; exit}' "$COMPAT_TMP/metrics.$side")
    expected=3.6.0; [[ $side == e ]] && expected=3.4.23
    expect_eq "$side: etcd_server_version" "$expected" "$version"
    ids=$(awk -F'"' '$1 == "etcd_server_id{server_id=" && $3 ~ /^} 1(\.0)?$/ {print $2}' "$COMPAT_TMP/metrics.$side" | sort -u)
    members=$(cat "$COMPAT_TMP/members.$side")
    unknown=0
    for id in $ids; do grep -qw "$id" <<<"$members" || unknown=1; done
    expect_eq "$side: etcd_server_id names a member" "yes" "$([[ -n $ids && $unknown == 0 ]] && echo yes || echo "no ('$ids' among '$members')")"
done
# etcd 3.4 samples peer round trips every 30 s, too late for this test; kvd's leader times its
# heartbeats, so the histogram is there within a second.
grep -q '^etcd_network_peer_round_trip_time_seconds_bucket{To="[0-9a-f]*"' "$COMPAT_TMP/metrics.k" &&
    pass "metric etcd_network_peer_round_trip_time_seconds (kvd)" || fail "kvd has no etcd_network_peer_round_trip_time_seconds"
# kvd's own stages: member 1 proposed the puts above, and every member handles Readies.
for name in kvd_server_proposal_duration_seconds kvd_raft_ready_duration_seconds; do
    count=$(awk -v m="${name}_count" '$1 == m {print $2 + 0; exit}' "$COMPAT_TMP/metrics.k")
    if ((${count:-0} > 0)); then pass "metric $name (kvd): $count observations"; else fail "kvd metric $name: count '${count:-}'"; fi
done
summary http
