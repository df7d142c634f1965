#!/usr/bin/env bash
# launch-local.sh start|stop|status [DIR]
#
# Runs a three-member kvd cluster on loopback with mutual TLS on the client and peer ports,
# as cluster-configs/n{1,2,3}.yaml describe it for three hosts:
#   member  client                   peer
#   n1      https://127.0.0.1:2379   https://127.0.0.1:2380
#   n2      https://127.0.0.1:22379  https://127.0.0.1:22380
#   n3      https://127.0.0.1:32379  https://127.0.0.1:32380
# DIR (default ./data) holds everything: pki/ (from gen-certs.sh, kubeadm layout),
# n1/ n2/ n3/ (data dirs), n1.yaml.. (each member's etcd-format config file), n1.log..,
# and n1.pid.. (stop signals only those PIDs, and only if they still run kvd).
#
#   start   generate certificates (once), start the members that are not running, wait
#           until `etcdctl endpoint health --cluster` succeeds, print how to reach it.
#           The members keep running in the background. A restart reuses the data dirs.
#   stop    SIGTERM each member by its PID file, SIGKILL after STOP_TIMEOUT (10 s).
#   status  which members run, and `endpoint status --cluster -w table`.
#
# Environment: KVD_BIN (default <repo>/.build/debug/kvd), ETCDCTL (default etcdctl),
# CLIENT_PORTS="2379 22379 32379", PEER_PORTS="2380 22380 32380" (override for tests),
# HEARTBEAT_MS=100, ELECTION_MS=1000, SNAPSHOT_COUNT=10000, START_TIMEOUT=30.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
cmd=${1:-}
dir=${2:-./data}
KVD_BIN=${KVD_BIN:-$repo/.build/debug/kvd}
KVCTL_BIN=${KVCTL_BIN:-$repo/.build/debug/kvctl}
ETCDCTL=${ETCDCTL:-etcdctl}
for _v in KVD_BIN KVCTL_BIN; do   # relative paths (as make passes them) from the caller's cwd
    if [[ ${!_v} == */* && ${!_v} != /* ]]; then printf -v "$_v" '%s' "$PWD/${!_v}"; fi
done
# The ports a start used are kept in DIR/ports, so that status finds them without the env.
if [[ -z ${CLIENT_PORTS:-} && -z ${PEER_PORTS:-} && -s ${2:-./data}/ports && $cmd != start ]]; then
    # shellcheck disable=SC1091
    . "${2:-./data}/ports"
fi
read -r -a cports <<<"${CLIENT_PORTS:-2379 22379 32379}"
read -r -a pports <<<"${PEER_PORTS:-2380 22380 32380}"
HEARTBEAT_MS=${HEARTBEAT_MS:-100}
ELECTION_MS=${ELECTION_MS:-1000}
SNAPSHOT_COUNT=${SNAPSHOT_COUNT:-10000}
START_TIMEOUT=${START_TIMEOUT:-30}
STOP_TIMEOUT=${STOP_TIMEOUT:-10}
names=(n1 n2 n3)
export ETCDCTL_API=3

usage() {
    echo "usage: $0 start|stop|status [DIR]   (DIR defaults to ./data)" >&2
    exit 2
}
[[ $cmd == start || $cmd == stop || $cmd == status ]] || usage
((${#cports[@]} == 3 && ${#pports[@]} == 3)) || { echo "CLIENT_PORTS and PEER_PORTS need three ports each" >&2; exit 2; }
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
pki=$dir/pki

endpoints() {
    local i out=""
    for i in 0 1 2; do out+="${out:+,}https://127.0.0.1:${cports[$i]}"; done
    echo "$out"
}
tls_flags="--cacert $pki/etcd/ca.crt --cert $pki/apiserver-etcd-client.crt --key $pki/apiserver-etcd-client.key"

# pid_of NAME: the PID in DIR/NAME.pid if that process is alive and is a kvd of this DIR.
pid_of() {
    local f=$dir/$1.pid pid
    [[ -s $f ]] || return 1
    pid=$(<"$f")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    # Guard against a recycled PID: the process must be kvd started with our config file.
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$dir/$1.yaml" || return 1
    echo "$pid"
}

ctl() { timeout -k 2 15 "$ETCDCTL" --endpoints="$(endpoints)" $tls_flags "$@"; }

# write_config I: DIR/nI.yaml in etcd's config-file format (as in cluster-configs/n1.yaml).
write_config() {
    local i=$1 n=${names[$1]} ic="" j
    for j in 0 1 2; do ic+="${ic:+,}${names[$j]}=https://127.0.0.1:${pports[$j]}"; done
    cat >"$dir/$n.yaml" <<YAML
# Written by cluster-configs/launch-local.sh; regenerated on every start.
name: $n
data-dir: $dir/$n
listen-client-urls: https://127.0.0.1:${cports[$i]}
advertise-client-urls: https://127.0.0.1:${cports[$i]}
listen-peer-urls: https://127.0.0.1:${pports[$i]}
initial-advertise-peer-urls: https://127.0.0.1:${pports[$i]}
initial-cluster: $ic
initial-cluster-state: new
initial-cluster-token: kvd-local
heartbeat-interval: $HEARTBEAT_MS
election-timeout: $ELECTION_MS
snapshot-count: $SNAPSHOT_COUNT
client-transport-security:
  cert-file: $pki/etcd/server.crt
  key-file: $pki/etcd/server.key
  trusted-ca-file: $pki/etcd/ca.crt
  client-cert-auth: true
peer-transport-security:
  cert-file: $pki/etcd/peer.crt
  key-file: $pki/etcd/peer.key
  trusted-ca-file: $pki/etcd/ca.crt
  client-cert-auth: true
YAML
}

port_busy() { ss -Htln "( sport = :$1 )" 2>/dev/null | grep -q .; }

print_usage_lines() {
    local eps
    eps=$(endpoints)
    echo "kvd: three members on $eps (mTLS; data, logs and PIDs in $dir)"
    echo "check the cluster with:"
    if [[ -x $KVCTL_BIN ]]; then
        echo "  $KVCTL_BIN --endpoints=$eps $tls_flags endpoint health --cluster"
    fi
    echo "  ETCDCTL_API=3 etcdctl --endpoints=$eps $tls_flags endpoint health --cluster"
    echo "stop it with:"
    echo "  $here/launch-local.sh stop $dir"
}

start() {
    [[ -x $KVD_BIN ]] || { echo "kvd binary not found at $KVD_BIN (build it: swift build --product kvd)" >&2; exit 1; }
    command -v "$ETCDCTL" >/dev/null || { echo "$ETCDCTL not found (apt-get install etcd-client)" >&2; exit 1; }
    bash "$here/gen-certs.sh" "$pki"
    local i n pid started=()
    printf 'CLIENT_PORTS="%s"\nPEER_PORTS="%s"\n' "${cports[*]}" "${pports[*]}" >"$dir/ports"
    for i in 0 1 2; do
        n=${names[$i]}
        if pid=$(pid_of "$n"); then
            echo "$n already running (pid $pid)"
            continue
        fi
        for p in "${cports[$i]}" "${pports[$i]}"; do
            if port_busy "$p"; then
                echo "port $p (for $n) is already in use; set CLIENT_PORTS/PEER_PORTS or stop what holds it" >&2
                exit 1
            fi
        done
        write_config "$i"
        echo "=== $(date -u +%FT%TZ) start: $KVD_BIN --config-file $dir/$n.yaml" >>"$dir/$n.log"
        # setsid + nohup: the members outlive this script and the terminal (make run returns).
        setsid nohup "$KVD_BIN" --config-file "$dir/$n.yaml" >>"$dir/$n.log" 2>&1 </dev/null &
        echo $! >"$dir/$n.pid"
        started+=("$n")
    done
    local deadline=$((SECONDS + START_TIMEOUT))
    # --cluster health passes vacuously for members that have not yet published their client
    # URLs (member list shows them without any), so wait for three healthy members.
    while [[ $(ctl --dial-timeout=1s --command-timeout=2s endpoint health --cluster 2>&1 | grep -c ' is healthy') != 3 ]]; do
        for n in "${started[@]}"; do
            if ! pid_of "$n" >/dev/null; then
                echo "member $n exited during start-up; last lines of $dir/$n.log:" >&2
                tail -n 20 "$dir/$n.log" >&2
                echo "(stop the others with: $0 stop $dir)" >&2
                exit 1
            fi
        done
        if ((SECONDS >= deadline)); then
            echo "cluster not healthy after ${START_TIMEOUT}s; logs in $dir/n*.log; stop with: $0 stop $dir" >&2
            ctl --dial-timeout=1s --command-timeout=2s endpoint health --cluster >&2 || true
            exit 1
        fi
        sleep 0.3
    done
    ctl endpoint health --cluster 2>&1   # etcdctl prints health on stderr
    print_usage_lines
}

stop() {
    local n pid i any=0
    for n in "${names[@]}"; do
        if pid=$(pid_of "$n"); then
            kill -TERM "$pid" 2>/dev/null || true
            for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            if kill -0 "$pid" 2>/dev/null; then
                echo "$n (pid $pid) did not stop in ${STOP_TIMEOUT}s: SIGKILL"
                kill -KILL "$pid" 2>/dev/null || true
            fi
            echo "stopped $n (pid $pid)"
            any=1
        fi
        rm -f "$dir/$n.pid"
    done
    ((any)) || echo "no member of $dir was running"
}

status() {
    local n pid running=0
    for n in "${names[@]}"; do
        if pid=$(pid_of "$n"); then echo "$n: running (pid $pid)"; running=$((running + 1))
        else echo "$n: not running"; fi
    done
    ((running > 0)) || return 3
    ctl --dial-timeout=1s --command-timeout=3s endpoint status --cluster -w table || true
    ctl --dial-timeout=1s --command-timeout=3s endpoint health --cluster 2>&1 || true
    ((running == 3))
}

"$cmd"
