#!/usr/bin/env bash
# Tests/Cluster/force-new-cluster.sh: etcd's --force-new-cluster, the way out of a quorum lost for
# good, kvd beside etcd 3.4 (the same steps on a three-member cluster of each):
#   - 60 keys written, then all three members stopped (kvd: kill -9) and one restarted alone with
#     --force-new-cluster: it serves, as the only member (same cluster ID), with every key, and
#     takes writes on its own;
#   - restarted again without the flag it stays a one-member cluster with its data;
#   - a new member added to it joins and catches up (kvd).
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cluster_init force-new-cluster

members_of() { nctl "$1" "${FAST[@]}" member list 2>/dev/null | awk -F', ' '{print $3}' | sort | paste -sd ' '; }
cluster_id() { nctl "$1" "${FAST[@]}" endpoint status -w json 2>/dev/null | grep -o '"cluster_id":[0-9]*' | head -1; }

for kind in kvd etcd; do
    bin=$KVD_BIN; [[ $kind == etcd ]] && bin=$ETCD_BIN
    p=${kind:0:1}
    names=("${p}1" "${p}2" "${p}3")
    KVD_BIN=$bin cluster_start "${names[@]}"
    put_many "${p}1" k/ 60 4 || fail "$kind: 60 puts"
    before=$(cluster_id "${p}1")
    # The member to force must know that the writes committed (force-new-cluster drops what lies
    # beyond the commit index it persisted, in etcd as in kvd).
    wait_caught_up 20 "${p}1" k/ 60 || fail "$kind: ${p}1 did not apply the 60 puts"
    if [[ $kind == kvd ]]; then
        for n in "${names[@]}"; do node_kill9 "$n"; done
    else
        # etcd buffers its WAL in the process until the next fsync, so after kill -9 its persisted
        # commit index can lag the writes it acknowledged, and the forced member then drops them
        # (seen in CI); it is stopped as an operator would stop it.
        for n in "${names[@]}"; do node_stop "$n"; done
    fi
    KVD_BIN=$bin node_start "${p}1" existing "$(initial_cluster "${names[@]}")" --force-new-cluster
    if wait_healthy "$START_TIMEOUT" "${p}1"; then pass "$kind: the forced member serves"; else fail "$kind: the forced member did not become healthy"; fi
    expect_eq "$kind: it is the only member" "${p}1" "$(members_of "${p}1")"
    expect_eq "$kind: the same cluster" "$before" "$(cluster_id "${p}1")"
    expect_eq "$kind: every key is there" 0 "$(check_keys "${p}1" k/ 60)"
    if nctl "${p}1" "${FAST[@]}" put after force >/dev/null 2>&1; then pass "$kind: it takes writes alone"; else fail "$kind: a write failed"; fi
    node_stop "${p}1"
    KVD_BIN=$bin node_start "${p}1" existing "$(initial_cluster "${names[@]}")"
    if wait_healthy "$START_TIMEOUT" "${p}1"; then pass "$kind: restarted without the flag"; else fail "$kind: no restart without the flag"; fi
    expect_eq "$kind: still the only member" "${p}1" "$(members_of "${p}1")"
    expect_eq "$kind: still every key" "force" "$(nctl "${p}1" get after --print-value-only 2>/dev/null)"
    [[ $kind == etcd ]] && node_stop "${p}1"
done

# A new member joins the forced cluster.
node_ports k4
if out=$(nctl k1 "${FAST[@]}" member add k4 --peer-urls="$(peer_url k4)" 2>&1); then pass "member add k4"; else fail "member add k4: $out"; fi
node_start k4 existing "k1=$(peer_url k1),k4=$(peer_url k4)"
if wait_caught_up 30 k4 k/ 60; then pass "k4 joins and catches up"; else fail "k4 did not catch up"; fi
expect_eq "two members" "k1 k4" "$(members_of k1)"
summary force-new-cluster
