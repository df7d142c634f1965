#!/usr/bin/env bash
# Tests/Cluster/disk-full.sh: a member whose disk fills up. Each member's data dir is on a tmpfs
# of its own (root: mount); a file written until the disk refuses fills it, then large puts use
# up the room RocksDB had already reserved for its log (it preallocates its log files, as etcd
# preallocates its WAL segments: a member goes on writing there for a while after the disk
# fills, which is right).
#
# etcd stops a member whose log write fails ("failed to save Raft hard state and entries", a
# fatal error), since a member that cannot append cannot take part; the others go on. kvd does
# the same, before it acknowledges the write it could not keep:
#  1. A follower's disk fills under load: it stops by itself, saying there is no space; the other
#     two go on acknowledging puts.
#  2. Started again on the full disk, it refuses (exits, saying why), and serves nothing.
#  3. With space back, started again, it catches up.
#  4. The leader's disk fills under load: it stops; the others elect a leader and go on; with space
#     back it rejoins.
# After each: every acknowledged put readable through every member, one revision, one HashKV.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cluster_init disk-full
nodes=(n1 n2 n3)

for n in "${nodes[@]}"; do
    mkdir -p "$COMPAT_TMP/$n.disk"
    mount -t tmpfs -o size=1g tmpfs "$COMPAT_TMP/$n.disk" || die "cannot mount a tmpfs (needs root)"
    COMPAT_CLEANUP_HOOKS+=("umount -l '$COMPAT_TMP/$n.disk' 2>/dev/null")
    SERVER_DATA[$n]=$COMPAT_TMP/$n.disk/data
done
cluster_start "${nodes[@]}"
wait_one_leader 10 "${nodes[@]}" >/dev/null || die "no single leader"
EPS=$(running_eps)

# fill NAME: write a file on NAME's disk until it is full.
fill() { dd if=/dev/zero of="$COMPAT_TMP/$1.disk/filler" bs=1M status=none 2>/dev/null; sync; }
head -c $((512 * 1024)) /dev/urandom | base64 -w 0 | head -c $((512 * 1024)) >"$COMPAT_TMP/big.value"
# big_puts NAME: puts of 512 KiB through the others until NAME stops (at most 240: 120 MiB).
big_puts() {
    local name=$1 i n
    for ((i = 1; i <= 240; i++)); do
        node_running "$name" || return 0
        for n in $(others "$name" "${nodes[@]}"); do
            CMD_TIMEOUT=10 nctl "$n" --command-timeout=8s put "big/$name/$i" <"$COMPAT_TMP/big.value" >/dev/null 2>&1 && break
        done
    done
}
free_space() { rm -f "$COMPAT_TMP/$1.disk/filler"; }
avail_kib() { df --output=avail "$COMPAT_TMP/$1.disk" | tail -n 1 | tr -d ' '; }

# stops_for_space LABEL NAME: NAME exits by itself within 20 s, non-zero, saying there is no space.
stops_for_space() {
    local label=$1 name=$2
    if ! wait_exit "$name" 20; then
        fail "$label: $name still runs 20 s after its disk filled"
        node_stop "$name"
        return
    fi
    ((EXIT_STATUS != 0)) && pass "$label: $name stopped by itself (status $EXIT_STATUS)" ||
        fail "$label: $name exited 0 with a full disk"
    grep -q -i 'no space left' "${SERVER_LOG[$name]}" && pass "$label: $name said there is no space left" ||
        fail "$label: $name did not say why: $(grep -v '^===' "${SERVER_LOG[$name]}" | tail -n 2 | tr '\n' ' ')"
}


# 1-3. A follower.
leader=$(wait_one_leader 5 "${nodes[@]}") || die "no leader"
read -r follower _ <<<"$(others "$leader" "${nodes[@]}")"
start_writers 1
sleep 1
log "phase 1: filling $follower's disk"
fill "$follower"
expect_eq "$follower's disk is full (KiB available)" 0 "$(avail_kib "$follower")"
big_puts "$follower"
stops_for_space "follower's disk full" "$follower"
a0=$(acks_of 1)
sleep 2
(($(acks_of 1) > a0)) && pass "the other two acknowledge puts while $follower is down" ||
    fail "no put acknowledged after $follower stopped"

marks=$(grep -c -i 'no space left' "${SERVER_LOG[$follower]}")
node_restart "$follower"
if wait_exit "$follower" 20; then
    ((EXIT_STATUS != 0)) && pass "restarted on the full disk, $follower refuses to start (status $EXIT_STATUS)" ||
        fail "restarted on the full disk, $follower exited 0"
    (($(grep -c -i 'no space left' "${SERVER_LOG[$follower]}") > marks)) && pass "it says why (no space left)" ||
        fail "it does not say why: $(grep -v '^===' "${SERVER_LOG[$follower]}" | tail -n 2 | tr '\n' ' ')"
else
    fail "restarted on the full disk, $follower still runs after 20 s"
    node_stop "$follower"
fi

free_space "$follower"
node_restart "$follower"
wait_healthy 30 "${nodes[@]}" || fail "phase 3: cluster not healthy with $follower back"
sleep 1
stop_writers 1
verify "follower's disk full, then freed" 1
same_hashkv "follower's disk full, then freed"

# 4. The leader.
leader=$(wait_one_leader 10 "${nodes[@]}") || die "no leader"
start_writers 2
sleep 1
log "phase 4: filling leader $leader's disk"
fill "$leader"
big_puts "$leader"
stops_for_space "leader's disk full" "$leader"
new_leader=$(wait_one_leader 15 $(others "$leader" "${nodes[@]}")) && pass "the others elected $new_leader" ||
    fail "no leader among the others"
a0=$(acks_of 2)
sleep 2
(($(acks_of 2) > a0)) && pass "puts acknowledged without the old leader" || fail "no put acknowledged without the old leader"
free_space "$leader"
node_restart "$leader"
wait_healthy 30 "${nodes[@]}" || fail "phase 4: cluster not healthy with $leader back"
sleep 1
stop_writers 2
verify "leader's disk full, then freed" 1 2
same_hashkv "leader's disk full, then freed"
summary disk-full
