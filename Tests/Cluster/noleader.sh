#!/usr/bin/env bash
# Tests/Cluster/noleader.sh: a member that has lost its leader, kvd beside etcd 3.4 (three mTLS
# members each). etcdctl's watch asks for a leader (gRPC metadata hasleader=true, as
# kube-apiserver's watches do); once two members are killed, the survivor cancels that watch with
# "etcdserver: no leader" within a few election timeouts, answers linearizable reads and puts
# with etcd's error, still serves serializable reads, reports unhealthy through endpoint health,
# and lists "etcdserver: no leader" in its Status errors.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cluster_init noleader
[[ -x $ETCD_BIN ]] || die "etcd binary '$ETCD_BIN' not found (apt-get install etcd-server)"

scenario() {
    local p=$1 bin=$2 n ic out=$COMPAT_TMP/$1 w start
    for n in 1 2 3; do node_ports "$p$n"; done
    ic=$(initial_cluster "${p}1" "${p}2" "${p}3")
    for n in 1 2 3; do KVD_BIN=$bin node_start "$p$n" new "$ic"; done
    wait_healthy "$START_TIMEOUT" "${p}1" "${p}2" "${p}3" || die "cluster $p did not become healthy"
    nctl "${p}1" put foo bar >/dev/null || fail "$p: put"
    CMD_TIMEOUT=60 nctl "${p}1" watch foo >"$out.watch" 2>"$out.watch-err" &
    w=$!
    sleep 1
    node_kill9 "${p}2"; node_kill9 "${p}3"
    start=$SECONDS
    while kill -0 "$w" 2>/dev/null && ((SECONDS - start < 20)); do sleep 0.2; done
    if kill -0 "$w" 2>/dev/null; then
        echo "watch: still running after 20 s" >"$out.steps"; kill "$w"
    else
        wait "$w"; echo "watch: exit $?: $(grep -v '^{"level"' "$out.watch-err" | tail -n 1)" >"$out.steps"
        echo "watch output: $(paste -sd ' ' "$out.watch")" >>"$out.steps"
        log "$p: watch canceled $((SECONDS - start)) s after losing the quorum"
    fi
    {
        echo "get: $(CMD_TIMEOUT=20 nctl "${p}1" --command-timeout=3s get foo 2>&1 | grep -v '^{"level"' | tail -n 1)"
        echo "put: $(CMD_TIMEOUT=20 nctl "${p}1" --command-timeout=3s put foo baz 2>&1 | grep -v '^{"level"' | tail -n 1)"
        echo "serializable get: $(nctl "${p}1" get foo --consistency=s --print-value-only 2>&1)"
        echo "health: $(CMD_TIMEOUT=20 nctl "${p}1" endpoint health 2>&1 | grep -v '^{"level"' | sed -E 's/took = [^:]*: //; s/127.0.0.1:[0-9]+/<ep>/g' | paste -sd ' ')"
        echo "status errors: $(nctl "${p}1" endpoint status -w json 2>&1 | grep -o '"errors":\[[^]]*\]')"
    } >>"$out.steps"
    node_kill9 "${p}1"
}

scenario e "$ETCD_BIN"
scenario k "$KVD_BIN"
# etcd ends a proposal when the client's deadline passes, so its answer races the client's own
# timeout ("rpc error: code = Unknown desc = context deadline exceeded" or the client's message).
sed -i 's/rpc error: code = Unknown desc = context deadline exceeded/context deadline exceeded/' "$COMPAT_TMP/e.steps" "$COMPAT_TMP/k.steps"
while IFS= read -r want && IFS= read -r got <&3; do
    if [[ $want == "$got" ]]; then pass "$got"; else fail "etcd: '$want', kvd: '$got'"; fi
done <"$COMPAT_TMP/e.steps" 3<"$COMPAT_TMP/k.steps"
summary noleader
