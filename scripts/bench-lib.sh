# bench-lib.sh — what scripts/bench-cluster.sh and scripts/bench-scale.sh share: three members of kvd or
# etcd with mutual TLS on loopback, started and stopped by PID.
#
# The caller sets $repo, KVD_BIN, ETCD_BIN, ETCDCTL and SERVERS, and calls make_workdir. start_cluster sets $endpoints (leader
# first, so a one-connection run talks to the leader) and $leader_ep; only the PIDs it started are
# ever signalled.

need() { [[ -x $1 ]] || command -v "$1" >/dev/null 2>&1 || { echo "$(basename "$0"): $1 not found: $2" >&2; exit 1; }; }

# The binaries of every server in $SERVERS, and etcdctl.
need_servers() {
    local server
    for server in $SERVERS; do
        case $server in
        kvd) need "$KVD_BIN" "make release" ;;
        etcd) need "$ETCD_BIN" "apt-get install etcd-server" ;;
        *) echo "unknown server $server" >&2; exit 2 ;;
        esac
    done
    need "$ETCDCTL" "apt-get install etcd-client"
}

pids=()
stop_cluster() {
    local pid i
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    pids=()
}

# make_workdir PREFIX: $work under /tmp with test certificates ($pki, $tls for etcdctl); on exit the
# members are stopped and $work removed (KEEP=1 keeps it).
make_workdir() {
    work=$(mktemp -d "/tmp/$1.XXXXXX")
    bash "$repo/cluster-configs/gen-certs.sh" "$work/pki" >/dev/null
    pki=$work/pki
    tls="--cacert $pki/etcd/ca.crt --cert $pki/apiserver-etcd-client.crt --key $pki/apiserver-etcd-client.key"
    trap cleanup EXIT
    trap 'exit 130' INT TERM
}
cleanup() {
    stop_cluster
    if [[ ${KEEP:-0} == 1 ]]; then echo "work directory kept: $work" >&2; else rm -rf "$work"; fi
}

# Free loopback ports, six at a time (client and peer for three members), never the defaults.
port_free() { ! ss -Htan "( sport = :$1 )" 2>/dev/null | grep -q .; }
pick_ports() {
    local out=() p
    while ((${#out[@]} < 6)); do
        p=$((20000 + RANDOM % 30000))
        port_free "$p" && [[ " ${out[*]} " != *" $p "* ]] && out+=("$p")
    done
    echo "${out[*]}"
}

# start_cluster SERVER [restart]: three members of SERVER with mTLS on client and peer ports, data in
# $work/SERVER/m0..m2. With "restart", the same members again on the same ports and data.
cluster_ports=()
start_cluster() {
    local server=$1 restart=${2:-} bin cluster="" i
    bin=$([[ $server == kvd ]] && echo "$KVD_BIN" || echo "$ETCD_BIN")
    [[ $restart == restart ]] || read -r -a cluster_ports <<<"$(pick_ports)"
    local ports=("${cluster_ports[@]}")
    for i in 0 1 2; do cluster+="${cluster:+,}m$i=https://127.0.0.1:${ports[$((2 * i + 1))]}"; done
    endpoints=""
    for i in 0 1 2; do
        local cport=${ports[$((2 * i))]} pport=${ports[$((2 * i + 1))]}
        endpoints+="${endpoints:+,}127.0.0.1:$cport"
        local args=(--name "m$i" --data-dir "$work/$server/m$i"
            --listen-client-urls "https://127.0.0.1:$cport" --advertise-client-urls "https://127.0.0.1:$cport"
            --listen-peer-urls "https://127.0.0.1:$pport" --initial-advertise-peer-urls "https://127.0.0.1:$pport"
            --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token "bench-$server"
            --cert-file "$pki/etcd/server.crt" --key-file "$pki/etcd/server.key"
            --trusted-ca-file "$pki/etcd/ca.crt" --client-cert-auth
            --peer-cert-file "$pki/etcd/peer.crt" --peer-key-file "$pki/etcd/peer.key"
            --peer-trusted-ca-file "$pki/etcd/ca.crt" --peer-client-cert-auth ${SERVER_FLAGS:-})
        mkdir -p "$work/$server"
        echo "$bin ${args[*]}" >>"$work/commands.txt"
        "$bin" "${args[@]}" >>"$work/$server/m$i.log" 2>&1 </dev/null &
        pids+=($!)
    done
    local deadline=$((SECONDS + 120))
    until [[ $(timeout 10 "$ETCDCTL" --endpoints="$endpoints" $tls --dial-timeout=1s --command-timeout=2s \
        endpoint health 2>&1 | grep -c ' is healthy') == 3 ]]; do
        ((SECONDS < deadline)) || { echo "$server cluster not healthy after 120 s; logs in $work/$server" >&2; KEEP=1; exit 1; }
        sleep 0.2
    done
    local status ep others=""
    status=$(timeout 10 "$ETCDCTL" --endpoints="$endpoints" $tls endpoint status -w json 2>/dev/null || true)
    leader_ep=$(python3 - "$status" <<'PY' 2>/dev/null || true
import json, sys
for s in json.loads(sys.argv[1]):
    if s["Status"]["header"]["member_id"] == s["Status"]["leader"]:
        print(s["Endpoint"].replace("https://", "").replace("http://", ""))
PY
)
    if [[ -n $leader_ep ]]; then
        for ep in ${endpoints//,/ }; do [[ $ep == "$leader_ep" ]] || others+=",$ep"; done
        endpoints="$leader_ep$others"
    fi
    echo "== $server: members up on $endpoints (leader first: ${leader_ep:-unknown})"
}

# The shapes both benchmark scripts run: shape -> base total, and etcd benchmark flags. Totals give
# ~10-20 s per run against etcd 3.4 here.
declare -A shape_total=(
    [put-1-1]=12000 [put-10-100]=60000 [put-100-1000]=80000 [put-seq]=60000 [range-l]=60000 [range-s]=100000
    [range-prefix]=100000 [lease-keepalive]=100000
)
declare -A shape_args=(
    [put-1-1]="--conns 1 --clients 1 put --key-size 8 --val-size 256 --key-space-size 100000"
    [put-10-100]="--conns 10 --clients 100 put --key-size 8 --val-size 256 --key-space-size 100000"
    [put-100-1000]="--conns 100 --clients 1000 put --key-size 8 --val-size 256 --key-space-size 100000"
    [put-seq]="--conns 10 --clients 100 put --key-size 8 --val-size 256 --key-space-size 100000 --sequential-keys"
    [range-l]="--conns 10 --clients 100 range foo --consistency l"
    [range-s]="--conns 10 --clients 100 range foo --consistency s"
    # Calls kvd's client port carries to its services through the bridge (not its direct path): a
    # range over more than one key, and lease keep-alives on streams.
    [range-prefix]="--conns 10 --clients 100 range foo fop --consistency s"
    [lease-keepalive]="--conns 10 --clients 100 lease-keepalive"
)
