#!/usr/bin/env bash
# Tests/Compat/run-all.sh: runs the compatibility suites in order and totals them:
#   differential.sh, bad-requests.sh, python-clients.sh, range-stream.sh, large-ranges.sh, direct-calls.sh, bridge.sh, etcdctl-kvd.sh, kvctl-vs-etcdctl.sh, durability.sh,
#   shutdown.sh
# Each suite's failures go to stderr; its result line is printed here, then
#   compat: N passed, M failed
# (exit non-zero if any failed). A suite that dies without a result line counts
# as one failure.
#   TARGET=kvd|etcd (server under test for all suites, default kvd; DIFF_TARGET
#   defaults to it). Validate the harness with:
#   TARGET=etcd KVCTL_BIN=/usr/bin/etcdctl Tests/Compat/run-all.sh
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export TARGET=${TARGET:-kvd}
export DIFF_TARGET=${DIFF_TARGET:-$TARGET}

total_pass=0
total_fail=0
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
for suite in differential bad-requests python-clients range-stream large-ranges direct-calls bridge etcdctl-kvd kvctl-vs-etcdctl durability shutdown; do
    rc=0
    "$here/$suite.sh" >"$tmp" || rc=$?
    line=$(grep -E "^$suite: [0-9]+ passed, [0-9]+ failed$" "$tmp" | tail -n 1)
    if [[ -z $line ]]; then
        cat "$tmp"
        line="$suite: 0 passed, 1 failed (exited $rc without a result)"
        total_fail=$((total_fail + 1))
    else
        p=${line#*: }; p=${p%% passed*}
        f=${line##*, }; f=${f%% failed*}
        total_pass=$((total_pass + p))
        total_fail=$((total_fail + f))
        if [[ $rc -ne 0 && $f -eq 0 ]]; then
            line="$line (but exited $rc)"
            total_fail=$((total_fail + 1))
        fi
    fi
    echo "$line"
done
echo "compat: $total_pass passed, $total_fail failed"
[[ $total_fail -eq 0 ]]
