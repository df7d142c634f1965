#!/usr/bin/env bash
# Tests/Cluster/alarm.sh: the NOSPACE alarm, kvd beside etcd 3.4 (three mTLS members each,
# --quota-backend-bytes 16 MB). The same sequence runs against both and each step's outcome
# (exit status and message, with member IDs normalised) must match:
#   puts of 100 KB values until one fails with "database space exceeded"; `alarm list` shows
#   NOSPACE; further puts and a txn that puts fail the same way through every member, while
#   reads, deletes and compaction work; /health (metrics URL) is false; after deleting, compacting
#   and `defrag --cluster`, `alarm disarm` clears the alarm and puts work again. Then etcd's e2e
#   alarm test on one member with a quota of 13 pages.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cluster_init alarm
[[ -x $ETCD_BIN ]] || die "etcd binary '$ETCD_BIN' not found (apt-get install etcd-server)"
QUOTA=16000000
declare -A MPORT=()
VALUE=$(head -c 100000 /dev/zero | tr '\0' x)

# outcome CMD...: "exit N: <last line>" with member IDs (decimal) replaced.
outcome() {
    local out rc=0
    out=$("$@" 2>&1) || rc=$?
    out=$(grep -v '^{"level"' <<<"$out" | sed -E 's/memberID:[0-9]+/memberID:<id>/g' | sort -u | paste -sd ';')
    echo "exit $rc: $out"
}

scenario() {
    local p=$1 bin=$2 n ic i failed_at=0
    for n in 1 2 3; do node_ports "$p$n"; MPORT[$p$n]=$(_new_port); done
    ic=$(initial_cluster "${p}1" "${p}2" "${p}3")
    for n in 1 2 3; do
        KVD_BIN=$bin node_start "$p$n" new "$ic" --quota-backend-bytes "$QUOTA" --listen-metrics-urls "http://127.0.0.1:${MPORT[$p$n]}"
    done
    wait_healthy "$START_TIMEOUT" "${p}1" "${p}2" "${p}3" || die "cluster $p did not become healthy"
    for ((i = 1; i <= 400; i++)); do
        if ! CMD_TIMEOUT=10 nctl "${p}1" put "big/$i" "$VALUE" >"$COMPAT_TMP/put.out" 2>&1; then failed_at=$i; break; fi
    done
    log "$p: first refused put: #$failed_at"
    echo "$(grep -v '^{"level"' "$COMPAT_TMP/put.out" | tail -n 1)" >"$COMPAT_TMP/$p.first"
    sleep 1  # every member that outgrew its quota has raised its alarm
    {
        echo "alarm list: $(outcome nctl "${p}2" alarm list)"
        for n in 1 2 3; do echo "put via $n: $(outcome nctl "$p$n" put small x)"; done
        echo "txn put: $(outcome nctl "${p}3" txn <<<$'\n\nput t x\n\n')"
        echo "txn delete: $(outcome nctl "${p}3" txn <<<$'\n\ndel nothing\n\n')"
        echo "get: $(outcome nctl "${p}2" get big/1 --keys-only)"
        echo "health: $(curl -s --max-time 5 -w ' %{http_code}' "http://127.0.0.1:${MPORT[${p}1]}/health")"
        echo "del: $(outcome nctl "${p}1" del big/ --prefix | sed -E 's/[0-9]+$/<n>/')"
        local rev
        rev=$(nctl "${p}1" get big/1 -w json | grep -o '"revision":[0-9]*' | cut -d: -f2)
        echo "compaction: $(outcome nctl "${p}1" compaction --physical "$rev" | sed -E 's/[0-9]+$/<rev>/')"
        echo "defrag: $(outcome cctl defrag --cluster | sed -E 's/127.0.0.1:[0-9]+/<ep>/g')"
        echo "disarm: $(outcome nctl "${p}1" alarm disarm)"
        echo "alarm list after: $(outcome nctl "${p}1" alarm list)"
        echo "put after: $(outcome nctl "${p}2" put small y)"
        echo "health after: $(curl -s --max-time 5 -w ' %{http_code}' "http://127.0.0.1:${MPORT[${p}1]}/health")"
    } >"$COMPAT_TMP/$p.steps"
    for n in 1 2 3; do node_kill9 "$p$n"; done
}

# etcd's e2e TestCtlV3Alarm on one member: a quota of 13 pages (53,248 bytes), 4 KiB puts until
# one is refused, then compaction, defragmentation and disarm make room, and a small put fits
# again. The pause before it lets a tick pass: kvd once raised the alarm again by itself on the
# next tick, its memtables counting as 1 MiB each, so the put failed whenever a tick came first.
small_quota() {
    local p=$1 bin=$2 i rev page
    page=$(head -c 4096 /dev/zero | tr '\0' b)
    node_ports "${p}1"
    KVD_BIN=$bin node_start "${p}1" new "$(initial_cluster "${p}1")" --quota-backend-bytes 53248
    wait_healthy "$START_TIMEOUT" "${p}1" || die "member ${p}1 did not become healthy"
    nctl "${p}1" put 1st_test aaaa >/dev/null
    for ((i = 1; i <= 300; i++)); do
        nctl "${p}1" put 2nd_test "$page" >"$COMPAT_TMP/put.out" 2>&1 || break
    done
    {
        echo "refused: $(grep -v '^{"level"' "$COMPAT_TMP/put.out" | tail -n 1)"
        echo "alarm list: $(outcome nctl "${p}1" alarm list)"
        rev=$(nctl "${p}1" get 1st_test -w json | grep -o '"revision":[0-9]*' | head -n 1 | cut -d: -f2)
        echo "compaction: $(outcome nctl "${p}1" compaction --physical "$rev" | sed -E 's/[0-9]+$/<rev>/')"
        echo "defrag: $(outcome nctl "${p}1" defrag | sed -E 's/127.0.0.1:[0-9]+/<ep>/g')"
        echo "disarm: $(outcome nctl "${p}1" alarm disarm)"
        sleep 0.5
        echo "put after: $(outcome nctl "${p}1" put 4th_test aaaa)"
        echo "alarm list after: $(outcome nctl "${p}1" alarm list)"
    } >"$COMPAT_TMP/$p.small"
    node_kill9 "${p}1"
}

scenario e "$ETCD_BIN"
scenario k "$KVD_BIN"
small_quota se "$ETCD_BIN"
small_quota sk "$KVD_BIN"
expect_eq "the refused put" "Error: etcdserver: mvcc: database space exceeded" "$(cat "$COMPAT_TMP/k.first")"
expect_eq "etcd's refused put (harness check)" "Error: etcdserver: mvcc: database space exceeded" "$(cat "$COMPAT_TMP/e.first")"
while IFS= read -r want && IFS= read -r got <&3; do
    if [[ $want == "$got" ]]; then pass "$got"; else fail "etcd: '$want', kvd: '$got'"; fi
done <"$COMPAT_TMP/e.steps" 3<"$COMPAT_TMP/k.steps"
while IFS= read -r want && IFS= read -r got <&3; do
    if [[ $want == "$got" ]]; then pass "quota of 13 pages: $got"; else fail "quota of 13 pages: etcd: '$want', kvd: '$got'"; fi
done <"$COMPAT_TMP/se.small" 3<"$COMPAT_TMP/sk.small"
summary alarm
