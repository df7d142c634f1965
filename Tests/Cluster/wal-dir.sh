#!/usr/bin/env bash
# Tests/Cluster/wal-dir.sh: etcd's --wal-dir (the log on a directory, or a device, of its own).
#   - a member started with --wal-dir keeps its write-ahead log there (RocksDB's *.log files), none
#     in the data directory, as etcd 3.4 with --wal-dir keeps no member/wal; killed (-9) right after
#     200 acknowledged puts it comes back with every one of them, recovered from that directory;
#   - started on the same data directory without --wal-dir, or with another, it refuses with a
#     message naming the directory it was created with (RocksDB would recover from the wrong one);
#   - kvctl snapshot restore --wal-dir makes a data directory that starts with that --wal-dir.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cluster_init wal-dir

logs_in() { find "$1" -maxdepth 1 -name '*.log' 2>/dev/null | grep -c .; }

wal=$COMPAT_TMP/wal
start_alone "$KVD_BIN" w1 --wal-dir "$wal"
put_many w1 k/ 200 4 || fail "200 puts"
expect_eq "the write-ahead log is in --wal-dir" yes "$( (($(logs_in "$wal") > 0)) && echo yes || echo no)"
expect_eq "no write-ahead log in the data directory" 0 "$(logs_in "${SERVER_DATA[w1]}/member/db")"
node_kill9 w1
node_restart w1
wait_healthy "$START_TIMEOUT" w1 || fail "w1 did not come back"
expect_eq "every acknowledged put after kill -9" 0 "$(check_keys w1 k/ 200)"
node_stop w1

# refused DESCRIPTION [flags...]: kvd on w1's data directory exits, naming the recorded directory.
refused() {
    local label=$1 out rc; shift
    out=$(timeout 20 "$KVD_BIN" --name w1 --data-dir "${SERVER_DATA[w1]}" --listen-client-urls http://127.0.0.1:0 \
        --listen-peer-urls http://127.0.0.1:0 "$@" 2>&1); rc=$?
    expect_eq "$label: refused with the recorded directory" 1 \
        "$(( rc != 0 && $(grep -c -F -e "keeps its write-ahead log in \"$wal\" (--wal-dir $wal); start it with that setting" <<<"$out") > 0 ))"
}
refused "without --wal-dir"
refused "with another --wal-dir" --wal-dir "$COMPAT_TMP/elsewhere"
expect_eq "the refusals created nothing" 0 "$(logs_in "$COMPAT_TMP/elsewhere")"
node_restart w1
wait_healthy "$START_TIMEOUT" w1 || fail "w1 did not start again with its --wal-dir"
expect_eq "the data is intact after the refusals" 0 "$(check_keys w1 k/ 200)"

# etcd 3.4 with --wal-dir: its WAL there, none in the data directory.
start_alone "$ETCD_BIN" e1 --wal-dir "$COMPAT_TMP/etcd-wal"
nctl e1 put a b >/dev/null || fail "put on etcd"
expect_eq "etcd 3.4: WAL files in --wal-dir" yes "$( ls "$COMPAT_TMP/etcd-wal"/*.wal >/dev/null 2>&1 && echo yes || echo no)"
expect_eq "etcd 3.4: no member/wal in the data directory" no "$( [[ -e ${SERVER_DATA[e1]}/member/wal ]] && echo yes || echo no)"
node_stop e1

# A restore into a data directory with its own --wal-dir.
nctl w1 snapshot save "$COMPAT_TMP/w1.db" >/dev/null 2>&1 || fail "snapshot save"
node_stop w1
node_ports r1
SERVER_DATA[r1]=$COMPAT_TMP/r1.data
if out=$("$KVCTL_BIN" snapshot restore "$COMPAT_TMP/w1.db" --name r1 --data-dir "${SERVER_DATA[r1]}" \
    --wal-dir "$COMPAT_TMP/r1-wal" --initial-cluster "r1=$(peer_url r1)" --initial-advertise-peer-urls "$(peer_url r1)" \
    --initial-cluster-token "$CLUSTER_TOKEN" 2>&1); then
    pass "kvctl snapshot restore --wal-dir"
else
    fail "kvctl snapshot restore --wal-dir: $out"
fi
node_start r1 new "$(initial_cluster r1)" --wal-dir "$COMPAT_TMP/r1-wal"
if wait_healthy "$START_TIMEOUT" r1; then pass "the restored member starts with its --wal-dir"; else fail "the restored member did not start"; fi
expect_eq "the restored member has the keys" 0 "$(check_keys r1 k/ 200)"
summary wal-dir
