#!/usr/bin/env bash
# Runs etcd 3.4.23's own end-to-end suite (tests/e2e, built offline by scripts/build-etcd-tool.sh
# e2e) with kvd as its `etcd`, or with etcd itself for the baseline. The suite starts its
# clusters from BIN_DIR/etcd and drives them with BIN_DIR/etcdctl.
#
#   scripts/run-etcd-e2e.sh [kvd|etcd]     # default kvd
#
# Environment: KVD_BIN (default .build/debug/kvd), ETCD_BIN (/usr/bin/etcd), CTL=etcdctl|kvctl
# (which etcdctl the suite drives: Debian's etcdctl 3.4.23, or kvctl; default etcdctl), KVCTL_BIN,
# RUN (a Go regexp of the tests to run; default every test but the v2 API's), OUT (where the log
# and summary go; default a new directory under /tmp).
# Prints one line per test (PASS/FAIL/SKIP) into OUT/results.txt and a summary on its last line:
#   e2e (kvd, etcdctl): N passed, M failed, K skipped of T
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
server=${1:-kvd}
ctl=${CTL:-etcdctl}
case $server in
kvd) server_bin=${KVD_BIN:-$repo/.build/debug/kvd} ;;
etcd) server_bin=${ETCD_BIN:-/usr/bin/etcd} ;;
*) echo "usage: $0 [kvd|etcd]" >&2; exit 2 ;;
esac
case $ctl in
etcdctl) ctl_bin=${ETCDCTL_BIN:-/usr/bin/etcdctl} ;;
kvctl) ctl_bin=${KVCTL_BIN:-$repo/.build/debug/kvctl} ;;
*) echo "CTL must be etcdctl or kvctl" >&2; exit 2 ;;
esac
for bin in "$server_bin" "$ctl_bin"; do
    [[ -x $bin ]] || { echo "run-etcd-e2e: $bin not found (build it first)" >&2; exit 1; }
done

e2e=$("$here/build-etcd-tool.sh" e2e | tail -n 1) || exit 1
fixtures=$(dirname "$e2e")/fixtures
out=${OUT:-$(mktemp -d /tmp/etcd-e2e.XXXXXX)}
# The suite runs in a directory two levels down, as in etcd's tree (tests/e2e): one test reads
# ../../etcd.conf.yml.sample, the JWT tests ../../integration/fixtures/server.{crt,key.insecure}.
run=$out/tree/tests/e2e
mkdir -p "$out/bin" "$run" "$out/tree/integration"
cp "$(dirname "$e2e")/etcd.conf.yml.sample" "$out/tree/"
ln -sfn "$fixtures" "$out/tree/integration/fixtures"
ln -sf "$(readlink -f "$server_bin")" "$out/bin/etcd"
ln -sf "$(readlink -f "$ctl_bin")" "$out/bin/etcdctl"

# Every test but the v2 API's (kvd serves only v3): Go 1.19's test binary has no -test.skip.
if [[ -z ${RUN:-} ]]; then
    RUN="^($("$e2e" -test.list '.*' | grep -v -i 'v2' | paste -sd '|'))\$"
fi
tests=$("$e2e" -test.list "$RUN")
total=$(wc -l <<<"$tests")
echo "run-etcd-e2e: $total tests against $server ($server_bin) with $ctl; log in $out/e2e.log" >&2
# One test binary run per test: a test that fails can leave its members running (the suite
# does not always close its cluster on t.Fatal), and every later test would then fail to bind
# the same ports. What a test leaves behind is killed before the next one starts: only
# processes started from this run's own bin directory.
: >"$out/e2e.log"
for test in $tests; do
    (cd "$run" && timeout 600 "$e2e" -test.v -test.run "^$test\$" -bin-dir "$out/bin" -cert-dir "$fixtures") \
        >>"$out/e2e.log" 2>&1
    pkill -KILL -f "^$out/bin/etcd" 2>/dev/null
    rm -rf "${run:?}"/*
done
# Top-level results only (subtests are indented).
grep -E '^--- (PASS|FAIL|SKIP): ' "$out/e2e.log" | awk '{print $2, $3}' >"$out/results.txt"
passed=$(grep -c '^PASS' "$out/results.txt")
failed=$(grep -c '^FAIL' "$out/results.txt")
skipped=$(grep -c '^SKIP' "$out/results.txt")
# A test that never reported (the binary died or timed out) counts as failed.
missing=$((total - passed - failed - skipped))
((missing > 0)) && failed=$((failed + missing))
echo "e2e ($server, $ctl): $passed passed, $failed failed, $skipped skipped of $total"
[[ $failed -eq 0 ]]
