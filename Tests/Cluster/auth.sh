#!/usr/bin/env bash
# Tests/Cluster/auth.sh: users and roles on three mutual-TLS members, kvd beside etcd 3.4 (auth
# stays disabled). The same steps run against both clusters and each step's outcome (exit
# status and output, without clientv3's retry warnings) must match:
#   - changes made through one member are seen at once by linearizable reads on the others;
#     refused changes (a duplicate user, a role that does not exist) fail alike;
#   - `auth enable` without a root user fails alike;
#   - users and roles survive a restart of every member.
# Then kvd only: `auth enable` with a root user: etcdctl creates the root role and grants it (as
# against etcd), then kvd refuses to enable authentication (etcd would enable it), and requests
# without credentials keep working.
# About 30 s on a 2-core machine.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cluster_init auth
[[ -x $ETCD_BIN ]] || die "etcd binary '$ETCD_BIN' not found (apt-get install etcd-server)"

# outcome NAME ARGS...: "exit N: output" of etcdctl against member NAME, lines joined by ';'
# (without clientv3's retry warnings).
outcome() {
    local n=$1 out rc=0; shift
    out=$(nctl "$n" "$@" 2>&1) || rc=$?
    echo "exit $rc: $(grep -v '^{"level"' <<<"$out" | paste -sd ';')"
}

scenario() {
    local p=$1 bin=$2 n ic
    for n in 1 2 3; do node_ports "$p$n"; done
    ic=$(initial_cluster "${p}1" "${p}2" "${p}3")
    for n in 1 2 3; do KVD_BIN=$bin node_start "$p$n" new "$ic"; done
    wait_healthy "$START_TIMEOUT" "${p}1" "${p}2" "${p}3" || die "cluster $p did not become healthy"
    {
        echo "user add via 1: $(outcome "${p}1" user add alice:pw)"
        echo "role add via 2: $(outcome "${p}2" role add readers)"
        echo "grant-permission via 3: $(outcome "${p}3" role grant-permission readers read --prefix /r/)"
        echo "grant-permission via 1: $(outcome "${p}1" role grant-permission readers readwrite /w/ /x/)"
        echo "grant-role via 2: $(outcome "${p}2" user grant-role alice readers)"
        for n in 1 2 3; do echo "user get --detail on $n: $(outcome "$p$n" user get alice --detail)"; done
        echo "role get -w fields on 3: $(outcome "${p}3" role get readers -w fields | sed -E 's/("(ClusterID|MemberID|RaftTerm)" : )[0-9]+/\1<n>/g')"
        echo "duplicate user via 2: $(outcome "${p}2" user add alice:other)"
        echo "missing role via 3: $(outcome "${p}3" user grant-role alice writers)"
        echo "auth enable without root: $(outcome "${p}1" auth enable)"
        echo "root user via 3: $(outcome "${p}3" user add root:rootpw)"
        echo "user list on 2: $(outcome "${p}2" user list)"
        echo "put: $(outcome "${p}1" put /r/k v)"
    } >"$COMPAT_TMP/$p.steps"
    for n in 1 2 3; do node_stop "$p$n"; done
    for n in 1 2 3; do node_restart "$p$n"; done
    wait_healthy "$START_TIMEOUT" "${p}1" "${p}2" "${p}3" || die "cluster $p did not come back after the restart"
    {
        for n in 1 2 3; do
            echo "users after a restart, on $n: $(outcome "$p$n" user list)"
            echo "user get --detail after a restart, on $n: $(outcome "$p$n" user get alice --detail)"
        done
        echo "roles after a restart: $(outcome "${p}2" role list)"
    } >>"$COMPAT_TMP/$p.steps"
}

scenario e "$ETCD_BIN"
for n in 1 2 3; do node_kill9 "e$n"; done
scenario k "$KVD_BIN"
while IFS= read -r want && IFS= read -r got <&3; do
    if [[ $want == "$got" ]]; then pass "$got"; else fail "etcd: '$want', kvd: '$got'"; fi
done <"$COMPAT_TMP/e.steps" 3<"$COMPAT_TMP/k.steps"
[[ $(wc -l <"$COMPAT_TMP/k.steps") -ge 20 ]] || fail "kvd ran only $(wc -l <"$COMPAT_TMP/k.steps") steps"

expect_eq "auth enable with a root user is refused by kvd" \
    "exit 1: Error: rpc error: code = FailedPrecondition desc = etcdserver: kvd does not enable authentication; clients are authenticated by their TLS certificates" \
    "$(outcome k2 auth enable)"
expect_eq "etcdctl created and granted the root role first" "exit 0: User: root;Roles: root" "$(outcome k3 user get root)"
expect_eq "requests without credentials still work" "exit 0: v" "$(outcome k1 get /r/k --print-value-only)"
summary auth
