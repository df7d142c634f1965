#!/usr/bin/env bash
# Tests/Cluster/kvctl.sh: kvctl's cluster commands print exactly what etcdctl 3.4 prints (stdout,
# stderr, exit code) against the same three-member mutual-TLS kvd cluster:
#   1. endpoint health (listed endpoints and --cluster; simple, table, json), endpoint status
#      --cluster (simple, table, json; both tools run back to back with no write in between),
#      endpoint hashkv, member list (simple, table, json, fields; asked of one member).
#   2. error cases: unknown member ID (remove, promote, update), bad hex ID, move-leader to an
#      unknown member, move-leader with no leader among the endpoints, unsupported formats.
#   3. move-leader: kvctl moves leadership L -> F, etcdctl moves it back and then L -> F again;
#      etcdctl's second line must equal kvctl's.
#   4. membership: etcdctl adds learner n4 and kvctl removes it, kvctl adds n4 again (under
#      another peer URL) and etcdctl removes it (add output incl. ETCD_* lines, member list after
#      each add, remove output); kvctl and etcdctl each add and start a learner (n5, n6),
#      promote it, update its peer URLs and remove the other's (promoting a voter fails alike).
#   5. a killed member: endpoint health (simple, table, json, --cluster), endpoint status and
#      hashkv report it the same way (retry warning, "Failed to get ...", exit code).
# Normalised: only what differs between two runs of one tool: the durations of health checks
# (and so the table's column widths and the order of concurrently checked endpoints), the zap
# warning's timestamp and client UUID, and, where each tool made its own member, that ID.
# Environment: KVD_BIN, KVCTL_BIN (default .build/debug/kvctl), ETCDCTL_BIN, VERBOSE=1, KEEP_TMP=1.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cluster_init kvctl
[[ -x $KVCTL_BIN ]] || die "kvctl binary '$KVCTL_BIN' not found (set KVCTL_BIN)"
cluster_start n1 n2 n3
wait_one_leader 10 n1 n2 n3 >/dev/null || die "no single leader"

# run_tool BIN LABEL ENDPOINTS ARGS...: one command; $COMPAT_TMP/LABEL.{out,err,rc}.
run_tool() {
    local bin=$1 label=$2 eps=$3 rc=0; shift 3
    timeout -k 2 "$CMD_TIMEOUT" "$bin" --endpoints="$eps" --cacert="$PKI/etcd/ca.crt" \
        --cert="$PKI/apiserver-etcd-client.crt" --key="$PKI/apiserver-etcd-client.key" "$@" \
        >"$COMPAT_TMP/$label.out" 2>"$COMPAT_TMP/$label.err" || rc=$?
    echo "$rc" >"$COMPAT_TMP/$label.rc"
}
e() { run_tool "$ETCDCTL_BIN" "$@"; }
k() { run_tool "$KVCTL_BIN" "$@"; }
# both LABEL ENDPOINTS ARGS...: etcdctl (LABEL.e) then kvctl (LABEL.k), back to back.
both() { local label=$1; shift; e "$label.e" "$@"; k "$label.k" "$@"; }

