#!/usr/bin/env bash
# Tests/Cluster/kvctl-watch.sh: kvctl's streaming and maintenance commands print exactly what
# etcdctl 3.4 prints (stdout, stderr, exit code) against one three-member mutual-TLS kvd cluster:
#   1. watch: both tools watch side by side (background processes, writing to files, killed by
#      PID at the end) over the same writes: --prefix (simple, all endpoints), one key with
#      --prev-kv -w json (a follower), a range -w json, --prefix --rev from before the writes
#      -w fields, and watch -i (two watches on one stream and a `progress` line, fed through a
#      fifo, one of them running a command per event); `watch -- COMMAND` (the event in
#      ETCD_WATCH_* variables; a failing command ends the watch with exit 1; argument errors);
#      then a watch from a compacted revision ("watch was canceled (...)", exit 5).
#   2. lease: timetolive --keys (simple, json), keep-alive --once (simple, json), keep-alive of
#      a lease revoked while it runs ("expired or revoked."), list.
#   3. snapshot save of one member through both tools with no write in between: the files are
#      byte-identical; snapshot status of each (simple, table, json) equal; save with several
#      endpoints refused alike.
#   4. alarm list and defrag --cluster.
# JSON steps ask one member: etcdctl's balancer spreads calls over the endpoints, so the header's
# member_id would differ. Normalised: the remaining TTL of timetolive (timing), the snapshot path in "Snapshot saved at",
# and the zap lines' timestamps and durations.
# Environment: KVD_BIN, KVCTL_BIN (default .build/debug/kvctl), ETCDCTL_BIN, VERBOSE=1, KEEP_TMP=1.
# About 25 s on a 2-core machine.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cluster_init kvctl-watch
[[ -x $KVCTL_BIN ]] || die "kvctl binary '$KVCTL_BIN' not found (set KVCTL_BIN)"
cluster_start n1 n2 n3
wait_one_leader 10 n1 n2 n3 >/dev/null || die "no single leader"
mapfile -t TLS < <(tls_flags)
all="${SERVER_EP[n1]},${SERVER_EP[n2]},${SERVER_EP[n3]}"
one=${SERVER_EP[n1]}
two=${SERVER_EP[n2]}
T=$COMPAT_TMP

# run_tool BIN LABEL ENDPOINTS ARGS...: one command; $T/LABEL.{out,err,rc}.
run_tool() {
    local bin=$1 label=$2 eps=$3 rc=0; shift 3
    timeout -k 2 "$CMD_TIMEOUT" "$bin" --endpoints="$eps" "${TLS[@]}" "$@" \
        >"$T/$label.out" 2>"$T/$label.err" </dev/null || rc=$?
    echo "$rc" >"$T/$label.rc"
}
# both LABEL ENDPOINTS ARGS...: etcdctl (LABEL.e) then kvctl (LABEL.k), back to back.
both() { local label=$1; shift; run_tool "$ETCDCTL_BIN" "$label.e" "$@"; run_tool "$KVCTL_BIN" "$label.k" "$@"; }

