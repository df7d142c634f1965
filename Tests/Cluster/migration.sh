#!/usr/bin/env bash
# Tests/Cluster/migration.sh: moving a cluster's data between etcd 3.4 and kvd through etcd's
# snapshot file (the bbolt backend with its SHA-256 appended), both ways, over mTLS. The same
# history is written through etcdctl on each source member: 30 puts on a prefix, overwrites
# (versions above 1), a single and a range delete, a key under a lease (grant 3600), a txn,
# `compaction --physical` at revision 25, then puts (one re-creating a deleted key), three values
# larger than a bbolt page and 12,800 keys (a tree with branch levels).
#   1. etcd -> kvd: `etcdctl snapshot save` from a one-member etcd; `kvctl snapshot status` of
#      the file prints what `etcdctl snapshot status` prints (simple, table, json; output and exit
#      status) and its revision is etcd's; `kvctl snapshot restore` of it into three data dirs,
#      and the three-member kvd cluster started on them serves, on every member, what etcd
#      serves: the kvs of `get "" --prefix -w json`, the header revision, `endpoint hashkv` at
#      the current revision and just above the compaction point (hash and compact_revision), the
#      kvs at revisions between the compaction point and the current one, `lease list`, the lease
#      of the leased key, etcd's error for a read below the compaction point; the next put gets
#      the next revision.
#   2. kvd -> etcd: the same the other way, one member each: `etcdctl snapshot save` from kvd,
#      etcdctl's and kvctl's snapshot status of the file equal, `etcdctl snapshot restore` of it,
#      and an etcd 3.4 member started on that serves what kvd serves. kvd started on that etcd
#      data dir (which etcd has run on) refuses with a message that says how to move it
#      (snapshot restore).
#   3. etcd -> kvd through etcdctl's restore: the file of 1 restored by `etcdctl snapshot restore`
#      (etcd's data dir layout), a three-member kvd cluster started on those dirs serves what etcd
#      serves (the checks of 1); kvd keeps etcd's files aside in member.etcd.
# kvd -> kvd (kvctl snapshot save and restore) is restore.sh's. About 30 s on a 2-core machine.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cluster_init migration
[[ -x $ETCD_BIN ]] || die "etcd binary '$ETCD_BIN' not found (apt-get install etcd-server)"
[[ -x $KVCTL_BIN ]] || die "kvctl binary '$KVCTL_BIN' not found (set KVCTL_BIN)"
T=$COMPAT_TMP
COMPACT_REV=25
OLD_REV=10   # below the compaction point
COMPACTED="exit 1: Error: etcdserver: mvcc: required revision has been compacted"

# make_history NAME: the same writes through member NAME; sets LEASE (hex, as lease list prints it).
# Revisions: 2-31 mig/k1..k30, 32-37 k1..k5 and k1 again, 38 delete k6, 39 delete k10..k12,
# 40 the leased key, 41 the txn (put and delete), 42-45 k6 again and k31..k33, 46-48 three
# 100 KB values, 49-148 the bulk txns.
make_history() {
    local n=$1 i r=1 bad=0
    # write ARGS...: one etcdctl write through NAME; a failure is counted and logged with its output.
    write() {
        local out
        out=$(nctl "$n" "$@" 2>&1) && return
        bad=$((bad + 1))
        log "$n: write failed: ${*:0:4}: ${out:0:300}"
    }
    for i in $(seq 30) 1 2 3 4 5 1; do
        r=$((r + 1))
        write put "mig/k$i" "v$i@$r"
    done
    write del mig/k6
    write del mig/k10 mig/k13
    LEASE=$(nctl "$n" lease grant 3600 | awk '{print $2}')
    write put mig/leased v --lease="$LEASE"
    local txn
    txn=$(printf 'value("mig/k2") = "v2@33"\n\nput mig/txn yes\ndel mig/k7\n\nput mig/txn no\n\n' | nctl "$n" txn 2>&1)
    [[ $txn == SUCCESS* ]] || { bad=$((bad + 1)); log "$n: the txn did not succeed: ${txn:0:300}"; }
    write compaction --physical "$COMPACT_REV"
    for i in 6 31 32 33; do write put "mig/k$i" "v$i@new"; done
    # Values bigger than a page (bbolt overflow pages), then 12,800 keys in 100 txns: enough leaves
    # for branch pages above branch pages.
    for i in 1 2 3; do write put "mig/big$i" "$(head -c 75000 /dev/zero | tr '\0' "$i" | base64 -w0)"; done
    for i in $(seq 100); do
        txn=$({ echo; for j in $(seq 128); do echo "put bulk/$i/$j value-$i-$j"; done; echo; echo; } | nctl "$n" txn 2>&1)
        [[ $txn == SUCCESS* ]] || { bad=$((bad + 1)); log "$n: bulk txn $i did not succeed: ${txn:0:300}"; }
    done
    if ((bad == 0)) && [[ -n $LEASE ]]; then pass "$n: history written"; else fail "$n: $bad writes failed (lease '$LEASE')"; fi
}

