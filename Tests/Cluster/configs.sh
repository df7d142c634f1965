#!/usr/bin/env bash
# Tests/Cluster/configs.sh: the shipped deployment files work.
#   - cluster-configs/n1.yaml..n3.yaml, with only the host-specific parts rewritten for
#     loopback (hosts n1..n3 -> localhost:<free port>, 0.0.0.0 -> 127.0.0.1, /etc/kubernetes/pki
#     -> a gen-certs.sh PKI, /var/lib/kvd -> temp dirs), start three kvd members through
#     --config-file; the cluster is healthy and lists n1 n2 n3 (so every key is accepted
#     and peer URLs with host names resolve).
#   - every file kube-apiserver-flags.txt and the configs name exists in gen-certs.sh's layout.
#   - kvd.service has the ExecStart the README promises.
#   - an etcd setting kvd takes without effect (max-wals) is noted in the log; one it implements
#     (experimental-initial-corrupt-check) runs; lines of etcd's sample config (empty settings,
#     proxy: 'off') start a member.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cluster_init configs
cfg=$REPO_ROOT/cluster-configs
nodes=(n1 n2 n3)
for n in "${nodes[@]}"; do node_ports "$n"; done

# Paths named by the shipped files must exist in gen-certs.sh's layout.
paths=$(grep -ohE '/etc/kubernetes/pki/[A-Za-z0-9_./-]+' "$cfg"/n?.yaml "$cfg/kube-apiserver-flags.txt" | sort -u)
missing=""
for p in $paths; do [[ -s $PKI/${p#/etc/kubernetes/pki/} ]] || missing+=" $p"; done
expect_eq "certificate paths exist in gen-certs.sh output" "" "$missing"
grep -q -- '--etcd-servers=https://n1:2379,https://n2:2379,https://n3:2379' "$cfg/kube-apiserver-flags.txt" &&
    pass "apiserver --etcd-servers" || fail "apiserver --etcd-servers"
grep -qx 'ExecStart=/usr/local/bin/kvd --config-file /etc/kvd/kvd.yaml' "$cfg/kvd.service" &&
    pass "kvd.service ExecStart" || fail "kvd.service ExecStart"

for n in "${nodes[@]}"; do
    SERVER_DATA[$n]=$COMPAT_TMP/$n.data
    SERVER_LOG[$n]=$COMPAT_TMP/$n.log
    SERVER_BIN[$n]=$KVD_BIN
    s=(-e "s#/etc/kubernetes/pki#$PKI#g" -e "s#/var/lib/kvd#${SERVER_DATA[$n]}#g" -e "s#0\.0\.0\.0:2379#127.0.0.1:${SERVER_CPORT[$n]}#"
        -e "s#0\.0\.0\.0:2380#127.0.0.1:${SERVER_PPORT[$n]}#")
    for m in "${nodes[@]}"; do
        s+=(-e "s#https://$m:2379#https://localhost:${SERVER_CPORT[$m]}#g" -e "s#https://$m:2380#https://localhost:${SERVER_PPORT[$m]}#g")
    done
    sed "${s[@]}" "$cfg/$n.yaml" >"$COMPAT_TMP/$n.yaml"
    # kvd's own setting, in the config file as on the command line.
    [[ $n == n1 ]] && echo "block-cache-bytes: 16777216" >>"$COMPAT_TMP/$n.yaml"
    # etcd settings: one kvd accepts without effect (noted, not refused), and two it implements.
    [[ $n == n2 ]] && printf 'max-wals: 5\nexperimental-initial-corrupt-check: true\nlog-level: info\n' >>"$COMPAT_TMP/$n.yaml"
    # Lines of etcd's sample config file: empty settings keep their defaults, the v2 proxy is off.
    [[ $n == n3 ]] && printf "listen-metrics-urls:\nwal-dir:\ndiscovery:\nproxy: 'off'\nproxy-dial-timeout: 1000\n" >>"$COMPAT_TMP/$n.yaml"
    NODE_ARGS[$n]=$(printf '%q ' --config-file "$COMPAT_TMP/$n.yaml")
    _node_exec "$n"
done
if wait_healthy "$START_TIMEOUT" "${nodes[@]}"; then pass "members from n1..n3.yaml serve"; else fail "members from n1..n3.yaml did not become healthy"; fi
expect_eq "member list" "n1 n2 n3" "$(cctl member list 2>/dev/null | awk -F', ' '{print $3}' | sort | paste -sd ' ')"
expect_eq "advertised client URLs use the host names" 3 "$(cctl member list 2>/dev/null | grep -c 'https://localhost:')"
if [[ $(cctl endpoint health --cluster 2>&1 | grep -c ' is healthy') == 3 ]]; then pass "endpoint health --cluster"; else fail "endpoint health --cluster"; fi
expect_eq "n2 notes the setting it takes without effect" 1 \
    "$(grep -c 'flag=--max-wals=5 .*etcd flag accepted without effect' "${SERVER_LOG[n2]}")"
expect_eq "n2 ran the initial corruption check" 1 "$(grep -c 'initial corruption checking passed' "${SERVER_LOG[n2]}")"
refused=$("$KVD_BIN" --data-dir "$COMPAT_TMP/refused" --block-cache-bytes 0 2>&1)
expect_eq "--block-cache-bytes 0 is refused" 1 "$(grep -c -- '--block-cache-bytes must be positive, got 0' <<<"$refused")"
summary configs
