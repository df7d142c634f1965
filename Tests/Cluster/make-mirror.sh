#!/usr/bin/env bash
# Tests/Cluster/make-mirror.sh: `kvctl make-mirror` beside `etcdctl make-mirror` 3.4. One source kvd
# member and two destination kvd members (mutual TLS everywhere); etcdctl mirrors the source's
# "src/" keys to the first as "dst/", kvctl the same to the second. Keys written before the mirror
# starts (more than one 1,000-key page) and changes made while it runs (puts, deletes, a txn of
# several ops, a key outside the prefix) must reach both destinations the same way: equal keys,
# values and versions, and the same number of destination revisions (one per source revision).
# Also etcdctl's argument errors.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cluster_init make-mirror

for n in src de dk; do start_alone "$KVD_BIN" "$n"; done

put_many src src/base 1010 >/dev/null || die "load of the source failed"
nctl src put outside/key v >/dev/null

# wait_for SECONDS CONDITION: polls CONDITION (a string for eval) every 0.2 s.
wait_for() {
    local deadline=$((SECONDS + $1))
    until eval "$2"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

# count NAME PREFIX: how many keys NAME holds under PREFIX.
count() { nctl "$1" get "$2" --prefix --keys-only 2>/dev/null | grep -c .; }

dest_flags=(--dest-cacert="$PKI/etcd/ca.crt" --dest-cert="$PKI/apiserver-etcd-client.crt"
    --dest-key="$PKI/apiserver-etcd-client.key")
mirror() {
    local tool=$1 dest=$2
    "$tool" --endpoints="${SERVER_EP[src]}" $(tls_flags) make-mirror --prefix src/ --dest-prefix dst/ \
        "${dest_flags[@]}" "${SERVER_EP[$dest]}" >"$COMPAT_TMP/mirror.$dest" 2>&1 &
    MIRROR_PID[$dest]=$!
}
declare -A MIRROR_PID=()
mirror "$ETCDCTL_BIN" de
mirror "$KVCTL_BIN" dk

# Both copies of the base, then changes while the mirrors run.
for n in de dk; do
    wait_for 30 "[[ \$(count $n dst/) == 1010 ]]" \
        || fail "$n: base copy incomplete"
done
nctl src put src/new one >/dev/null
nctl src put src/new two >/dev/null
nctl src del src/base1 >/dev/null
nctl src put outside/other x >/dev/null
nctl src txn <<'EOF' >/dev/null
value("src/new") = "two"

put src/txn-a a
put src/txn-b b
del src/base2


EOF
nctl src put src/last end >/dev/null
for n in de dk; do
    wait_for 30 "[[ \$(nctl $n get dst/last --print-value-only 2>/dev/null) == end ]]" || fail "$n: changes not mirrored"
done
for n in de dk; do kill "${MIRROR_PID[$n]}"; wait "${MIRROR_PID[$n]}" 2>/dev/null; done

# keys, values, versions; and how many revisions each destination made.
listing() { nctl "$1" get "" --from-key -w json | python3 -c '
import json, sys
r = json.load(sys.stdin)
for kv in r.get("kvs", []):
    print(kv["key"], kv.get("value", ""), kv["version"], kv["create_revision"], kv["mod_revision"])
print("revision", r["header"]["revision"])'; }
expect_eq "make-mirror: the destinations are equal (kvctl as etcdctl)" "$(listing de)" "$(listing dk)"
expect_eq "make-mirror: dst/ holds the base and the changes" "1012" "$(count dk dst/)"
expect_eq "make-mirror: nothing outside the prefix" "" "$(nctl dk get outside/ --prefix --keys-only)"
expect_eq "make-mirror: the txn arrived as one revision" "$(nctl dk get dst/txn-a -w json | python3 -c \
    'import json,sys; print(json.load(sys.stdin)["kvs"][0]["mod_revision"])')" "$(nctl dk get dst/txn-b -w json |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["kvs"][0]["mod_revision"])')"

errors() {
    local tool=$1
    "$tool" --endpoints="${SERVER_EP[src]}" $(tls_flags) make-mirror 2>&1; echo "rc=$?"
    "$tool" --endpoints="${SERVER_EP[src]}" $(tls_flags) make-mirror --dest-prefix a --no-dest-prefix \
        "${dest_flags[@]}" "${SERVER_EP[dk]}" 2>&1; echo "rc=$?"
}
expect_eq "make-mirror: argument errors (kvctl as etcdctl)" "$(errors "$ETCDCTL_BIN")" "$(errors "$KVCTL_BIN")"
summary make-mirror