# What a member serves: the kvs of all keys, the header revision, HashKV at a revision, its
# leases, the lease of the leased key (decimal), a read below the compaction point.
kvs() { nctl "$1" get "" --prefix "${@:2}" -w json | grep -o '"kvs":.*'; }  # kvs NAME [flags]
revision() { nctl "$1" get "" --prefix -w json | grep -o '"revision":[0-9]*' | head -n 1 | cut -d: -f2; }
hashkv() { CMD_TIMEOUT=20 nctl "$1" endpoint hashkv --rev="$2" -w json | grep -oE '"(hash|compact_revision)":[0-9]+' | paste -sd ' '; }
leases() { nctl "$1" lease list 2>&1; }
key_lease() { nctl "$1" get mig/leased -w json | grep -o '"lease":[0-9]*'; }
old_read() {
    local out rc=0
    out=$(nctl "$1" get mig/k1 --rev="$OLD_REV" 2>&1) || rc=$?
    echo "exit $rc: $(grep -v '^{"level"' <<<"$out" | tail -n 1)"
}

# status_of TOOL FILE FORMAT: "exit N: output" of TOOL snapshot status FILE (simple: no -w).
status_of() {
    local out rc=0 w=()
    [[ $3 == simple ]] || w=(-w "$3")
    out=$(timeout -k 2 "$CMD_TIMEOUT" "$1" snapshot status "$2" "${w[@]}" 2>&1) || rc=$?
    echo "exit $rc: $out"
}
# same_status FILE REV: kvctl prints etcdctl's snapshot status of FILE in every format, and the
# status's revision is REV.
same_status() {
    local f
    for f in simple table json; do
        expect_eq "$(basename "$1"): snapshot status -w $f of kvctl equals etcdctl's" \
            "$(status_of "$ETCDCTL_BIN" "$1" "$f")" "$(status_of "$KVCTL_BIN" "$1" "$f")"
    done
    expect_eq "$(basename "$1"): snapshot status revision is the member's" "\"revision\":$2" \
        "$(status_of "$ETCDCTL_BIN" "$1" json | grep -o '"revision":[0-9]*')"
}

# save NAME FILE: etcdctl snapshot save from member NAME.
save() {
    if CMD_TIMEOUT=20 nctl "$1" snapshot save "$2" >"$T/save.out" 2>&1; then pass "$1: etcdctl snapshot save"
    else fail "$1: etcdctl snapshot save: $(tail -n 2 "$T/save.out")"; fi
}

# restore_start TOOL FILE BIN NAME...: TOOL snapshot restore FILE into each NAME's data dir (one
# new cluster of all NAMEs), then start BIN (kvd or etcd) on them. Returns 1 (after a fail) if
# either fails.
restore_start() {
    local tool=$1 file=$2 bin=$3 name cluster
    shift 3
    for name in "$@"; do node_ports "$name"; done
    cluster=$(initial_cluster "$@")
    for name in "$@"; do
        if timeout -k 2 30 "$tool" snapshot restore "$file" --name "$name" --data-dir "$T/$name.data" \
            --initial-cluster "$cluster" --initial-cluster-token "$CLUSTER_TOKEN" \
            --initial-advertise-peer-urls "$(peer_url "$name")" >"$T/$name.restore" 2>&1; then
            pass "$name: $(basename "$tool") snapshot restore $(basename "$file")"
        else
            fail "$name: $(basename "$tool") snapshot restore $(basename "$file"): $(tail -n 3 "$T/$name.restore")"
            return 1
        fi
    done
    for name in "$@"; do KVD_BIN=$bin node_start "$name" new "$cluster"; done
    wait_healthy "$START_TIMEOUT" "$@" && return 0
    fail "$*: $(basename "$bin") on the restored data dirs did not become healthy"
    return 1
}