# report LABEL [FILTER...]: stdout, stderr and exit code (when known), through the filter.
report() {
    local label=$1; shift
    echo "stdout:"; filter "$@" <"$T/$label.out"
    echo "stderr:"; normalise_stderr <"$T/$label.err" | filter "$@"
    [[ -f $T/$label.rc ]] && echo "exit: $(cat "$T/$label.rc")"
}
filter() { if (($#)); then "$@"; else cat; fi; }
# same DESC LABEL [FILTER...]: the reports of LABEL.e and LABEL.k must be identical.
same() {
    local desc=$1 label=$2; shift 2
    if diff -q <(report "$label.e" "$@") <(report "$label.k" "$@") >/dev/null; then
        pass "$desc"
    else
        fail "$desc: etcdctl and kvctl differ"
        diff -u --label etcdctl --label kvctl <(report "$label.e" "$@") <(report "$label.k" "$@") |
            sed 's/^/    /' >&2 || true
    fi
}
remaining() { sed -E -e 's/remaining\([0-9]+s\)/remaining(<ttl>)/' -e 's/"ttl":[0-9]+/"ttl":<ttl>/'; }
saved() {
    sed -E -e 's#Snapshot saved at .*/#Snapshot saved at <dir>/#' -e 's#"path":"[^"]*/#"path":"<dir>/#' \
        -e 's/"ts":[0-9.]+/"ts":<ts>/' -e 's/"took":[0-9.e-]+/"took":<d>/'
}

# ---- 1. watch ---------------------------------------------------------------------------
start_rev=$(ectl "$one" put /w/start s -w json | sed -E 's/.*"revision":([0-9]+).*/\1/')
PIDS=()
# watcher LABEL ENDPOINTS ARGS...: both tools in the background, each to its own files.
watcher() {
    local label=$1 eps=$2 bin tag; shift 2
    for tag in e k; do
        bin=$ETCDCTL_BIN; [[ $tag == k ]] && bin=$KVCTL_BIN
        "$bin" --endpoints="$eps" "${TLS[@]}" "$@" >"$T/$label.$tag.out" 2>"$T/$label.$tag.err" </dev/null &
        PIDS+=($!)
    done
}
watcher wprefix "$all" watch --prefix /w/
watcher wprev "$two" watch /w/a --prev-kv -w json
watcher wrange "$one" watch /w/a /w/c -w json
watcher wrev "$one" watch --prefix /w/ --rev "$start_rev" -w fields
# shellcheck disable=SC2016 # expanded by the command's shell
watcher wexec "$one" watch --prefix /w/ -- sh -c 'echo "exec $ETCD_WATCH_REVISION $ETCD_WATCH_EVENT_TYPE $ETCD_WATCH_KEY $ETCD_WATCH_VALUE"'
# A failing command ends the watch (exit 1) at the first event: /w/c's put.
FAILPIDS=()
for tag in e k; do
    bin=$ETCDCTL_BIN; [[ $tag == k ]] && bin=$KVCTL_BIN
    (
        rc=0
        timeout -k 2 20 "$bin" --endpoints="$one" "${TLS[@]}" watch /w/c -- false \
            >"$T/wfail.$tag.out" 2>"$T/wfail.$tag.err" </dev/null || rc=$?
        echo "$rc" >"$T/wfail.$tag.rc"
    ) &
    FAILPIDS+=($!)
done
# watch -i: lines through a fifo held open by this shell until the end.
for tag in e k; do
    mkfifo "$T/wi.$tag.in"
    bin=$ETCDCTL_BIN; [[ $tag == k ]] && bin=$KVCTL_BIN
    "$bin" --endpoints="$one" "${TLS[@]}" watch -i <"$T/wi.$tag.in" >"$T/wi.$tag.out" 2>"$T/wi.$tag.err" &
    PIDS+=($!)
done
exec {wie}>"$T/wi.e.in" {wik}>"$T/wi.k.in"
for fd in $wie $wik; do
    printf 'watch /w/a\nwatch --prefix /w/ --prev-kv\nbogus\nwatch /w/c -- sh -c "echo exec-i $ETCD_WATCH_KEY"\n' >&$fd
done
sleep 1.5  # every watcher has its watch created
ectl "$one" put /w/a 1 >/dev/null
ectl "$two" put /w/b 2 >/dev/null
ectl "$one" put /w/a 3 >/dev/null
ectl "$one" del /w/b >/dev/null
ectl "$one" put /w/c 4 >/dev/null
ectl "$one" txn <<<$'\nput /w/a 5\nput /w/bb 6\n\n' >/dev/null
sleep 1
for fd in $wie $wik; do printf 'progress\n' >&$fd; done
sleep 1
for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
for pid in "${PIDS[@]}" "${FAILPIDS[@]}"; do wait "$pid" 2>/dev/null; done
exec {wie}>&- {wik}>&-
same "watch --prefix (all endpoints)" wprefix
same "watch --prev-kv -w json (follower)" wprev
same "watch KEY RANGE_END -w json" wrange
same "watch --prefix --rev -w fields" wrev
# etcdctl prints each interactive watch from its own goroutine, so the two watches' lines
# interleave in no fixed order (in either tool): the lines are compared as a sorted multiset.
same "watch -i with progress (lines sorted)" wi sort
same "watch --prefix -- COMMAND (ETCD_WATCH_* per event)" wexec
same "watch -- COMMAND that fails" wfail
# A watcher that saw nothing would make every comparison above trivially equal.
for label in wprefix wprev wrange wrev wi wexec; do
    [[ -s $T/$label.k.out ]] || fail "kvctl $label printed nothing"
done
grep -q '^progress notify: ' "$T/wi.k.out" || fail "kvctl watch -i printed no progress notify"
grep -q '^exec [0-9]* "PUT" "/w/a" "1"$' "$T/wexec.k.out" || fail "kvctl watch -- COMMAND ran no command for /w/a"
grep -q '^exec-i "/w/c"$' "$T/wi.k.out" || fail "kvctl watch -i ran no command for /w/c"
expect_eq "kvctl watch -- false exit code" 1 "$(cat "$T/wfail.k.rc")"
both wsep "$one" watch /w/a --
same "watch KEY -- (no command)" wsep
ETCDCTL_WATCH_KEY=/w/a both wenv "$one" watch /w/a -- echo x
same "watch KEY -- COMMAND with ETCDCTL_WATCH_KEY set" wenv

rev=$(ectl "$one" put /w/d 7 -w json | sed -E 's/.*"revision":([0-9]+).*/\1/')
ectl "$one" compaction "$rev" >/dev/null
both wcompacted "$one" watch --rev "$start_rev" /w/a -w json
same "watch from a compacted revision" wcompacted
both wcompacted2 "$all" watch --rev "$start_rev" --prefix /w/
same "watch --prefix from a compacted revision" wcompacted2

# ---- 2. lease -----------------------------------------------------------------------------
id=$(ectl "$one" lease grant 60 | awk '{print $2}')
ectl "$one" put --lease="$id" /l/a 1 >/dev/null
ectl "$one" put --lease="$id" /l/b 2 >/dev/null
both ttl "$two" lease timetolive "$id" --keys
same "lease timetolive --keys" ttl remaining
both ttlj "$one" lease timetolive "$id" --keys -w json
same "lease timetolive --keys -w json" ttlj remaining
both once "$all" lease keep-alive --once "$id"
same "lease keep-alive --once" once
both oncej "$two" lease keep-alive --once "$id" -w json
same "lease keep-alive --once -w json" oncej
both list "$one" lease list
same "lease list" list
short=$(ectl "$one" lease grant 3 | awk '{print $2}')
KA=()
for tag in e k; do
    bin=$ETCDCTL_BIN; [[ $tag == k ]] && bin=$KVCTL_BIN
    timeout -k 2 10 "$bin" --endpoints="$all" "${TLS[@]}" lease keep-alive "$short" \
        >"$T/ka.$tag.out" 2>"$T/ka.$tag.err" </dev/null &
    KA+=($!)
done
sleep 0.5  # both have had their first answer; the next request goes 1 s (TTL/3) after it
ectl "$one" lease revoke "$short" >/dev/null
for tag in e k; do
    rc=0; wait "${KA[0]}" || rc=$?; KA=("${KA[@]:1}")
    echo "$rc" >"$T/ka.$tag.rc"
done
same "lease keep-alive of a lease revoked while it runs" ka
both revoked "$one" lease keep-alive --once "$short"
same "lease keep-alive --once of a revoked lease" revoked

# ---- 3. snapshot --------------------------------------------------------------------------
mkdir -p "$T/snap.e" "$T/snap.k"
run_tool "$ETCDCTL_BIN" snap.e "$one" snapshot save "$T/snap.e/member.db"
run_tool "$KVCTL_BIN" snap.k "$one" snapshot save "$T/snap.k/member.db"
same "snapshot save" snap saved
if cmp -s "$T/snap.e/member.db" "$T/snap.k/member.db"; then
    pass "snapshot files byte-identical"
else
    fail "snapshot files differ: $(cmp "$T/snap.e/member.db" "$T/snap.k/member.db" 2>&1)"
fi
[[ -e $T/snap.k/member.db.part ]] && fail "kvctl left member.db.part behind"
for format in simple table json fields; do
    run_tool "$KVCTL_BIN" status.e "$one" snapshot status "$T/snap.e/member.db" -w "$format"
    run_tool "$KVCTL_BIN" status.k "$one" snapshot status "$T/snap.k/member.db" -w "$format"
    same "snapshot status -w $format of both files" status
done
# The status must describe the cluster: its revision, and (etcd counts the records of every
# bucket: each key's history, leases, meta) at least its live keys.
cur=$(ectl "$one" get /l/a -w json | sed -E 's/.*"revision":([0-9]+).*/\1/')
keys=$(ectl "$one" get "" --prefix --keys-only | grep -c .)
run_tool "$KVCTL_BIN" status.s "$one" snapshot status "$T/snap.k/member.db"
expect_eq "snapshot status revision" " $cur" "$(cut -d, -f2 "$T/status.s.out")"
total=$(cut -d, -f3 "$T/status.s.out")
((total >= keys)) && pass "snapshot status total keys $total >= $keys live keys" ||
    fail "snapshot status total keys $total < $keys live keys"
both multi "$all" snapshot save "$T/multi.db"
same "snapshot save with several endpoints" multi

# ---- 4. alarm, defrag ---------------------------------------------------------------------
both alarms "$all" alarm list
same "alarm list" alarms
both alarmsj "$one" alarm list -w json
same "alarm list -w json" alarmsj
both defrag "$one" defrag --cluster
same "defrag --cluster" defrag
summary kvctl-watch
