#!/usr/bin/env bash
# Tests/Cluster/auth.sh: users and roles on a three-member mutual-TLS kvd cluster (auth stays
# disabled; Tests/Compat/differential.sh compares each command's output with etcd 3.4's):
#   - changes made through one member are seen at once by linearizable reads on the others;
#   - `auth enable` without a root user fails as etcd's does; with one, etcdctl creates the
#     root role and grants it (as against etcd), then kvd refuses to enable authentication,
#     and requests without credentials keep working;
#   - users and roles survive a restart of every member.
# About 15 s on a 2-core machine.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cluster_init auth
nodes=(n1 n2 n3)
cluster_start "${nodes[@]}"
wait_one_leader 10 "${nodes[@]}" >/dev/null || die "no single leader"

# outcome NAME ARGS...: "exit N: output" of etcdctl against member NAME, lines joined by ';'
# (without clientv3's retry warnings).
outcome() {
    local n=$1 out rc=0; shift
    out=$(nctl "$n" "$@" 2>&1) || rc=$?
    echo "exit $rc: $(grep -v '^{"level"' <<<"$out" | paste -sd ';')"
}

expect_eq "user add through n1" "exit 0: User alice created" "$(outcome n1 user add alice:pw)"
expect_eq "role add through n2" "exit 0: Role readers created" "$(outcome n2 role add readers)"
expect_eq "grant-permission through n3" "exit 0: Role readers updated" \
    "$(outcome n3 role grant-permission readers read --prefix /r/)"
expect_eq "grant-role through n1" "exit 0: Role readers is granted to user alice" \
    "$(outcome n1 user grant-role alice readers)"
detail="exit 0: User: alice;;Role readers;KV Read:;	[/r/, /r0) (prefix /r/);KV Write:"
for n in "${nodes[@]}"; do
    expect_eq "user get --detail on $n" "$detail" "$(outcome "$n" user get alice --detail)"
done
expect_eq "a duplicate user through n2" "exit 1: Error: etcdserver: user name already exists" \
    "$(outcome n2 user add alice:other)"

expect_eq "auth enable without a root user" "exit 1: Error: etcdserver: root user does not exist" \
    "$(outcome n1 auth enable)"
nctl n1 user add root:rootpw >/dev/null || fail "user add root"
expect_eq "auth enable with a root user is refused by kvd" \
    "exit 1: Error: rpc error: code = FailedPrecondition desc = etcdserver: kvd does not enable authentication; clients are authenticated by their TLS certificates" \
    "$(outcome n2 auth enable)"
expect_eq "etcdctl created and granted the root role first" "exit 0: User: root;Roles: root" "$(outcome n3 user get root)"
expect_eq "requests without credentials still work" "exit 0: OK" "$(outcome n1 put /r/k v)"

for n in "${nodes[@]}"; do node_stop "$n"; done
for n in "${nodes[@]}"; do node_restart "$n"; done
wait_healthy "$START_TIMEOUT" "${nodes[@]}" || die "cluster did not come back after the restart"
for n in "${nodes[@]}"; do
    expect_eq "users after a restart, on $n" "exit 0: alice;root" "$(outcome "$n" user list)"
    expect_eq "user get --detail after a restart, on $n" "$detail" "$(outcome "$n" user get alice --detail)"
done
expect_eq "roles after a restart" "exit 0: readers;root" "$(outcome n2 role list)"
summary auth