# compare FROM TO...: each TO, restored from FROM's snapshot, serves what FROM serves; then a
# put through the first TO takes the next revision.
compare() {
    local a=$1 b rev at
    shift
    rev=$(revision "$a")
    for b in "$@"; do
        expect_eq "$a -> $b: kvs of get \"\" --prefix -w json" "$(kvs "$a")" "$(kvs "$b")"
        expect_eq "$a -> $b: header revision" "$rev" "$(revision "$b")"
        for at in $((COMPACT_REV + 1)) "$rev"; do
            expect_eq "$a -> $b: hashkv --rev=$at (hash, compact_revision)" "$(hashkv "$a" "$at")" "$(hashkv "$b" "$at")"
        done
        for at in $((COMPACT_REV + 1)) 37 38 39 41; do
            expect_eq "$a -> $b: kvs of get \"\" --prefix --rev=$at" "$(kvs "$a" --rev="$at")" "$(kvs "$b" --rev="$at")"
        done
        expect_eq "$a -> $b: lease list" "$(leases "$a")" "$(leases "$b")"
        expect_eq "$a -> $b: the leased key keeps its lease" "\"lease\":$((16#${LEASE:-0}))" "$(key_lease "$b")"
        expect_eq "$a -> $b: get --rev=$OLD_REV below the compaction point" "$COMPACTED" "$(old_read "$b")"
    done
    expect_eq "$a: get --rev=$OLD_REV below the compaction point" "$COMPACTED" "$(old_read "$a")"
    expect_eq "$a -> $1: the next put gets revision $((rev + 1))" "\"revision\":$((rev + 1))" \
        "$(nctl "$1" put mig/after x -w json | grep -o '"revision":[0-9]*')"
}

# ---- 1. etcd -> kvd ---------------------------------------------------------------------
start_alone "$ETCD_BIN" e1
make_history e1
save e1 "$T/etcd.db"
same_status "$T/etcd.db" "$(revision e1)"
restore_start "$KVCTL_BIN" "$T/etcd.db" "$KVD_BIN" k2 k3 k4 && compare e1 k2 k3 k4
for n in k2 k3 k4; do node_stop "$n"; done
# The same file restored by etcdctl (etcd's layout: bbolt, WAL, .snap), kvd started on that.
restore_start "$ETCDCTL_BIN" "$T/etcd.db" "$KVD_BIN" j2 j3 j4 && compare e1 j2 j3 j4
expect_eq "j2: kvd kept etcd's files of the restore in member.etcd" yes \
    "$([[ -e $T/j2.data/member.etcd/snap/db && -e $T/j2.data/member/db ]] && echo yes || echo no)"
for n in e1 j2 j3 j4; do node_stop "$n"; done

# ---- 2. kvd -> etcd ---------------------------------------------------------------------
start_alone "$KVD_BIN" k1
make_history k1
save k1 "$T/kvd.db"
same_status "$T/kvd.db" "$(revision k1)"
restore_start "$ETCDCTL_BIN" "$T/kvd.db" "$ETCD_BIN" e2 && compare k1 e2
node_stop e2

# kvd pointed at an etcd member's data directory refuses to start (rather than start empty beside it).
node_ports x1
out=$(timeout -k 2 20 "$KVD_BIN" --name e2 --data-dir "$T/e2.data" --listen-client-urls "http://127.0.0.1:${SERVER_CPORT[x1]}" \
    --advertise-client-urls "http://127.0.0.1:${SERVER_CPORT[x1]}" --listen-peer-urls "http://127.0.0.1:${SERVER_PPORT[x1]}" 2>&1)
status=$?
if ((status != 0)) && grep -q "holds an etcd member's data.*etcd has run on it" <<<"$out" && [[ ! -e $T/e2.data/member/db ]]; then
    pass "kvd refuses an etcd data dir: $(grep -o "holds an etcd member's data[^:]*" <<<"$out" | head -n 1)"
else
    fail "kvd on an etcd data dir: exit $status, $(tail -n 2 <<<"$out")"
fi
summary migration
