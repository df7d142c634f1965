#!/usr/bin/env bash
# bench-ab.sh — two or more server binaries A/B'd on the same shapes, alternated round by round, with
# the machine's CPU per request: how a change to the hot path is kept or dropped.
#
#   scripts/bench-ab.sh ROUNDS NAME=BINARY [NAME=BINARY ...]
#   scripts/bench-ab.sh 3 before=/tmp/kvd-old after=.build-release/release/kvd etcd=etcd
#   SHAPES="put-10-100 range-l" SCALE=0.3 scripts/bench-ab.sh 3 ...   (shapes and totals: bench-lib.sh)
#
# Each run starts a fresh three-member mTLS cluster (scripts/bench-lib.sh), warms it with 300 puts,
# runs etcd's tools/benchmark (scripts/build-etcd-tool.sh), and prints one line:
#   round R SHAPE NAME qps=... p50=... p99=... cpu_us=...
# where cpu_us is the utime+stime of the three members over the run divided by its requests. A binary
# named "etcd" (or whose path ends in /etcd) is started as etcd. Only PIDs this script started are signalled.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
. "$here/bench-lib.sh"
ETCDCTL=${ETCDCTL:-etcdctl}
BENCH=${ETCD_BENCH_BIN:-$(bash "$here/build-etcd-tool.sh" benchmark | tail -n 1)}
rounds=${1:?usage: $0 ROUNDS NAME=BINARY ...}
shift
(($# >= 1)) || { echo "usage: $0 ROUNDS NAME=BINARY ..." >&2; exit 2; }
export ETCDCTL_API=3

SHAPES=${SHAPES:-put-1-1 put-10-100 range-l range-s}
SCALE=${SCALE:-0.3}

cpu_of_members() {
    local total=0 pid
    for pid in "${pids[@]}"; do total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat"))); done
    echo "$total"
}

# one_run NAME BINARY SHAPE ROUND: a fresh cluster, one benchmark run, one line.
one_run() {
    local name=$1 bin=$2 shape=$3 round=$4 server args total out before after
    server=kvd
    [[ $bin == etcd || $bin == */etcd ]] && server=etcd
    KVD_BIN=$bin ETCD_BIN=$bin SERVERS=$server
    make_workdir bench-ab
    start_cluster "$server" >/dev/null
    args=${shape_args[$shape]}
    total=$(python3 -c "print(max(1, int(${shape_total[$shape]} * $SCALE)))")
    "$BENCH" --endpoints="$endpoints" $tls --conns 1 --clients 1 put --key-size 8 --val-size 256 --total 300 >/dev/null 2>&1
    before=$(cpu_of_members)
    out=$("$BENCH" --endpoints="$endpoints" $tls $args --total "$total" 2>&1)
    after=$(cpu_of_members)
    cleanup
    pids=()
    trap - EXIT
    printf 'round %s %s %s qps=%s p50=%s p99=%s cpu_us=%s\n' "$round" "$shape" "$name" \
        "$(grep -o 'Requests/sec:[^0-9]*[0-9.]*' <<<"$out" | grep -o '[0-9.]*$')" \
        "$(grep -o '50% in [0-9.]*' <<<"$out" | grep -o '[0-9.]*$')" \
        "$(grep -o '99% in [0-9.]*' <<<"$out" | grep -o '[0-9.]*$')" \
        "$(python3 -c "print(round(($after - $before) * 1e6 / $(getconf CLK_TCK) / $total, 1))")"
}

for shape in $SHAPES; do [[ -n ${shape_args[$shape]:-} ]] || { echo "unknown shape $shape" >&2; exit 2; }; done
for ((r = 1; r <= rounds; r++)); do
    for shape in $SHAPES; do
        for pair in "$@"; do one_run "${pair%%=*}" "${pair#*=}" "$shape" "$r"; done
    done
done
