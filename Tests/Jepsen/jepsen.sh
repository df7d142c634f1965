#!/usr/bin/env bash
# Tests/Jepsen/jepsen.sh [--duration S] [--seed N] [--nodes 3|5] [--workers W] [--snapshot-count C]
#
# Jepsen-style test of a kvd cluster over mutual TLS in network namespaces (netns.sh).
# Workers in the client namespace (client.py register) run reads, writes and cas (etcdctl
# txn) over a few register keys, plus unique puts under ack/, each through a random
# member, recording a history. Meanwhile a seeded nemesis alternates faults and heals:
#   isolate-leader, isolate-random, split (random minority vs majority), bridge (cut one
#   pair: a non-transitive partition), asym (one-way drop, to or from the leader),
#   kill9 / kill9-leader (kill -9, restart at the heal), kill-majority (kill -9 a majority:
#   no quorum until the heal), kill-all (every member, restarted from disk at the heal), pause / pause-leader (SIGSTOP, SIGCONT at the heal),
#   isolate+pause (two members faulty at once: no quorum), unplug (the member's switch
#   port down: cut from the client too), move-leader (leader transfer under load), with tc netem in
#   the kernel delay/loss on a member's link, and the disk (Tests/Faults): power-cut /
#   power-cut-leader / power-cut-all (kill -9, then every byte not yet synced lost, the last
#   record torn; restarted at the heal), slow-disk / slow-disk-leader (syncs take 100 ms-1 s),
#   disk-eio (a member's syncs fail: it must stop before acknowledging; restarted at the heal),
#   and the wall clock (Tests/Faults/clockshift.c): clock-jump (the leader's steps forward or
#   back by 30 s to a day), clock-skew (every member's off by its own amount, up to 5 min), and
#   membership: member-replace (a member removed, its data wiped, added back as a learner with a
#   new ID and promoted at the heal; with leader transfers, move-leader).
# At the end: heal everything, wait for one leader and convergence, read every key through
# every member, then check: the history is linearizable (linearizability.py, per key);
# revisions never go back in real time; no acknowledged put is lost (every ack/ key on
# every member, with its value); every member has the same revision and endpoint hashkv;
# leases kept alive (client.py leases, TTL 4 s) never expire before their TTL.
# JEPSEN_FAULTS (a list of the names above) limits the nemesis to those faults.
# Prints "jepsen: N passed, N failed"; exit 1 on failure. A failure prints the seed;
# the nemesis schedule is a function of the seed (the timing of the cluster is not).
# Bounded: duration + about 40 s.
set -uo pipefail

DURATION=30
SEED=$(( $(date +%s) % 100000 ))
WORKERS=5
SNAPSHOT_COUNT=${SNAPSHOT_COUNT:-100}
while (($#)); do
    case $1 in
        --duration) DURATION=$2; shift 2 ;;
        --seed) SEED=$2; shift 2 ;;
        --nodes) JC_N=$2; shift 2 ;;
        --workers) WORKERS=$2; shift 2 ;;
        --snapshot-count) SNAPSHOT_COUNT=$2; shift 2 ;;
        -h | --help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "jepsen.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
export JC_N=${JC_N:-3}
. "$(dirname "$0")/cluster.sh"

RANDOM=$SEED
# A small snapshot count, so that restarted or cut-off members also catch up by snapshot.
JC_EXTRA_FLAGS=(--snapshot-count "$SNAPSHOT_COUNT")
jc_init jepsen
log "seed $SEED, duration ${DURATION}s, $JC_N members, $WORKERS workers (rerun: $0 --seed $SEED --duration $DURATION)"
jc_start
l=$(jc_wait_leader 10) || die "no leader after start"
pass "cluster of $JC_N formed over mTLS in namespaces (leader n$l)"

hist=$JC_TMP/history.jsonl
NEMLOG=$JC_TMP/nemesis.log
client() {
    netns_client python3 "$JEPSEN_DIR/client.py" "$@" --endpoints "$(jc_all_eps)" --history "$hist" \
        --cacert "$JC_PKI/etcd/ca.crt" --cert "$JC_PKI/apiserver-etcd-client.crt" \
        --key "$JC_PKI/apiserver-etcd-client.key"
}
client register --workers "$WORKERS" --duration "$DURATION" --seed "$SEED" --keys 3 >"$JC_TMP/client.out" 2>&1 &
CLIENT_PID=$!
JC_BG_PIDS+=("$CLIENT_PID")
client leases --workers 2 --ttl 4 --duration "$DURATION" >"$JC_TMP/leases.out" 2>&1 &
LEASES_PID=$!
JC_BG_PIDS+=("$LEASES_PID")
client watch --prefix r --duration $((DURATION + 60)) --stop-file "$JC_TMP/watch.stop" >"$JC_TMP/watch.out" 2>&1 &
WATCH_PID=$!
JC_BG_PIDS+=("$WATCH_PID")

