#!/usr/bin/env bash
# Tests/Cluster/maintenance.sh: Maintenance RPCs through Debian's etcdctl 3.4 against three
# mTLS kvd members.
#   - snapshot save: etcdctl accepts the stream (it checks that the size is 512-byte pages plus
#     a SHA-256), the digest is the SHA-256 of the data, and two saves with no write between
#     them are identical; a save after more writes differs.
#   - defrag --cluster: etcdctl's output per member; the database shrinks after a delete of
#     most keys, a compaction and a defrag.
#   - hashkv --cluster: equal on every member at the same revision after a write load during
#     which a follower was killed and restarted.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cluster_init maintenance
nodes=(n1 n2 n3)
cluster_start "${nodes[@]}"
leader=$(wait_one_leader 10 "${nodes[@]}") || die "no single leader"

put_many n1 data/ 200 4 || fail "initial puts"
snap() { CMD_TIMEOUT=20 nctl "$1" snapshot save "$2" >"$COMPAT_TMP/snap.out" 2>&1; }
if snap n2 "$COMPAT_TMP/a.db"; then pass "snapshot save through n2"; else fail "snapshot save: $(tail -n 2 "$COMPAT_TMP/snap.out")"; fi
expect_eq "etcdctl's last line" "Snapshot saved at $COMPAT_TMP/a.db" "$(tail -n 1 "$COMPAT_TMP/snap.out")"
size=$(stat -c %s "$COMPAT_TMP/a.db" 2>/dev/null || echo 0)
expect_eq "snapshot size is pages plus a digest" 32 "$((size % 512))"
want=$(head -c $((size - 32)) "$COMPAT_TMP/a.db" | sha256sum | cut -c1-64)
got=$(tail -c 32 "$COMPAT_TMP/a.db" | od -An -tx1 | tr -d ' \n')
expect_eq "the digest is the SHA-256 of the data" "$want" "$got"
snap n2 "$COMPAT_TMP/b.db" || fail "second snapshot save"
cmp -s "$COMPAT_TMP/a.db" "$COMPAT_TMP/b.db" && pass "two saves without writes are identical" || fail "two saves without writes differ"
nctl n1 put data/new x >/dev/null || fail "put"
snap n2 "$COMPAT_TMP/c.db" || fail "third snapshot save"
cmp -s "$COMPAT_TMP/a.db" "$COMPAT_TMP/c.db" && fail "a save after a write is unchanged" || pass "a save after a write differs"

# Space comes back: delete most keys, compact, defrag.
db_size() { CMD_TIMEOUT=5 nctl "$1" endpoint status -w json 2>/dev/null | grep -o '"dbSize":[0-9]*' | cut -d: -f2; }
put_many n1 bulk/ 400 4 || fail "bulk puts"
nctl n1 put bulk/big "$(head -c 100000 /dev/zero | tr '\0' x)" >/dev/null || fail "big put"
nctl n1 del bulk/ --prefix >/dev/null || fail "delete bulk/"
rev=$(nctl n1 get data/1 -w json | grep -o '"revision":[0-9]*' | head -n 1 | cut -d: -f2)
nctl n1 compaction --physical "$rev" >/dev/null || fail "compaction $rev"
before=$(db_size n1)
out=$(cctl defrag --cluster 2>&1); rc=$?
if ((rc == 0)) && [[ $(grep -c '^Finished defragmenting etcd member\[https://127.0.0.1:[0-9]*\]$' <<<"$out") == 3 ]]; then
    pass "defrag --cluster: one line per member"
else
    fail "defrag --cluster (exit $rc): $out"
fi
after=$(db_size n1)
if [[ -n $before && -n $after ]] && ((after < before)); then pass "defrag reclaims space ($before -> $after bytes)"; else fail "db size $before -> $after after defrag"; fi

# HashKV agrees on every member after a write load through a follower restart.
read -r f _ <<<"$(others "$leader" "${nodes[@]}")"
put_many n1 load/ 150 4 &
loader=$!
sleep 0.5
node_kill9 "$f"
sleep 1
node_restart "$f"
wait "$loader" || true
wait_healthy 20 "${nodes[@]}" || fail "members not healthy after the restart"
nctl n1 put sync/marker x >/dev/null || fail "marker put"
rev=$(nctl n1 get sync/marker -w json | grep -o '"mod_revision":[0-9]*' | cut -d: -f2)
for n in "${nodes[@]}"; do wait_caught_up 20 "$n" sync/ 1 || fail "$n did not catch up"; done
hashes=$(for n in "${nodes[@]}"; do CMD_TIMEOUT=10 nctl "$n" endpoint hashkv --rev="$rev" -w json | grep -o '"hash":[0-9]*'; done | sort -u)
if [[ $(grep -c . <<<"$hashes") == 1 ]]; then pass "hashkv at revision $rev equal on all members ($hashes)"; else fail "hashkv differs at $rev: $hashes"; fi
summary maintenance
