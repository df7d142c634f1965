#!/usr/bin/env bash
# Tests/Cluster/rogue.sh: (g) a member with a peer certificate from a foreign (rogue) CA
# cannot join. Checks:
#   - TLS on a member's peer port (openssl s_client): the good peer certificate is
#     accepted; a rogue peer certificate, a rogue client certificate and no certificate
#     are refused (--peer-client-cert-auth).
#   - n4 is added as a learner, then started with the rogue peer certificate and key
#     (trusting the right CA, as a misconfigured or malicious host would): it receives
#     no data, the member stays "unstarted", the cluster keeps its members, one leader,
#     and keeps serving writes. Then the same with n4 trusting only the rogue CA (not with QUICK=1).
#   - n4 joins as a learner with the good certificate, then restarts on its data dir
#     with the rogue one: the members no longer send it anything.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cluster_init rogue
nodes=(n1 n2 n3)
cluster_start "${nodes[@]}"
wait_one_leader 10 "${nodes[@]}" >/dev/null || die "no single leader"
put_many n1 base/ 30 2 || fail "initial puts"
reconfig_settle

# tls_probe PORT CERT_PREFIX|none: 0 if a TLS session with that client certificate is accepted.
tls_probe() {
    local cc=()
    [[ $2 == none ]] || cc=(-cert "$PKI/$2.crt" -key "$PKI/$2.key")
    # Keep stdin open a moment: in TLS 1.3 the server's verdict on the client
    # certificate (an alert) arrives after the client's handshake has finished.
    sleep 0.5 | timeout -k 2 5 openssl s_client -connect "127.0.0.1:$1" -servername localhost -alpn h2 \
        -CAfile "$PKI/etcd/ca.crt" "${cc[@]}" >"$COMPAT_TMP/probe.out" 2>&1
}
pp=${SERVER_PPORT[n2]}
if tls_probe "$pp" etcd/peer; then pass "peer port accepts the good peer cert"; else fail "peer port refuses the good peer cert: $(tail -n 3 "$COMPAT_TMP/probe.out")"; fi
for c in rogue/peer rogue/client none; do
    if tls_probe "$pp" "$c"; then fail "peer port accepted client cert '$c'"; else pass "peer port refuses '$c'"; fi
done

member_field() { cctl "${FAST[@]}" member list 2>/dev/null | awk -F', ' -v u="$(peer_url "$1")" -v f="$2" '$4 == u {print $f}'; }

# try_rogue LABEL PEER_CA: add n4 as learner, start it with the rogue peer cert, check, clean up.
try_rogue() {
    local label=$1 ca=$2 id4 out
    node_ports n4
    if ! out=$(cctl member add n4 --learner --peer-urls="$(peer_url n4)" 2>&1); then
        fail "$label: member add n4 --learner: $out"; return
    fi
    PEER_CERT=$PKI/rogue/peer.crt PEER_KEY=$PKI/rogue/peer.key PEER_CA=$ca \
        node_start n4 existing "$(initial_cluster n1 n2 n3 n4)"
    sleep $((5 * ET_MS / 1000))   # five election timeouts
    if node_running n4; then
        expect_eq "$label: n4 received no data" 0 "$(count_keys n4 base/ serializable)"
    else
        pass "$label: n4 could not start ($(grep -o 'cannot start member.*' "${SERVER_LOG[n4]}" | tail -n 1 | cut -c1-100))"
    fi
    expect_eq "$label: n4 stays unstarted" unstarted "$(member_field n4 2)"
    expect_eq "$label: still one leader among n1 n2 n3" 1 "$(leaders "${nodes[@]}" | wc -w)"
    if put_many n2 "during-$label/" 10 2 && [[ $(count_keys n3 "during-$label/") == 10 ]]; then
        pass "$label: cluster keeps serving"
    else
        fail "$label: cluster did not keep serving"
    fi
    if grep -qiE 'certificate|tls|ssl|handshake' "${SERVER_LOG[n4]}"; then
        vlog "$label: n4 log mentions the TLS failure"
    fi
    node_stop n4
    id4=$(member_field n4 1)
    if out=$(cctl member remove "$id4" 2>&1); then pass "$label: member remove n4"; else fail "$label: member remove n4: $out"; fi
    expect_eq "$label: members back to n1 n2 n3" "n1 n2 n3" \
        "$(cctl "${FAST[@]}" member list 2>/dev/null | awk -F', ' '{print $3}' | sort | paste -sd ' ')"
    # A fresh data dir for the next attempt.
    rm -rf "${SERVER_DATA[n4]}"
}
try_rogue "rogue cert, right CA" "$PKI/etcd/ca.crt"
[[ ${QUICK:-0} == 1 ]] || try_rogue "rogue cert, rogue CA" "$PKI/rogue/ca.crt"

# A learner that joined with the good certificate, restarted (existing data dir, so no
# start-up check against the peers) with the rogue one: it must receive nothing new.
node_ports n4
cctl member add n4 --learner --peer-urls="$(peer_url n4)" >/dev/null 2>&1 || fail "re-add n4 as learner"
node_start n4 existing "$(initial_cluster n1 n2 n3 n4)"
if wait_caught_up 20 n4 base/ 30; then pass "n4 with the good cert catches up"; else fail "n4 with the good cert did not catch up"; fi
node_stop n4
NODE_ARGS[n4]=${NODE_ARGS[n4]//"$PKI/etcd/peer."/"$PKI/rogue/peer."}
node_restart n4
sleep 1
put_many n1 after-rogue/ 20 2 || fail "puts while n4 runs with the rogue cert"
sleep $((3 * ET_MS / 1000))
if node_running n4; then
    expect_eq "restarted n4 with the rogue cert receives nothing new" 0 "$(count_keys n4 after-rogue/ serializable)"
else
    pass "restarted n4 with the rogue cert exited"
fi
expect_eq "still one leader among n1 n2 n3" 1 "$(leaders "${nodes[@]}" | wc -w)"
node_stop n4
id4=$(member_field n4 1)
cctl member remove "$id4" >/dev/null 2>&1 || fail "member remove n4 (last)"

if cctl endpoint health --cluster >"$COMPAT_TMP/health" 2>&1 && [[ $(grep -c 'is healthy' "$COMPAT_TMP/health") == 3 ]]; then
    pass "endpoint health --cluster (3 members)"
else
    fail "endpoint health --cluster: $(cat "$COMPAT_TMP/health")"
fi
summary rogue
