#!/usr/bin/env bash
# Tests/Jepsen/seeds.sh [SEEDS [DURATION [FIRST]]]: jepsen.sh once per seed FIRST..FIRST+SEEDS-1
# (defaults 20 seeds of 60 s from seed 1), every nemesis fault in the mix, one after another.
# Prints one line per seed (its faults and result) and last "jepsen seeds: N passed, N failed";
# the logs of a failing seed are copied to JEPSEN_ARTIFACTS/seed-N (default /tmp/kvd-jepsen-failures).
# Bounded: about SEEDS x (DURATION + 45) s. `make jepsen` runs it.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
seeds=${1:-20} duration=${2:-60} first=${3:-1}
artifacts=${JEPSEN_ARTIFACTS:-/tmp/kvd-jepsen-failures}
passed=0 failed=0 failed_seeds=""
for ((seed = first; seed < first + seeds; seed++)); do
    out=$(JEPSEN_ARTIFACTS=$artifacts/seed-$seed timeout -k 10 $((duration + 120)) bash "$here/jepsen.sh" --duration "$duration" --seed "$seed" 2>&1)
    rc=$?
    faults=$(grep '^faults: ' <<<"$out" | tail -1 | sed 's/^faults: //')
    result=$(grep -E '^jepsen: ' <<<"$out" | tail -1)
    if ((rc == 0)); then
        passed=$((passed + 1))
        echo "seed $seed: ${result:-jepsen: ?} ($faults)"
    else
        failed=$((failed + 1)) failed_seeds+=" $seed"
        echo "seed $seed: FAILED (exit $rc) ${result:-} ($faults)"
        grep -E '^FAIL' <<<"$out" | sed 's/^/    /'
    fi
done
echo "jepsen seeds: $passed passed, $failed failed${failed_seeds:+ (seeds$failed_seeds)}"
((failed == 0))