# pick N: sets PICK to a member index 1..N (not in $(...): a subshell would not advance RANDOM).
pick() { PICK=$((RANDOM % $1 + 1)); }
# pick_leader: sets PICK to the leader, or to a random member while none is known. RANDOM is
# drawn either way, so that whether a leader was found does not shift the seed's later draws.
pick_leader() {
    local leader
    pick "$JC_N"
    leader=$(jc_leader) && [[ -n $leader ]] && PICK=$leader
    return 0
}
nem() { echo "$(date -u +%T.%3N) $*" >>"$NEMLOG"; log "nemesis: $*"; }
HAVE_NETEM=0
net_has_netem && HAVE_NETEM=1
FAULTS=(isolate-leader isolate-random split bridge asym kill9 kill9-leader kill-majority pause pause-leader
    isolate+pause unplug kill-all move-leader power-cut power-cut-leader power-cut-all slow-disk slow-disk-leader
    disk-eio clock-jump clock-skew member-replace)
((HAVE_NETEM)) && FAULTS+=(slow)
# JEPSEN_FAULTS="power-cut disk-eio" runs only those.
[[ -z ${JEPSEN_FAULTS:-} ]] || read -r -a FAULTS <<<"$JEPSEN_FAULTS"
KILLED=()
declare -A EIO_BEFORE=()   # disk-eio: the member's count of failed syncs when its disk failed
eio_count() { grep -c 'diskfault: .* -> EIO' "$JC_TMP/n$1.log"; }

declare -A REPLACED=()   # member-replace: "removed", then the new member ID once added back

# member_add I: member I (removed, its data wiped) added back as a learner through another member
# and started to join; REPLACED[I] becomes its new ID. Returns 1 if the add was refused. An add
# whose answer was lost may still have been committed: the member list is asked first.
member_add() {
    local a=$1 b out id url
    b=$(((a % JC_N) + 1))
    url="https://$(netns_ip "$a"):2380"
    id=$(CMD_TIMEOUT=8 jc_ctl "$b" --command-timeout=5s member list 2>/dev/null | awk -F', ' -v u="$url" '$4 == u {print $1}')
    if [[ -n $id ]]; then
        nem "member add n$a: already added as $id"
    else
        out=$(CMD_TIMEOUT=8 jc_ctl "$b" --command-timeout=5s member add "n$a" --learner --peer-urls="$url" 2>&1)
        id=$(grep -oE '^Member [0-9a-f]+ added' <<<"$out" | awk '{print $2}')
        nem "member add n$a as a learner through n$b: ${id:+added $id}$(grep -m 1 Error <<<"$out")"
    fi
    [[ -n $id ]] || return 1
    REPLACED[$a]=$id
    JC_STATE[$a]=existing
    jc_node_start "$a"
}

# member_promote I: the learner I promoted, retried until it has caught up (20 tries, 0.5 s apart).
member_promote() {
    local a=$1 out try
    for ((try = 0; try < 20; try++)); do
        out=$(CMD_TIMEOUT=8 jc_ctl "$(((a % JC_N) + 1))" --command-timeout=5s member promote "${REPLACED[$a]}" 2>&1 | tail -n 1)
        grep -q 'promoted' <<<"$out" && { nem "member promote n$a: $out"; return 0; }
        sleep 0.5
    done
    nem "member promote n$a failed: $out"
    return 1
}

# heal_all: network healed, paused members resumed, disks healthy, killed members restarted,
# replaced members added back and promoted.
heal_all() {
    local i
    net_heal
    for ((i = 1; i <= JC_N; i++)); do jc_resume "$i"; done
    for ((i = 1; i <= JC_N; i++)); do [[ ! -s $JC_TMP/n$i.fault ]] || jc_disk "$i" ""; done
    for ((i = 1; i <= JC_N; i++)); do [[ ! -e $JC_TMP/n$i.clock || $(<"$JC_TMP/n$i.clock") == +0 ]] || jc_clock "$i" +0; done
    for i in "${!EIO_BEFORE[@]}"; do
        # A member whose sync failed must stop; its crash report takes a few seconds to write.
        (($(eio_count "$i") > EIO_BEFORE[$i])) || continue
        local waited=0
        while jc_running "$i" && ((waited < 100)); do sleep 0.1; waited=$((waited + 1)); done
        if jc_running "$i"; then
            fail "n$i still runs 10 s after a sync of its failed (seed $SEED)"
            jc_kill9 "$i"
        else
            nem "n$i stopped after its sync failed"
        fi
        KILLED+=("$i")
    done
    EIO_BEFORE=()
    for i in "${KILLED[@]}"; do jc_restart "$i"; done
    KILLED=()
    for i in "${!REPLACED[@]}"; do
        if [[ ${REPLACED[$i]} == removed ]]; then
            local try
            for ((try = 0; try < 10; try++)); do member_add "$i" && break; sleep 0.5; done
            [[ ${REPLACED[$i]} != removed ]] || { fail "n$i could not be added back (seed $SEED)"; continue; }
        fi
        member_promote "$i" || fail "learner n$i was not promoted within 10 s (seed $SEED)"
        unset "REPLACED[$i]"
    done
}

