#!/usr/bin/env bash
# bench-cluster.sh — kvd against etcd 3.4, three members each, mutual TLS, on loopback, in one run.
#
# Starts a three-member mTLS kvd cluster, runs every shape with two load generators — kvd's own
# (Benchmarks/LoadGenerator) and etcd's tools/benchmark (built by scripts/build-etcd-tool.sh, so
# that both servers are also measured by a tool neither side wrote) — stops it, then does the same
# with a three-member mTLS etcd cluster (one cluster at a time: the machine has 2 cores), and prints a
# side-by-side table of QPS, p50 and p99 with kvd/etcd ratios, plus every command it ran.
#
#   scripts/bench-cluster.sh                 # all shapes, default totals (each run ~10-20 s on etcd)
#   SCALE=0.2 scripts/bench-cluster.sh       # every --total times 0.2 (a quick look)
#   SHAPES="put-1-1 range-l" scripts/bench-cluster.sh
#
# Shapes (etcd's benchmark flags; key size 8, value size 256, random keys over a 100000-key space):
#   put-1-1      put --conns 1   --clients 1
#   put-10-100   put --conns 10  --clients 100
#   put-100-1000 put --conns 100 --clients 1000
#   put-seq      put --conns 10  --clients 100 --sequential-keys
#   range-l      range foo --consistency l --conns 10 --clients 100
#   range-s      range foo --consistency s --conns 10 --clients 100
# Every run lists all three members in --endpoints, leader first (so a 1/1 run talks to the leader
# in both clusters); connections are dialled round-robin over them by both tools.
#
# Environment: KVD_BIN (default <repo>/.build-release/release/kvd), ETCD_BIN (default etcd),
# ETCDCTL (default etcdctl), LOADGEN_BIN (default <repo>/.build-release/release/LoadGenerator),
# ETCD_BENCH_BIN (default: built/cached by scripts/build-etcd-tool.sh), SCALE (default 1),
# SHAPES (default all above), TOOLS ("loadgen etcd-bench"), SERVERS ("kvd etcd"),
# RUN_TIMEOUT (seconds per run, default 300), KEEP=1 keeps the work directory (data, logs, outputs).
# Output: the table on stdout and in WORKDIR/results.md; raw outputs in WORKDIR/out/.
# Only the PIDs this script started are ever signalled.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/bench-lib.sh"
repo=$(cd "$here/.." && pwd)
KVD_BIN=${KVD_BIN:-$repo/.build-release/release/kvd}
ETCD_BIN=${ETCD_BIN:-etcd}
ETCDCTL=${ETCDCTL:-etcdctl}
LOADGEN_BIN=${LOADGEN_BIN:-$repo/.build-release/release/LoadGenerator}
SCALE=${SCALE:-1}
SHAPES=${SHAPES:-put-1-1 put-10-100 put-100-1000 put-seq range-l range-s}
TOOLS=${TOOLS:-loadgen etcd-bench}
SERVERS=${SERVERS:-kvd etcd}
RUN_TIMEOUT=${RUN_TIMEOUT:-300}
KEEP=${KEEP:-0}
export ETCDCTL_API=3

for s in $SHAPES; do [[ -n ${shape_args[$s]:-} ]] || { echo "unknown shape $s" >&2; exit 2; }; done

need_servers
for tool in $TOOLS; do
    case $tool in
    loadgen) need "$LOADGEN_BIN" "make release" ;;
    etcd-bench)
        if [[ -z ${ETCD_BENCH_BIN:-} ]]; then ETCD_BENCH_BIN=$("$here/build-etcd-tool.sh" benchmark | tail -n 1); fi
        need "$ETCD_BENCH_BIN" "scripts/build-etcd-tool.sh" ;;
    *) echo "unknown tool $tool" >&2; exit 2 ;;
    esac
done

make_workdir kvd-bench
mkdir -p "$work/out"

# start_cluster SERVER, then the key the range shapes read: 256 bytes, as a put shape would write it.
start_bench_cluster() {
    start_cluster "$1"
    timeout 10 "$ETCDCTL" --endpoints="$endpoints" $tls put foo "$(head -c 128 /dev/urandom | od -An -tx1 | tr -d ' \n')" >/dev/null
}

