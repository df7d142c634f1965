#!/usr/bin/env bash
# Tests/Cluster/auth.sh: users, roles and authentication on three mutual-TLS members, kvd beside
# etcd 3.4. The same steps run against both clusters and each step's outcome (exit status and
# output, without clientv3's retry warnings) must match:
#   - changes made through one member are seen at once by linearizable reads on the others;
#     refused changes (a duplicate user, a role that does not exist) fail alike;
#   - `auth enable` without a root user fails alike;
#   - users and roles survive a restart of every member;
#   - `auth enable` (etcdctl creates and grants the root role first), then password logins on
#     each member (a token made on one member is known to all), key-range permissions on reads,
#     writes, txns and watches, admin-only commands, the client certificate's CN as the user of
#     requests without a password, a wrong password, the JSON gateway with a token (a lock too), a lease
#     that expires with auth on, and all of it again after a restart;
#   - `auth disable` by root only, after which requests need no credentials again;
#   - puts by a certificate's CN while users are added and deleted all succeed (auth-churn.py; kvd
#     only: etcd 3.4 refuses many of them).
# The kvd cluster runs twice: with Debian's etcdctl, then with kvctl as the client. Then JWT
# tokens on one member each, and each server accepting the other's tokens.
# About 80 s on a 2-core machine.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cluster_init auth
[[ -x $ETCD_BIN ]] || die "etcd binary '$ETCD_BIN' not found (apt-get install etcd-server)"

# outcome NAME ARGS...: "exit N: output" of etcdctl against member NAME, lines joined by ';'
# (without clientv3's retry warnings).
outcome() {
    local n=$1 out rc=0; shift
    out=$(nctl "$n" "$@" 2>&1) || rc=$?
    echo "exit $rc: $(grep -v '^{"level"' <<<"$out" | paste -sd ';')"
}

# A client certificate without a common name: etcd's gateway refuses calls from one that has a CN
# once auth is on (the gateway could not pass the name on), so token calls use this one.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$COMPAT_TMP/nocn.key" 2>/dev/null
openssl req -new -key "$COMPAT_TMP/nocn.key" -subj "/O=kvd-tests" -out "$COMPAT_TMP/nocn.csr" 2>/dev/null
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n' >"$COMPAT_TMP/nocn.cnf"
openssl x509 -req -in "$COMPAT_TMP/nocn.csr" -CA "$PKI/etcd/ca.crt" -CAkey "$PKI/etcd/ca.key" -set_serial 7 -days 2 \
    -extfile "$COMPAT_TMP/nocn.cnf" -out "$COMPAT_TMP/nocn.crt" 2>/dev/null || die "cannot make a client certificate without a CN"

# gateway NAME CERT PATH BODY [TOKEN]: "HTTP status: the answer's values or error" of one JSON
# gateway call with the certificate CERT ("cn": the apiserver client's; "nocn": one without a CN).
gateway() {
    local n=$1 cert=$2 path=$3 body=$4 token=${5:-} code args=()
    if [[ $cert == cn ]]; then
        args+=(--cert "$PKI/apiserver-etcd-client.crt" --key "$PKI/apiserver-etcd-client.key")
    else
        args+=(--cert "$COMPAT_TMP/nocn.crt" --key "$COMPAT_TMP/nocn.key")
    fi
    [[ -z $token ]] || args+=(-H "Authorization: $token")
    code=$(curl -s -o "$COMPAT_TMP/gw.body" -w '%{http_code}' --max-time 5 --cacert "$PKI/etcd/ca.crt" \
        "${args[@]}" -X POST "${SERVER_EP[$n]}$path" -d "$body")
    echo "$code: $(python3 -c 'import base64, json, sys
a = json.load(open(sys.argv[1]))
print(a.get("message") or [base64.b64decode(kv["value"]).decode() for kv in a.get("kvs", [])])' "$COMPAT_TMP/gw.body" 2>/dev/null ||
        head -c 300 "$COMPAT_TMP/gw.body")"
}