fault() {
    local f=$1 a b i minority majority
    case $f in
        isolate-leader)
            pick_leader; a=$PICK
            nem "isolate leader n$a"
            net_isolate "$a" ;;
        isolate-random)
            pick "$JC_N"; a=$PICK; nem "isolate n$a"; net_isolate "$a" ;;
        split)
            # A random minority (floor((N-1)/2) members) against the rest.
            local order=() j t
            for ((i = 1; i <= JC_N; i++)); do order+=("$i"); done
            for ((i = JC_N - 1; i > 0; i--)); do   # Fisher-Yates with the seeded RANDOM
                j=$((RANDOM % (i + 1))); t=${order[i]}; order[i]=${order[j]}; order[j]=$t
            done
            local k=$(((JC_N - 1) / 2))
            minority="${order[*]:0:k}" majority="${order[*]:k}"
            nem "split [$minority] | [$majority]"
            net_split "$minority" "$majority" ;;
        bridge)
            pick "$JC_N"; a=$PICK; b=$(((a % JC_N) + 1))
            nem "bridge: cut n$a <-> n$b only"
            net_cut "$a" "$b" ;;
        asym)
            pick_leader; a=$PICK
            if ((RANDOM % 2)); then
                nem "asym: drop everything from leader n$a to the others"
                for ((i = 1; i <= JC_N; i++)); do ((i == a)) || net_drop_oneway "$a" "$i"; done
            else
                nem "asym: drop everything from the others to leader n$a"
                for ((i = 1; i <= JC_N; i++)); do ((i == a)) || net_drop_oneway "$i" "$a"; done
            fi ;;
        kill9)
            pick "$JC_N"; a=$PICK; nem "kill -9 n$a"; jc_kill9 "$a"; KILLED+=("$a") ;;
        kill9-leader)
            pick_leader; a=$PICK
            nem "kill -9 leader n$a"; jc_kill9 "$a"; KILLED+=("$a") ;;
        kill-majority)
            # The cluster loses quorum; the restarted members must lose no acked write.
            pick "$JC_N"; a=$PICK
            minority=""
            for ((i = 0; i < JC_N / 2 + 1; i++)); do
                b=$((((a + i - 1) % JC_N) + 1)); minority+=" n$b"; jc_kill9 "$b"; KILLED+=("$b")
            done
            nem "kill -9 a majority:$minority" ;;
        member-replace)
            # Membership changes under load: a member removed (through another), its data wiped,
            # added back as a learner with a new member ID; the heal promotes it.
            pick "$JC_N"; a=$PICK; b=$(((a % JC_N) + 1))
            local id out
            id=$(jc_status "$a") && id=${id%% *} || id=""
            if [[ -z $id ]]; then nem "member-replace n$a: no status, skipped"; return; fi
            out=$(CMD_TIMEOUT=8 jc_ctl "$b" --command-timeout=5s member remove "$id" 2>&1 | tail -n 1)
            nem "member remove n$a ($id) through n$b: $out"
            grep -q 'removed from cluster' <<<"$out" || return
            jc_kill9 "$a"
            rm -rf "$JC_TMP/n$a.data"
            : >"$JC_TMP/n$a.synclog"
            REPLACED[$a]=removed
            member_add "$a" ;;
        move-leader)
            # Leader transfer under load (MoveLeader, sent to the leader as etcdctl requires).
            a=$(jc_leader) || a=""
            if [[ -z $a ]]; then nem "move-leader: no leader, skipped"; return; fi
            b=$(((a % JC_N) + 1))
            local tid
            tid=$(jc_status "$b") && tid=${tid%% *}
            nem "move-leader n$a -> n$b ($tid): $(CMD_TIMEOUT=8 jc_ctl "$a" --command-timeout=5s move-leader "$tid" 2>&1 | tail -1)" ;;
        kill-all)
            nem "kill -9 every member"
            for ((i = 1; i <= JC_N; i++)); do jc_kill9 "$i"; KILLED+=("$i"); done ;;
        pause)
            pick "$JC_N"; a=$PICK; nem "SIGSTOP n$a"; jc_pause "$a" ;;
        pause-leader)
            pick_leader; a=$PICK
            nem "SIGSTOP leader n$a"; jc_pause "$a" ;;
        isolate+pause)
            pick "$JC_N"; a=$PICK; b=$(((a % JC_N) + 1))
            nem "isolate n$a and SIGSTOP n$b"; net_isolate "$a"; jc_pause "$b" ;;
        unplug)
            pick "$JC_N"; a=$PICK; nem "unplug n$a (link down: cut from members and client)"; net_link_down "$a" ;;
        slow)
            pick "$JC_N"; a=$PICK; nem "netem on n$a: delay 50ms 20ms"; net_delay "$a" 50 20 ;;
        power-cut | power-cut-leader)
            if [[ $f == power-cut-leader ]]; then pick_leader; else pick "$JC_N"; fi; a=$PICK
            nem "power cut of n$a: $(jc_power_cut "$a" torn "$RANDOM")"; KILLED+=("$a") ;;
        power-cut-all)
            local mode=torn
            ((RANDOM % 2)) && mode=clean
            for ((i = 1; i <= JC_N; i++)); do
                nem "power cut ($mode) of every member, n$i: $(jc_power_cut "$i" "$mode" "$RANDOM")"; KILLED+=("$i")
            done ;;
        slow-disk | slow-disk-leader)
            if [[ $f == slow-disk-leader ]]; then pick_leader; else pick "$JC_N"; fi; a=$PICK
            b=$((100 + RANDOM % 901))
            nem "slow disk on n$a: every sync takes $b ms"; jc_disk "$a" "delay $b" ;;
        clock-jump)
            pick_leader; a=$PICK
            local steps=(30 600 7200 86400)
            b=${steps[RANDOM % ${#steps[@]}]}
            ((RANDOM % 2)) && b="-$b" || b="+$b"
            nem "clock of n$a steps ${b} s"; jc_clock "$a" "$b" ;;
        clock-skew)
            local skews=""
            for ((i = 1; i <= JC_N; i++)); do
                b=$((RANDOM % 601 - 300)); ((b >= 0)) && b="+$b"
                jc_clock "$i" "$b"; skews+=" n$i ${b}s"
            done
            nem "clocks skewed:$skews" ;;
        disk-eio)
            # The member stops at its next sync; the heal gives it a healthy disk and restarts it.
            pick "$JC_N"; a=$PICK; nem "disk of n$a fails its syncs (EIO)"
            EIO_BEFORE[$a]=$(eio_count "$a"); jc_disk "$a" eio ;;
    esac
}

