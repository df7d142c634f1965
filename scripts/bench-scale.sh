#!/usr/bin/env bash
# bench-scale.sh N — kvd against etcd 3.4 at N keys, three mTLS members each on loopback, one cluster at a time.
#
# For kvd, then etcd: start three members, write N sequential 16-byte keys with 256-byte values using etcd's
# own benchmark tool (10 connections / 100 clients), then record per member the data directory and RSS, the
# time of one 10,000-key page (`etcdctl get "" --prefix --limit 10000`, protobuf output), `etcdctl snapshot
# save` from a follower (time and size), one unpaged get of every key from the leader (its time, and how far
# the leader's RSS peaked above where it was), the slowest of a steady trickle of puts while the whole history
# is compacted and every member defragmented, restart all three members (time until all are healthy), and RSS,
# page and snapshot save again. Prints a side-by-side table with kvd/etcd ratios (per-member figures as
# min-max, compared by their minima) and every command it ran.
#
#   scripts/bench-scale.sh 1000000
#   SERVERS=kvd scripts/bench-scale.sh 200000      # one side only
#
# Environment: KVD_BIN (default <repo>/.build-release/release/kvd), ETCD_BIN (etcd), ETCDCTL (etcdctl),
# ETCD_BENCH_BIN (default: scripts/build-etcd-tool.sh's), SERVERS ("kvd etcd"), KEEP=1 keeps the work
# directory. etcd runs with --quota-backend-bytes 8 GiB so that large N does not raise its NOSPACE alarm.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/bench-lib.sh"
repo=$(cd "$here/.." && pwd)
N=${1:?usage: bench-scale.sh NUMBER_OF_KEYS}
KVD_BIN=${KVD_BIN:-$repo/.build-release/release/kvd}
ETCD_BIN=${ETCD_BIN:-etcd}
ETCDCTL=${ETCDCTL:-etcdctl}
SERVERS=${SERVERS:-kvd etcd}
KEEP=${KEEP:-0}
export ETCDCTL_API=3
need_servers
if [[ -z ${ETCD_BENCH_BIN:-} ]]; then ETCD_BENCH_BIN=$("$here/build-etcd-tool.sh" benchmark | tail -n 1); fi
need "$ETCD_BENCH_BIN" "scripts/build-etcd-tool.sh"

make_workdir kvd-scale
: >"$work/commands.txt"
echo "# $(date -u +%FT%TZ) on $(nproc) cores, N=$N; kvd: $KVD_BIN; etcd: $("$ETCD_BIN" --version | head -1)" >>"$work/commands.txt"