# report LABEL FILTER...: stdout, stderr and exit code, stdout and stderr through the filters.
report() {
    local label=$1; shift
    echo "stdout:"; filter "$@" <"$COMPAT_TMP/$label.out"
    echo "stderr:"; normalise_stderr <"$COMPAT_TMP/$label.err" | filter "$@"
    echo "exit: $(cat "$COMPAT_TMP/$label.rc")"
}
filter() { if (($#)); then "$@"; else cat; fi; }

# same DESC LABEL_A LABEL_B [FILTER...]: the two reports must be identical.
same() {
    local desc=$1 a=$2 b=$3; shift 3
    if diff -q <(report "$a" "$@") <(report "$b" "$@") >/dev/null; then
        pass "$desc"
    else
        fail "$desc: etcdctl and kvctl differ"
        diff -u --label etcdctl --label kvctl <(report "$a" "$@") <(report "$b" "$@") | sed 's/^/    /' >&2 || true
    fi
}
# both_same DESC LABEL [FILTER...]: same for a label made by `both`.
both_same() { local desc=$1 label=$2; shift 2; same "$desc" "$label.e" "$label.k" "$@"; }

# Filters. A health check's duration differs from run to run, so does the order in which
# concurrently checked endpoints answer (etcdctl lists them as they come), and with the
# duration's length the table's column widths.
took() {
    sed -E -e 's/took = [0-9][0-9.]*[a-zµ]+/took = <d>/' -e 's/"took":"[^"]*"/"took":"<d>"/g' \
        -e 's/^"Took" : .*/"Took" : <d>/' -e 's/\| *[0-9][0-9.]*(ns|µs|ms|s|m[0-9.]+s) \|/| <d> |/'
}
unordered() {
    sed -E -e 's/\},\{"endpoint"/}\n{"endpoint"/g' -e 's/^\[\{/[\n{/' -e 's/\}\]$/}\n]/' | took | tr -s ' -' | sort
}
# ids HEX...: each member ID (hex, padded or not, and decimal) becomes <new>, and so does
# the peer URL in NEW_PEER_URLS (where each tool added its member under its own URL); column
# widths squeezed. Members are listed in ID order (as etcd does), so where the new member lands
# in a list depends on its random ID: list items are put one per line and sorted.
NEW_PEER_URLS=()
ids() {
    local h u script=(-e 's/^$/<empty>/')
    for h in "$@"; do
        [[ -n $h ]] || continue
        script+=(-e "s/ *\\b$h\\b/ <new>/g" -e "s/\\b$(printf '%u' "0x$h")\\b/<new>/g")
    done
    for u in "${NEW_PEER_URLS[@]}"; do script+=(-e "s|$u|<new-peer>|g"); done
    sed -E "${script[@]}" -e 's/\},\{"ID"/}\n{"ID"/g' -e 's/"members":\[\{/"members":[\n{/' -e 's/\}\]\}$/}\n]}/' \
        -e '/^ETCD_INITIAL_CLUSTER=/s/[,"]/\n/g' | tr -s ' -' | sort
}

all=$(running_eps)
one=${SERVER_EP[n1]}

# ---- 1. reports -------------------------------------------------------------------
both health "$all" endpoint health
both_same "endpoint health" health unordered
both health_t "$one" endpoint health --cluster -w table
both_same "endpoint health --cluster -w table" health_t unordered
both health_j "$all" endpoint health -w json
both_same "endpoint health -w json" health_j unordered
both health_f "$one" endpoint health --cluster -w fields
both_same "endpoint health --cluster -w fields (set of lines)" health_f unordered
# Status, hashkv and member list answer from each member's state: no write happens between the
# two runs, but a retry covers an entry the cluster itself appends in between (e.g. a leader's
# no-op after a stray election), so that only a persistent difference fails.
for fmt in simple table json; do
    for attempt in 1 2 3; do
        both "status_$fmt" "$one" endpoint status --cluster -w "$fmt"
        diff -q <(report "status_$fmt.e") <(report "status_$fmt.k") >/dev/null && break
        sleep 0.5
    done
    both_same "endpoint status --cluster -w $fmt" "status_$fmt"
done
both status_l "$all" endpoint status -w fields
both_same "endpoint status -w fields" status_l
both hash "$all" endpoint hashkv -w table
both_same "endpoint hashkv -w table" hash
for fmt in simple table json fields protobuf; do
    both "list_$fmt" "$one" member list -w "$fmt"
    both_same "member list -w $fmt" "list_$fmt"
done

# ---- 2. errors --------------------------------------------------------------------------
both rm_unknown "$all" member remove 1234
both_same "member remove of an unknown ID" rm_unknown
both pr_unknown "$all" member promote 1234
both_same "member promote of an unknown ID" pr_unknown
both up_unknown "$all" member update 1234 --peer-urls=https://127.0.0.1:1
both_same "member update of an unknown ID" up_unknown
both rm_bad "$all" member remove xyz
both_same "member remove with a bad hex ID" rm_bad
both pr_voter "$all" member promote "$(member_id n2)"
both_same "member promote of a voter" pr_voter
both add_noargs "$all" member add n9
both_same "member add without --peer-urls" add_noargs
both ml_unknown "$all" move-leader 1234
both_same "move-leader to an unknown member" ml_unknown
both ml_bad "$all" move-leader 0xzz
both_same "move-leader with a bad hex ID" ml_bad
both health_pb "$all" endpoint health -w protobuf
both_same "endpoint health -w protobuf (unsupported)" health_pb
both rm_table "$all" member remove 1234 -w table
both_same "member remove -w table of an unknown ID" rm_table

# ---- 3. move-leader ---------------------------------------------------------------------
leader=$(wait_one_leader 10 n1 n2 n3) || die "no single leader"
read -r follower _ <<<"$(others "$leader" n1 n2 n3)"
lid=$(member_id "$leader") fid=$(member_id "$follower")
k ml1.k "$all" move-leader "$fid"
expect_eq "kvctl move-leader exit code" 0 "$(cat "$COMPAT_TMP/ml1.k.rc")"
wait_one_leader 10 n1 n2 n3 >/dev/null
e ml2.e "$all" move-leader "$lid"
wait_one_leader 10 n1 n2 n3 >/dev/null
e ml3.e "$all" move-leader "$fid"
same "move-leader $lid -> $fid" ml3.e ml1.k
expect_eq "leader after move-leader" "$follower" "$(wait_one_leader 10 n1 n2 n3)"
both ml_noleader "${SERVER_EP[$leader]}" move-leader "$fid"
both_same "move-leader with no leader among the endpoints" ml_noleader
both ml_table "${SERVER_EP[$follower]}" move-leader "$fid" -w table
both_same "move-leader -w table (unsupported, after the transfer)" ml_table

# ---- 4. membership ----------------------------------------------------------------------
# NB: each tool adds n4 under its own peer URL: kvd derives a member's ID from its peer URLs
# alone, so adding a removed member's URLs again is refused ("member ID already exist") where
# etcd, which mixes in the time of the request, accepts it.
reconfig_settle
node_ports n4
node_ports n4k
NEW_PEER_URLS=("$(peer_url n4)" "$(peer_url n4k)")
added_id() { awk '/^Member .* added to cluster/ {print $2}' "$COMPAT_TMP/$1.out"; }
e add4.e "$all" member add n4 --learner --peer-urls="$(peer_url n4)"
id_e=$(added_id add4.e)
e list4.e "$one" member list -w table
e list4j.e "$one" member list -w json
k rm4.k "$all" member remove "$id_e"
k add4.k "$all" member add n4 --learner --peer-urls="$(peer_url n4k)"
id_k=$(added_id add4.k)
k list4.k "$one" member list -w table
k list4j.k "$one" member list -w json
e rm4.e "$all" member remove "$id_k"
[[ -n $id_e && -n $id_k ]] || fail "member add printed no ID (etcdctl: '$id_e', kvctl: '$id_k')"
same "member add --learner (with the ETCD_* lines)" add4.e add4.k ids "$id_e" "$id_k"
same "member list -w table after adding a learner" list4.e list4.k ids "$id_e" "$id_k"
same "member list -w json after adding a learner" list4j.e list4j.k ids "$id_e" "$id_k"
same "member remove of a learner" rm4.e rm4.k ids "$id_e" "$id_k"
NEW_PEER_URLS=()

# Each tool adds, starts, promotes and updates its own learner, one after the other (etcd allows
# one learner at a time), then removes the other's.
# promote_until TOOL LABEL ID: a learner is promoted once it has caught up with the leader.
promote_until() {
    local tool=$1 label=$2 id=$3 i
    for ((i = 0; i < 40; i++)); do
        "$tool" "$label" "$all" member promote "$id"
        [[ $(cat "$COMPAT_TMP/$label.rc") == 0 ]] && return 0
        sleep 0.5
    done
    return 1
}
node_ports n5
node_ports n6
reconfig_settle
k add5.k2 "$all" member add n5 --learner --peer-urls="$(peer_url n5)" -w json
id5=$(sed -nE 's/.*"member":\{"ID":([0-9]+).*/\1/p' "$COMPAT_TMP/add5.k2.out")
[[ -n $id5 ]] && id5=$(printf '%x' "$id5")
node_start n5 existing "$(initial_cluster n1 n2 n3 n5)"
promote_until k pr5.k "$id5" || fail "kvctl member promote n5: $(cat "$COMPAT_TMP/pr5.k.err")"
reconfig_settle
e add6.e "$all" member add n6 --learner --peer-urls="$(peer_url n6)"
id6=$(added_id add6.e)
node_start n6 existing "$(initial_cluster n1 n2 n3 n5 n6)"
promote_until e pr6.e "$id6" || fail "etcdctl member promote n6: $(cat "$COMPAT_TMP/pr6.e.err")"
[[ -n $id5 && -n $id6 ]] || fail "member add printed no ID (kvctl: '$id5', etcdctl: '$id6')"
same "member promote" pr6.e pr5.k ids "$id5" "$id6"
e pr5.e "$all" member promote "$id5"
k pr6.k "$all" member promote "$id6"
same "member promote of a promoted learner" pr5.e pr6.k ids "$id5" "$id6"
reconfig_settle
e up6.e "$all" member update "$id6" --peer-urls="$(peer_url n6)"
k up5.k "$all" member update "$id5" --peer-urls="$(peer_url n5)"
same "member update" up6.e up5.k ids "$id5" "$id6"
k rm6.k "$all" member remove "$id6"
expect_removed_exit n6
reconfig_settle
e rm5.e2 "$all" member remove "$id5"
expect_removed_exit n5
same "member remove of a voter" rm5.e2 rm6.k ids "$id5" "$id6"
wait_one_leader 10 n1 n2 n3 >/dev/null || fail "no single leader after removing n5 and n6"

# ---- 5. a killed member -----------------------------------------------------------------
leader=$(wait_one_leader 10 n1 n2 n3)
read -r victim _ <<<"$(others "$leader" n1 n2 n3)"
node_kill9 "$victim"
both dead_health "$all" "${FAST[@]}" endpoint health
both_same "endpoint health with $victim killed" dead_health unordered
both dead_health_t "$one" "${FAST[@]}" endpoint health --cluster -w table
both_same "endpoint health --cluster -w table with $victim killed" dead_health_t unordered
both dead_health_j "$all" "${FAST[@]}" endpoint health -w json
both_same "endpoint health -w json with $victim killed" dead_health_j unordered
both dead_status "$all" "${FAST[@]}" endpoint status -w table
both_same "endpoint status -w table with $victim killed" dead_status
both dead_hash "$all" "${FAST[@]}" endpoint hashkv
both_same "endpoint hashkv with $victim killed" dead_hash
both dead_ml "${SERVER_EP[$victim]},$one" "${FAST[@]}" move-leader "$(printf '%x' 1)"
both_same "move-leader with a killed member first" dead_ml
summary kvctl