# The nemesis: fault for 2-5 s, heal, quiet for 1-3 s, until the workload ends.
end=$((SECONDS + DURATION))
nfaults=0
FAULTS_RUN=()
while ((SECONDS < end - 3)) && kill -0 "$CLIENT_PID" 2>/dev/null; do
    f=${FAULTS[RANDOM % ${#FAULTS[@]}]}
    fault "$f"
    FAULTS_RUN+=("$f")
    nfaults=$((nfaults + 1))
    hold=$((2 + RANDOM % 4))
    sleep "$hold"
    nem "heal"
    heal_all
    sleep $((1 + RANDOM % 3))
done
wait "$CLIENT_PID" 2>/dev/null
heal_all
log "workload done; $nfaults faults"

# No member died by itself (the nemesis restarts the ones it killed).
for ((i = 1; i <= JC_N; i++)); do
    if jc_running "$i"; then pass "n$i is running"; else
        fail "n$i exited on its own: $(grep -v '^===' "$JC_TMP/n$i.log" | tail -3 | paste -sd ' ')"
        jc_restart "$i"
    fi
done

# Liveness after the faults: one leader, and a write through every member.
if l=$(jc_wait_leader 15); then pass "one leader after healing (n$l)"; else fail "no single leader 15 s after healing"; fi
for ((i = 1; i <= JC_N; i++)); do
    ok=0
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        CMD_TIMEOUT=5 jc_ctl "$i" "${FAST[@]}" put "after/$i" x >/dev/null 2>&1 && { ok=1; break; }
        sleep 0.5
    done
    ((ok)) && pass "n$i acks a write after healing" || fail "n$i does not ack a write 5 s after healing"
done

if jc_converged 30; then
    pass "members converged (same revision and hashkv): $(head -1 "$JC_TMP/converge.txt")"
else
    fail "members did not converge within 30 s: $(paste -sd ';' "$JC_TMP/converge.txt")"
fi
# A last event for the live watchers, then a few seconds for it to arrive everywhere.
CMD_TIMEOUT=5 jc_ctl 1 "${FAST[@]}" put r-marker end >/dev/null 2>&1
sleep 5
touch "$JC_TMP/watch.stop"
wait "$WATCH_PID" 2>/dev/null
if out=$(client watchcheck --prefix r 2>&1); then
    pass "watches: ordered, no duplicates, no gaps, up to date ($(grep -c 'in order' <<<"$out") watchers)"
else
    fail "watches: $out"
fi
if out=$(client final --keys 3 2>&1); then
    pass "final reads of every key through every member"
else
    fail "final reads: $out"
fi

stats=$(python3 - "$hist" <<'EOF'
import json, sys, collections
c = collections.Counter()
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e["type"] != "invoke":
        c[(e["f"], e["type"])] += 1
print(" ".join("%s/%s=%d" % (f, t, n) for (f, t), n in sorted(c.items())))
print(sum(n for (f, t), n in c.items() if t == "ok"))
EOF
)
log "history: $(head -1 <<<"$stats")"
okops=$(tail -1 <<<"$stats")
((okops >= 20)) && pass "workload made progress ($okops ok ops)" || fail "workload made little progress: $okops ok ops"

rc=0
timeout 120 python3 "$JEPSEN_DIR/linearizability.py" "$hist" >"$JC_TMP/lin.txt" 2>&1 || rc=$?
if ((rc == 0)); then
    pass "history linearizable: $(tail -1 "$JC_TMP/lin.txt")"
elif ((rc == 124)); then
    fail "linearizability check undecided: the checker ran out of its 120 s (seed $SEED)"
else
    fail "history NOT linearizable (seed $SEED):"
    sed 's/^/    /' "$JC_TMP/lin.txt" | head -40
fi
if out=$(python3 "$JEPSEN_DIR/client.py" revisions --history "$hist" 2>&1); then
    pass "$out"
else
    fail "$out"
fi
if out=$(client acks --prefix ack/ 2>&1); then
    pass "no acknowledged put lost: $(head -1 <<<"$out")"
else
    fail "acknowledged puts lost (seed $SEED): $out"
fi
# Leases kept alive never expired early, whatever the faults and the clocks did.
wait "$LEASES_PID" 2>/dev/null
leases_rc=$?
if ((leases_rc == 0)); then pass "$(head -1 "$JC_TMP/leases.out")"; else
    fail "leases (seed $SEED): $(head -5 "$JC_TMP/leases.out" | paste -sd ' ')"
fi
# The members' logs: no crash report, no dropped forwarded message (BUGS.md #1). A member whose
# disk failed a sync (disk-eio) stops on purpose: its "IO error" stop is expected.
crashes=$(for f in "$JC_TMP"/n*.log; do
    if grep -q 'diskfault: .* -> EIO' "$f"; then
        grep -E 'Fatal error|Precondition failed|Assertion failed|panic' "$f" | grep -v 'IO error'
    else
        grep -E 'Fatal error|Precondition failed|Assertion failed|panic' "$f"
    fi
done | head -3)
[[ -z $crashes ]] && pass "no crash in the members' logs" || fail "crash in a member's log: $crashes"
dropped=$(cat "$JC_TMP"/n*.log | grep -c 'does not match its stream')
((dropped == 0)) && pass "no forwarded Raft message dropped by a peer transport" ||
    fail "$dropped forwarded Raft messages dropped ('sender does not match its stream', BUGS.md #1): $(grep -h 'does not match its stream' "$JC_TMP"/n*.log | head -1)"
echo "nemesis (seed $SEED):"
sed 's/^/    /' "$NEMLOG"
echo "faults: $(printf '%s\n' "${FAULTS_RUN[@]}" | sort | uniq -c | awk '{printf "%s%s x%d", (n++ ? ", " : ""), $2, $1}')"
[[ $FAIL == 0 ]] || log "failed with seed $SEED: rerun with $0 --seed $SEED --duration $DURATION (KEEP_TMP=1 keeps the history)"
if [[ $FAIL != 0 && -n ${JEPSEN_ARTIFACTS:-} ]]; then
    mkdir -p "$JEPSEN_ARTIFACTS" && cp -r "$hist"* "$NEMLOG" "$JC_TMP"/n*.log "$JEPSEN_ARTIFACTS"/ 2>/dev/null
fi
summary jepsen
