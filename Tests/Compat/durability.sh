#!/usr/bin/env bash
# Tests/Compat/durability.sh: no acknowledged write is lost and no transaction is
# half-applied across `kill -9`.
#
# Each round: 4 background writers put unique keys with etcdctl, and every third
# write is a txn putting three keys at once; a put (or txn) is recorded in the
# writer's ack file only after etcdctl exits 0, and every txn is recorded as
# attempted before it is sent. At a random moment (0.8-2.3 s in) the server is
# killed with SIGKILL while writes are in flight, then restarted on the same data
# dir and ports. Checks, cumulative over all rounds so far: every acked key has its
# value; every acked txn has all three keys; every attempted txn has all or none.
#   TARGET=kvd|etcd (default kvd)  ROUNDS (default 4)  WRITERS (default 4)
# Bounded: about 6-8 s per round.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

target=${TARGET:-kvd}
rounds=${ROUNDS:-4}
writers=${WRITERS:-4}
compat_init durability
fast=(--dial-timeout=1s --command-timeout=2s)
data=$COMPAT_TMP/srv.data

# writer ROUND W: writes until the stop file appears.
writer() {
    local r=$1 w=$2 i=0 key val
    local acks=$COMPAT_TMP/ack.$r.$w txacks=$COMPAT_TMP/txack.$r.$w txtries=$COMPAT_TMP/txtry.$r.$w
    while [[ ! -e $COMPAT_TMP/stop.$r ]]; do
        i=$((i + 1))
        if ((i % 3 == 0)); then
            key=tx/$r/$w/$i val=t$r.$w.$i.$RANDOM
            echo "$key $val" >>"$txtries"
            # etcdctl's txn ignores --command-timeout (it commits with
            # context.Background()), so bound it with timeout(1) instead.
            if printf '\nput %s/a %s\nput %s/b %s\nput %s/c %s\n\n\n' "$key" "$val" "$key" "$val" "$key" "$val" |
                CMD_TIMEOUT=3 ctl srv "${fast[@]}" txn >/dev/null 2>&1; then
                echo "$key $val" >>"$txacks"
            fi
        else
            key=kv/$r/$w/$i val=v$r.$w.$i.$RANDOM
            if ctl srv "${fast[@]}" put "$key" "$val" >/dev/null 2>&1; then
                echo "$key $val" >>"$acks"
            fi
        fi
    done
}

# dump PREFIX: "key value" lines of everything under PREFIX (values have no spaces).
dump() {
    ctl srv get "$1" --prefix | paste -d ' ' - -
}

verify() { # ROUND (checks rounds 1..ROUND)
    local upto=$1 r missing acked tx_missing tx_acked partial tries
    dump kv/ >"$COMPAT_TMP/kv.now" || { fail "round $upto: reading back kv/ failed"; return; }
    dump tx/ >"$COMPAT_TMP/tx.now" || { fail "round $upto: reading back tx/ failed"; return; }
    cat "$COMPAT_TMP"/ack.* 2>/dev/null | sort >"$COMPAT_TMP/acks.all"
    acked=$(wc -l <"$COMPAT_TMP/acks.all")
    missing=$(sort "$COMPAT_TMP/kv.now" | comm -23 "$COMPAT_TMP/acks.all" - | wc -l)
    if ((acked == 0)); then
        fail "round $upto: no put was acknowledged (nothing tested)"
    elif ((missing == 0)); then
        pass "round $upto: all $acked acknowledged puts present"
    else
        fail "round $upto: $missing of $acked acknowledged puts lost or changed"
        sort "$COMPAT_TMP/kv.now" | comm -23 "$COMPAT_TMP/acks.all" - | head -5 | sed 's/^/    lost: /' >&2
    fi
    # txns: acked ones complete with their value; attempted ones all-or-nothing
    cat "$COMPAT_TMP"/txack.* 2>/dev/null | sort >"$COMPAT_TMP/txacks.all"
    cat "$COMPAT_TMP"/txtry.* 2>/dev/null | sort >"$COMPAT_TMP/txtries.all"
    tx_acked=$(wc -l <"$COMPAT_TMP/txacks.all")
    tries=$(wc -l <"$COMPAT_TMP/txtries.all")
    tx_missing=$(awk 'NR==FNR { split($1, p, "/"); k = p[1] "/" p[2] "/" p[3] "/" p[4]; have[k " " $2]++; next }
                      { if (have[$1 " " $2] != 3) n++ } END { print n + 0 }' \
        "$COMPAT_TMP/tx.now" "$COMPAT_TMP/txacks.all")
    partial=$(awk '{ split($1, p, "/"); k = p[1] "/" p[2] "/" p[3] "/" p[4]; c[k]++ }
                   END { for (k in c) if (c[k] != 3) n++; print n + 0 }' "$COMPAT_TMP/tx.now")
    if ((tx_acked == 0)); then
        fail "round $upto: no txn was acknowledged (nothing tested)"
    elif ((tx_missing == 0)); then
        pass "round $upto: all $tx_acked acknowledged txns complete"
    else
        fail "round $upto: $tx_missing of $tx_acked acknowledged txns lost or incomplete"
    fi
    if ((partial == 0)); then
        pass "round $upto: no partial txn among $tries attempted"
    else
        fail "round $upto: $partial txns partially applied"
    fi
}

# On any exit, stop the writers of the current round (by PID).
pids=()
COMPAT_CLEANUP_HOOKS+=('touch "$COMPAT_TMP"/stop.$r 2>/dev/null; for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done')
r=0
server_start srv "$target" plain "$data"
for ((r = 1; r <= rounds; r++)); do
    pids=()
    for ((w = 1; w <= writers; w++)); do
        writer "$r" "$w" &
        pids+=($!)
    done
    # kill -9 at a random moment while the writers are busy
    delay=$((8 + RANDOM % 16))
    sleep "$((delay / 10)).$((delay % 10))"
    server_kill9 srv; vlog "t=$SECONDS killed"
    touch "$COMPAT_TMP/stop.$r"
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done; vlog "t=$SECONDS drained"
    echo "=== round $r: killed -9, restarting" >>"${SERVER_LOG[srv]}"
    server_start srv "$target" plain "$data"
    vlog "t=$SECONDS restarted"
    pass "round $r: restarted after kill -9"
    verify "$r"
done
server_stop srv

summary durability