now() { date +%s.%N; }
since() { python3 -c "print(f'{$(now) - $1:.2f}')"; }
# record SERVER FIGURE VALUE: one line of results.
record() { echo "$1|$2|$3" >>"$work/results.txt"; }
members() {  # "min-max" of a per-member figure computed by the command in $1 (given a PID and a member number)
    local i values=()
    for i in 0 1 2; do values+=("$($1 "${pids[$i]}" "$i")"); done
    printf '%s\n' "${values[@]}" | sort -n | sed -n '1p;$p' | paste -sd '-'
}
rss_mib() { awk '/VmRSS/{printf "%d", $2 / 1024}' "/proc/$1/status"; }
data_mib() { du -sm "$work/$server/m$2" | cut -f1; }
follower() { local ep; for ep in ${endpoints//,/ }; do [[ $ep == "$leader_ep" ]] || { echo "$ep"; return; }; done; }
page() {  # seconds for one 10,000-key page from the leader
    local started; started=$(now)
    "$ETCDCTL" --endpoints="$leader_ep" $tls --command-timeout=60s get "" --prefix --limit 10000 -w protobuf >/dev/null
    since "$started"
}
leader_pid() { local i; for i in 0 1 2; do [[ 127.0.0.1:${cluster_ports[$((2 * i))]} == "$leader_ep" ]] && echo "${pids[$i]}"; done; }
get_all() {  # "seconds / MiB": one unpaged get of every key, and the leader's peak RSS above its RSS before it
    local pid before started
    pid=$(leader_pid)
    [[ -n $pid ]] || { echo "no leader"; return; }
    echo 5 >"/proc/$pid/clear_refs"  # the peak (VmHWM) starts again from the current RSS
    before=$(awk '/VmRSS/{print $2}' "/proc/$pid/status")
    started=$(now)
    if ! "$ETCDCTL" --endpoints="$leader_ep" $tls --command-timeout=600s get "" --prefix -w protobuf >"$work/get-all.out" 2>&1; then
        echo "failed: $(tail -c 200 "$work/get-all.out" | tail -n 1)"
        rm -f "$work/get-all.out"
        return
    fi
    echo "$(since "$started") s / $(awk -v before="$before" '/VmHWM/{printf "%d", ($2 - before) / 1024}' "/proc/$pid/status") MiB"
    rm -f "$work/get-all.out"
}
compaction_stall() {  # "ms": the slowest put of 200/s from 10 clients while compacting and defragmenting
    local rev load
    rev=$("$ETCDCTL" --endpoints="$leader_ep" $tls endpoint status -w json |
        python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["Status"]["header"]["revision"])')
    "$ETCD_BENCH_BIN" --endpoints "$endpoints" $tls --conns 10 --clients 10 put --key-size 16 --val-size 256 \
        --key-space-size "$N" --rate 200 --total 3000 2>/dev/null | tr '\r' '\n' >"$work/$server.stall.txt" &
    load=$!
    sleep 2
    "$ETCDCTL" --endpoints="$leader_ep" $tls --command-timeout=600s compact "$rev" --physical >/dev/null
    "$ETCDCTL" --endpoints="$endpoints" $tls --command-timeout=600s defrag >/dev/null
    wait "$load"
    awk '/Slowest:/{printf "%.0f", $2 * 1000}' "$work/$server.stall.txt"
}
snapshot_save() {  # "seconds / bytes", or the error
    local started out; started=$(now); rm -f "$work/snapshot.db"
    if out=$(timeout 600 "$ETCDCTL" --endpoints="$(follower)" $tls snapshot save "$work/snapshot.db" 2>&1); then
        echo "$(since "$started") s / $(stat -c %s "$work/snapshot.db") B"
    else
        echo "failed: $(tail -n 1 <<<"$out")"
    fi
}

: >"$work/results.txt"
for server in $SERVERS; do
    SERVER_FLAGS=""
    [[ $server == etcd ]] && SERVER_FLAGS="--quota-backend-bytes 8589934592"
    start_cluster "$server"
    cmd="$ETCD_BENCH_BIN --endpoints $endpoints $tls --conns 10 --clients 100 put --key-size 16 --val-size 256 --sequential-keys --key-space-size $N --total $N"
    echo "$cmd" >>"$work/commands.txt"
    echo "-- $server: loading $N keys" >&2
    $cmd 2>/dev/null | tr '\r' '\n' >"$work/$server.load.txt"
    record "$server" "load QPS" "$(awk '/Requests\/sec/{printf "%d", $2}' "$work/$server.load.txt")"
    record "$server" "load p99 ms" "$(awk '/ 99% in/{printf "%.1f", $3 * 1000}' "$work/$server.load.txt")"
    sleep 5
    record "$server" "data directory per member, MiB" "$(members data_mib)"
    record "$server" "RSS per member, MiB" "$(members rss_mib)"
    record "$server" "10,000-key page, s" "$(page)"
    record "$server" "snapshot save" "$(snapshot_save)"
    record "$server" "get of all keys (time / leader's RSS growth)" "$(get_all)"
    record "$server" "slowest put during compaction and defragmentation, ms" "$(compaction_stall)"
    record "$server" "data directory per member after compaction and defragmentation, MiB" "$(members data_mib)"
    stop_cluster
    started=$(now)
    start_cluster "$server" restart
    record "$server" "restart of the three members to healthy, s" "$(since "$started")"
    record "$server" "RSS per member after the restart, MiB" "$(members rss_mib)"
    record "$server" "10,000-key page after the restart, s" "$(page)"
    record "$server" "snapshot save after the restart" "$(snapshot_save)"
    record "$server" "data directory per member at the end, MiB" "$(members data_mib)"
    stop_cluster
done

python3 - "$work/results.txt" "$N" <<'PY'
import sys, re
rows, order = {}, []
for line in open(sys.argv[1]):
    server, figure, value = line.rstrip("\n").split("|")
    if figure not in rows: order.append(figure); rows[figure] = {}
    rows[figure][server] = value
def first(v):
    m = re.match(r"[\d.]+", v or "")
    return float(m.group()) if m else None
print(f"| figure at {int(sys.argv[2]):,} keys | kvd | etcd 3.4 | kvd/etcd |")
print("| --- | ---: | ---: | ---: |")
for figure in order:
    k, e = rows[figure].get("kvd", "—"), rows[figure].get("etcd", "—")
    a, b = first(k), first(e)
    ratio = f"{a / b:.2f}" if a is not None and b else "—"
    print(f"| {figure} | {k} | {e} | {ratio} |")
PY
echo
echo "Commands:"
cat "$work/commands.txt"
