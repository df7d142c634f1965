#!/usr/bin/env bash
# Tests/Jepsen/run-all.sh: the checker's unit tests, the issue-4 partition test, the
# snapshot-identity regression test (BUGS.md #2) and a short Jepsen run (JEPSEN_DURATION, default 30 s; JEPSEN_SEED, default time-based).
# Needs root (network namespaces), iproute2, iptables, etcdctl (etcd-client), openssl,
# python3. Bounded: about 2.5 minutes (each step has a timeout). Last line: "jepsen: N passed, N failed".
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
passed=0 failed=0
step() { # NAME TIMEOUT CMD...
    local name=$1 t=$2; shift 2
    echo "=== $name"
    local rc=0
    timeout -k 10 "$t" "$@" || rc=$?
    if ((rc == 0)); then
        passed=$((passed + 1)); echo "=== $name: passed"
    else
        failed=$((failed + 1)); echo "=== $name: FAILED (exit $rc)"
    fi
}
step "checker unit tests" 60 python3 -m unittest discover -s "$here" -p 'test_*.py'
step "partition" 120 bash "$here/partition.sh"
# BUGS.md #2, deterministic: a member that caught up by snapshot must keep its identity.
step "snapshot identity" 90 bash "$here/repro-snapshot-identity.sh"
seed_args=()
[[ -n ${JEPSEN_SEED:-} ]] && seed_args=(--seed "$JEPSEN_SEED")
step "jepsen ${JEPSEN_DURATION:-30}s" $((${JEPSEN_DURATION:-30} + 90)) \
    bash "$here/jepsen.sh" --duration "${JEPSEN_DURATION:-30}" "${seed_args[@]}"
echo "jepsen: $passed passed, $failed failed"
((failed == 0))