# run_one SERVER TOOL SHAPE: one run, its output in out/SERVER.TOOL.SHAPE.txt.
run_one() {
    local server=$1 tool=$2 shape=$3 bin total args cmd out
    bin=$([[ $tool == loadgen ]] && echo "$LOADGEN_BIN" || echo "$ETCD_BENCH_BIN")
    total=$(python3 -c "print(max(1, int(${shape_total[$shape]} * $SCALE)))")
    args=${shape_args[$shape]}
    # etcd's tool takes the global flags before the subcommand; the load generator takes them after it.
    local globals=${args%% put *} rest
    [[ $args == *" put "* ]] || globals=${args%% range *}
    rest=${args#"$globals "}
    if [[ $tool == loadgen ]]; then
        cmd="$bin ${rest%% *} --endpoints $endpoints $tls $globals ${rest#* } --total $total"
    else
        cmd="$bin --endpoints $endpoints $tls $globals $rest --total $total"
    fi
    out=$work/out/$server.$tool.$shape.txt
    echo "$cmd" >>"$work/commands.txt"
    echo "-- $server $tool $shape: $cmd" >&2
    # etcd's tool draws a progress bar on stderr; keep only stdout (the report) and errors.
    if ! timeout -k 5 "$RUN_TIMEOUT" $cmd >"$out" 2>"$out.err"; then
        echo "   (run failed or exceeded ${RUN_TIMEOUT}s; see $out.err)" >&2
        echo "FAILED" >>"$out"
    fi
    grep -E 'Requests/sec|^  (50|99)% in' "$out" | tr -s '\t ' ' ' | sed 's/^/   /' >&2 || true
}

: >"$work/commands.txt"
{
    echo "# $(date -u +%FT%TZ) on $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "# kvd: $KVD_BIN; etcd: $("$ETCD_BIN" --version | head -1)"
} >>"$work/commands.txt"
for server in $SERVERS; do
    start_bench_cluster "$server"
    for shape in $SHAPES; do
        for tool in $TOOLS; do run_one "$server" "$tool" "$shape"; done
    done
    stop_cluster
done

# The table: one row per shape and tool; kvd/etcd ratios (QPS: higher is better for kvd above 1;
# latency: lower is better for kvd below 1).
python3 - "$work" "$SHAPES" "$TOOLS" "$SCALE" >"$work/results.md" <<'PY'
import re, sys, os
work, shapes, tools, scale = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(), sys.argv[4]
names = {"loadgen": "kvd LoadGenerator", "etcd-bench": "etcd tools/benchmark"}
label = {"put-1-1": "put 1 conn / 1 client", "put-10-100": "put 10 / 100", "put-100-1000": "put 100 / 1000",
         "put-seq": "put 10 / 100, sequential keys", "range-l": "range linearizable 10 / 100",
         "range-s": "range serializable 10 / 100"}
def parse(path):
    if not os.path.exists(path): return None
    text = open(path).read()
    r = {}
    m = re.search(r"Requests/sec:\s+([\d.]+)", text); r["qps"] = float(m.group(1)) if m else None
    m = re.search(r"^\s+50% in ([\d.]+) secs", text, re.M); r["p50"] = float(m.group(1)) * 1000 if m else None
    m = re.search(r"^\s+99% in ([\d.]+) secs", text, re.M); r["p99"] = float(m.group(1)) * 1000 if m else None
    m = re.search(r"Average:\s+([\d.]+) secs", text); r["avg"] = float(m.group(1)) * 1000 if m else None
    r["errors"] = sum(int(n) for n in re.findall(r"^\s+\[(\d+)\]\t", text, re.M))
    r["failed"] = "FAILED" in text
    return r
def fmt(v, unit=""):
    return "—" if v is None else (f"{v:,.0f}" if unit == "qps" else f"{v:.1f}")
def ratio(a, b):
    return "—" if a is None or b is None or b == 0 else f"{a / b:.2f}"
print("| shape | load generator | kvd QPS | etcd QPS | QPS kvd/etcd | kvd p50 ms | etcd p50 ms | p50 kvd/etcd | kvd p99 ms | etcd p99 ms | p99 kvd/etcd | errors kvd / etcd |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for s in shapes:
    for t in tools:
        k = parse(f"{work}/out/kvd.{t}.{s}.txt") or {}
        e = parse(f"{work}/out/etcd.{t}.{s}.txt") or {}
        err = f"{k.get('errors', '—')}{' (run failed)' if k.get('failed') else ''} / {e.get('errors', '—')}{' (run failed)' if e.get('failed') else ''}"
        print(f"| {label[s]} | {names[t]} | {fmt(k.get('qps'), 'qps')} | {fmt(e.get('qps'), 'qps')} | {ratio(k.get('qps'), e.get('qps'))} "
              f"| {fmt(k.get('p50'))} | {fmt(e.get('p50'))} | {ratio(k.get('p50'), e.get('p50'))} "
              f"| {fmt(k.get('p99'))} | {fmt(e.get('p99'))} | {ratio(k.get('p99'), e.get('p99'))} | {err} |")
PY
echo
cat "$work/results.md"
echo
echo "Commands (servers, then each run in order):"
cat "$work/commands.txt"
if [[ $KEEP == 1 ]]; then echo "raw outputs: $work/out"; fi