scenario() {
    local p=$1 bin=$2 n ic
    for n in 1 2 3; do node_ports "$p$n"; done
    ic=$(initial_cluster "${p}1" "${p}2" "${p}3")
    for n in 1 2 3; do KVD_BIN=$bin node_start "$p$n" new "$ic"; done
    wait_healthy "$START_TIMEOUT" "${p}1" "${p}2" "${p}3" || die "cluster $p did not become healthy"
    {
        echo "user add via 1: $(outcome "${p}1" user add alice:pw)"
        echo "role add via 2: $(outcome "${p}2" role add readers)"
        echo "grant-permission via 3: $(outcome "${p}3" role grant-permission readers read --prefix /r/)"
        echo "grant-permission via 1: $(outcome "${p}1" role grant-permission readers readwrite /w/ /x/)"
        echo "grant-role via 2: $(outcome "${p}2" user grant-role alice readers)"
        for n in 1 2 3; do echo "user get --detail on $n: $(outcome "$p$n" user get alice --detail)"; done
        echo "role get -w fields on 3: $(outcome "${p}3" role get readers -w fields | sed -E 's/("(ClusterID|MemberID|RaftTerm)" : )[0-9]+/\1<n>/g')"
        echo "duplicate user via 2: $(outcome "${p}2" user add alice:other)"
        echo "missing role via 3: $(outcome "${p}3" user grant-role alice writers)"
        echo "auth enable without root: $(outcome "${p}1" auth enable)"
        echo "root user via 3: $(outcome "${p}3" user add root:rootpw)"
        echo "user list on 2: $(outcome "${p}2" user list)"
        echo "put: $(outcome "${p}1" put /r/k v)"
    } >"$COMPAT_TMP/$p.steps"
    for n in 1 2 3; do node_stop "$p$n"; done
    for n in 1 2 3; do node_restart "$p$n"; done
    wait_healthy "$START_TIMEOUT" "${p}1" "${p}2" "${p}3" || die "cluster $p did not come back after the restart"
    {
        for n in 1 2 3; do
            echo "users after a restart, on $n: $(outcome "$p$n" user list)"
            echo "user get --detail after a restart, on $n: $(outcome "$p$n" user get alice --detail)"
        done
        echo "roles after a restart: $(outcome "${p}2" role list)"
        echo "a password while auth is off is ignored: $(outcome "${p}1" --user root:rootpw put /r/pre x)"
        echo "auth enable via 2: $(outcome "${p}2" auth enable)"
        echo "root user get: $(outcome "${p}3" --user root:rootpw user get root)"
        echo "put by the certificate's user (none such): $(outcome "${p}1" put /r/k v2)"
        echo "put as root via 3: $(outcome "${p}3" --user root:rootpw put /r/k v3)"
        echo "get as alice via 1: $(outcome "${p}1" --user alice:pw get /r/k --print-value-only)"
        echo "put as alice in her range via 2: $(outcome "${p}2" --user alice:pw put /w/a 1)"
        echo "put as alice outside it via 3: $(outcome "${p}3" --user alice:pw put /r/k v4)"
        echo "get outside alice's range: $(outcome "${p}1" --user alice:pw get /q)"
        echo "prefix read covered by the grant: $(outcome "${p}2" --user alice:pw get /r/ --prefix --keys-only)"
        echo "range read beyond the grant: $(outcome "${p}2" --user alice:pw get /r/ /z)"
        echo "wrong password: $(outcome "${p}1" --user alice:nope get /r/k)"
        echo "unknown user: $(outcome "${p}1" --user mallory:pw get /r/k)"
        echo "txn as alice reading /r/, writing /w/: $(printf 'value("/r/k") = "v3"\n\nput /w/t ok\n\nput /w/f no\n' | outcome "${p}3" --user alice:pw txn)"
        echo "txn as alice writing /r/: $(printf '\nput /r/t no\n\n' | outcome "${p}3" --user alice:pw txn)"
        echo "watch outside alice's range: $(outcome "${p}1" --user alice:pw watch /q --rev 1 | head -c 200)"
        local token
        token=$(curl -s --max-time 5 --cacert "$PKI/etcd/ca.crt" --cert "$COMPAT_TMP/nocn.crt" \
            --key "$COMPAT_TMP/nocn.key" -X POST "${SERVER_EP[${p}3]}/v3/auth/authenticate" \
            -d '{"name":"alice","password":"pw"}' | python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')
        echo "gateway call with a certificate's CN: $(gateway "${p}1" cn /v3/kv/range '{"key":"L3Ivaw=="}' "$token")"
        echo "gateway /v3beta/ call with a certificate's CN: $(gateway "${p}1" cn /v3beta/kv/range '{"key":"L3Ivaw=="}' "$token")"
        echo "gateway range with alice's token: $(gateway "${p}1" nocn /v3/kv/range '{"key":"L3Ivaw=="}' "$token")"
        echo "gateway range outside her range: $(gateway "${p}2" nocn /v3/kv/range '{"key":"L3E="}' "$token")"
        echo "gateway range without a token: $(gateway "${p}3" nocn /v3/kv/range '{"key":"L3Ivaw=="}')"
        echo "gateway range with a bad token: $(gateway "${p}3" nocn /v3/kv/range '{"key":"L3Ivaw=="}' nosuch.1)"
        # The lock service calls the member's own KV with the caller's credentials, as etcd's does.
        echo "gateway lock in alice's range: $(gateway "${p}2" nocn /v3/lock/lock '{"name":"L3cvbA=="}' "$token")"
        echo "gateway lock outside her range: $(gateway "${p}2" nocn /v3/lock/lock '{"name":"L3E="}' "$token")"
        echo "user list as alice: $(outcome "${p}2" --user alice:pw user list)"
        echo "user get of herself as alice: $(outcome "${p}2" --user alice:pw user get alice)"
        echo "role get of her role as alice: $(outcome "${p}2" --user alice:pw role get readers)"
        echo "member list as alice: $(outcome "${p}2" --user alice:pw member list | wc -l)"
        echo "compaction as alice: $(outcome "${p}2" --user alice:pw compaction 2)"
        echo "user delete root: $(outcome "${p}1" --user root:rootpw user delete root)"
        echo "certificate's user added: $(outcome "${p}1" --user root:rootpw user add kube-apiserver-etcd-client --no-password)"
        echo "certificate's user granted readers: $(outcome "${p}1" --user root:rootpw user grant-role kube-apiserver-etcd-client readers)"
        echo "get by the certificate's user: $(outcome "${p}3" get /r/k --print-value-only)"
        echo "put by the certificate's user: $(outcome "${p}3" put /r/k v5)"
        echo "auth disable as alice: $(outcome "${p}3" --user alice:pw auth disable)"
        # The leader revokes an expired lease, and deletes its key, with auth on.
        local lease
        lease=$(nctl "${p}1" --user root:rootpw lease grant 2 2>/dev/null | awk '{print $2}')
        echo "put with a lease as alice: $(outcome "${p}1" --user alice:pw put /w/leased v --lease="$lease")"
        sleep 5
        echo "the leased key after its lease expired: $(outcome "${p}2" --user alice:pw get /w/leased --print-value-only)"
    } >>"$COMPAT_TMP/$p.steps"
    for n in 1 2 3; do node_stop "$p$n"; done
    for n in 1 2 3; do node_restart "$p$n"; done
    wait_healthy "$START_TIMEOUT" "${p}1" "${p}2" "${p}3" || die "cluster $p did not come back after the second restart"
    {
        for n in 1 2 3; do
            echo "get as alice after a restart, on $n: $(outcome "$p$n" --user alice:pw get /w/a --print-value-only)"
        done
        echo "put as alice outside her range after a restart: $(outcome "${p}2" --user alice:pw put /q x)"
        echo "get by the certificate's user after a restart: $(outcome "${p}1" get /r/k --print-value-only)"
        echo "auth disable as root: $(outcome "${p}1" --user root:rootpw auth disable)"
        echo "put without a password after disable: $(outcome "${p}2" put /q x)"
        echo "auth enable again: $(outcome "${p}2" auth enable)"
        echo "a put without a password is refused again: $(outcome "${p}3" put /q y)"
    } >>"$COMPAT_TMP/$p.steps"
}

scenario e "$ETCD_BIN"
for n in 1 2 3; do node_kill9 "e$n"; done
scenario k "$KVD_BIN"
for n in 1 2 3; do node_kill9 "k$n"; done
# kvctl's --user/--password against kvd, compared with etcdctl's against etcd.
ETCDCTL_BIN=$KVCTL_BIN scenario c "$KVD_BIN"
for run in k c; do
    while IFS= read -r want && IFS= read -r got <&3; do
        if [[ $want == "$got" ]]; then pass "$got"; else fail "etcd: '$want', kvd ($run): '$got'"; fi
    done <"$COMPAT_TMP/e.steps" 3<"$COMPAT_TMP/$run.steps"
    [[ $(wc -l <"$COMPAT_TMP/$run.steps") -ge 55 ]] || fail "kvd ($run) ran only $(wc -l <"$COMPAT_TMP/$run.steps") steps"
done
# JWT tokens (--auth-token jwt,...): one member each of etcd and kvd with the same RSA key run the
# same steps; then each accepts a token the other signed (same claims, same signature, same auth
# revision after the same steps).
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$COMPAT_TMP/jwt.key" 2>/dev/null
openssl rsa -in "$COMPAT_TMP/jwt.key" -pubout -out "$COMPAT_TMP/jwt.pub" 2>/dev/null || die "cannot make an RSA key"
jwt_flag="--auth-token=jwt,pub-key=$COMPAT_TMP/jwt.pub,priv-key=$COMPAT_TMP/jwt.key,sign-method=RS256,ttl=10m"
jwt_steps() {
    local n=$1
    echo "user add root: $(outcome "$n" user add root:rootpw)"
    echo "user add alice: $(outcome "$n" user add alice:pw)"
    echo "role add: $(outcome "$n" role add rw)"
    echo "grant-permission: $(outcome "$n" role grant-permission rw readwrite /a/ --prefix)"
    echo "grant-role: $(outcome "$n" user grant-role alice rw)"
    echo "auth enable: $(outcome "$n" auth enable)"
    echo "put as alice: $(outcome "$n" --user alice:pw put /a/1 x)"
    echo "put outside her range: $(outcome "$n" --user alice:pw put /b x)"
    echo "get as root: $(outcome "$n" --user root:rootpw get /a/1 --print-value-only)"
    echo "wrong password: $(outcome "$n" --user alice:nope get /a/1)"
}
jwt_token() {
    curl -s --max-time 5 --cacert "$PKI/etcd/ca.crt" --cert "$COMPAT_TMP/nocn.crt" --key "$COMPAT_TMP/nocn.key" \
        -X POST "${SERVER_EP[$1]}/v3/auth/authenticate" -d '{"name":"alice","password":"pw"}' |
        python3 -c 'import json, sys; print(json.load(sys.stdin).get("token", "none"))'
}
start_alone "$ETCD_BIN" ej "$jwt_flag"
jwt_steps ej >"$COMPAT_TMP/e.jwt"
start_alone "$KVD_BIN" kj "$jwt_flag"
jwt_steps kj >"$COMPAT_TMP/k.jwt"
while IFS= read -r want && IFS= read -r got <&3; do
    if [[ $want == "$got" ]]; then pass "jwt: $got"; else fail "jwt: etcd: '$want', kvd: '$got'"; fi
done <"$COMPAT_TMP/e.jwt" 3<"$COMPAT_TMP/k.jwt"
etcd_token=$(jwt_token ej)
kvd_token=$(jwt_token kj)
[[ $etcd_token == *.*.* && $kvd_token == *.*.* ]] || fail "no JWT from etcd ('$etcd_token') or kvd ('$kvd_token')"
expect_eq "kvd accepts etcd's JWT" "200: ['x']" "$(gateway kj nocn /v3/kv/range '{"key":"L2EvMQ=="}' "$etcd_token")"
expect_eq "etcd accepts kvd's JWT" "200: ['x']" "$(gateway ej nocn /v3/kv/range '{"key":"L2EvMQ=="}' "$kvd_token")"
expect_eq "a JWT with a changed signature is refused" "401: etcdserver: invalid auth token" \
    "$(gateway kj nocn /v3/kv/range '{"key":"L2EvMQ=="}' "${kvd_token%?????}AAAAA")"

# Writes named by the client certificate's CN while users are added and deleted: a write whose
# apply finds the auth store moved on is proposed again in the caller's name, so no put fails.
# etcd 3.4 answers such a write "etcdserver: revision of auth store is old" (254 of the 480 here;
# clientv3 retries only callers with a password, after logging in again), as kvd did, for 1 of 480.
if [[ $(basename "$KVD_BIN") != etcd ]]; then
    bin=$KVD_BIN name=churn
    start_alone "$bin" "$name"
    for step in "user add root:rootpw" "user add kube-apiserver-etcd-client --no-password" \
        "user grant-role kube-apiserver-etcd-client root" "auth enable"; do
        # shellcheck disable=SC2086
        nctl "$name" $step >/dev/null 2>&1 || fail "$name: $step"
    done
    out=$(timeout 120 /usr/bin/python3 "$CLUSTER_DIR/auth-churn.py" 127.0.0.1 "${SERVER_CPORT[$name]}" "$PKI/etcd/ca.crt" \
        "$PKI/apiserver-etcd-client.crt" "$PKI/apiserver-etcd-client.key" rootpw 2>&1)
    expect_eq "$(basename "$bin"): 480 puts by the certificate's user while users come and go" "ok: 480" "$(grep -v '^churn:' <<<"$out")"
    changes=$(sed -n 's/^churn: \([0-9]*\) user changes$/\1/p' <<<"$out")
    if ((${changes:-0} >= 10)); then pass "$(basename "$bin"): $changes user changes meanwhile"; else fail "$(basename "$bin"): only '${changes:-}' user changes: $out"; fi
    node_kill9 "$name"
fi

# The harness: etcd enabled authentication and enforced it.
grep -q '^auth enable via 2: exit 0: Authentication Enabled$' "$COMPAT_TMP/e.steps" || fail "etcd did not enable authentication"
grep -q '^put as alice outside it via 3: exit 1: .*permission denied' "$COMPAT_TMP/e.steps" || fail "etcd did not refuse alice's put"
summary auth
