#!/usr/bin/env bash
# Tests/Cluster/tcp-gateway.sh: `kvd gateway start`, etcd's gateway (a TCP proxy in front of the
# client endpoints), beside `etcd gateway start` from etcd 3.4 in front of the same three kvd
# members, both checked the same way through etcdctl with mutual TLS end to end:
#  1. each logs "ready to proxy client requests" and serves puts, gets and a watch;
#  2. a 1 MiB value goes through whole, and so does 8 MiB that an endpoint sends and closes at once
#     to a client that reads slowly, from 2 s later;
#  3. with one member killed, every request still succeeds: a refused endpoint is set aside and
#     the next one tried;
#  4. with every member down, requests fail, and once the members are back (after the retry
#     delay) they succeed again;
#  5. a gateway whose listen address is one of its endpoints refuses to start, exit status 1;
#  6. SIGTERM stops it.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cluster_init tcp-gateway

cluster_start n1 n2 n3
endpoints=$(running_eps)
declare -A GW_PORT=() GW_PID=()
# stop_gateways: SIGTERM, as a service manager stops one; a gateway still there 5 s later fails
# the test (and is killed).
stop_gateways() {
    local g i
    for g in "${!GW_PID[@]}"; do
        kill "${GW_PID[$g]}" 2>/dev/null
        for ((i = 0; i < 50; i++)); do kill -0 "${GW_PID[$g]}" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "${GW_PID[$g]}" 2>/dev/null; then
            fail "$g did not stop on SIGTERM"
            kill -9 "${GW_PID[$g]}" 2>/dev/null
        else
            pass "$g stopped on SIGTERM"
        fi
        wait "${GW_PID[$g]}" 2>/dev/null
        unset "GW_PID[$g]"
    done
}
COMPAT_CLEANUP_HOOKS+=(stop_gateways)

# start_gateway NAME BIN: a gateway with a 2 s retry delay, waited for its "ready" line.
start_gateway() {
    local name=$1 bin=$2 i
    GW_PORT[$name]=$(_new_port)
    SERVER_LOG[$name]=$COMPAT_TMP/$name.log
    SERVER_KIND[$name]=gateway
    "$bin" gateway --endpoints="$endpoints" start --listen-addr="127.0.0.1:${GW_PORT[$name]}" --retry-delay=2s \
        >"${SERVER_LOG[$name]}" 2>&1 </dev/null &
    GW_PID[$name]=$!
    for ((i = 0; i < 50; i++)); do
        grep -q "ready to proxy client requests" "${SERVER_LOG[$name]}" && return 0
        sleep 0.1
    done
    fail "$name: no 'ready to proxy client requests' line"
}
gctl() { local g=$1; shift; ectl "127.0.0.1:${GW_PORT[$g]}" "${FAST[@]}" "$@"; }

start_gateway gw-kvd "$KVD_BIN"
start_gateway gw-etcd "$ETCD_BIN"
head -c 786432 /dev/urandom | base64 -w0 >"$COMPAT_TMP/big"   # 1 MiB of text

for g in gw-kvd gw-etcd; do
    expect_eq "$g: put" OK "$(gctl $g put "key-$g" "value-$g" 2>&1)"
    expect_eq "$g: get" "value-$g" "$(gctl $g get "key-$g" --print-value-only 2>&1)"
    gctl $g put "big-$g" <"$COMPAT_TMP/big" >/dev/null 2>&1
    expect_eq "$g: a 1 MiB value" "$(sha256sum <"$COMPAT_TMP/big" | cut -d' ' -f1)" \
        "$(gctl $g get "big-$g" --print-value-only 2>/dev/null | head -c -1 | sha256sum | cut -d' ' -f1)"
    # From revision 1, so that the event is there however late the watch starts; the stream
    # stays open until the timeout ends it.
    nctl n2 put "watched-$g" seen >/dev/null 2>&1
    CMD_TIMEOUT=3 gctl $g watch "watched-$g" --rev=1 >"$COMPAT_TMP/watch-$g" 2>&1
    expect_eq "$g: a watch" "PUT watched-$g seen" "$(paste -sd' ' "$COMPAT_TMP/watch-$g")"
done

# An endpoint that sends 8 MiB and closes at once (plain TCP, so nothing waits for the client's
# goodbye as TLS does), read slowly by a client that starts reading only 2 s later: the gateway
# must write out all it holds before it closes the client's side.
burst_port=$(_new_port)
python3 - "$burst_port" >"$COMPAT_TMP/burst.log" 2>&1 <<'PY' &
import socket, sys
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", int(sys.argv[1])))
server.listen(8)
while True:
    connection, _ = server.accept()
    connection.sendall(bytes(range(256)) * 32768)
    connection.close()
PY
burst_pid=$!
COMPAT_CLEANUP_HOOKS+=("kill $burst_pid 2>/dev/null")
sleep 0.5
for bin in "$KVD_BIN" "$ETCD_BIN"; do
    g=burst-$(basename "$bin")
    GW_PORT[$g]=$(_new_port)
    SERVER_LOG[$g]=$COMPAT_TMP/$g.log
    "$bin" gateway start --endpoints="127.0.0.1:$burst_port" --listen-addr="127.0.0.1:${GW_PORT[$g]}" >"${SERVER_LOG[$g]}" 2>&1 </dev/null &
    GW_PID[$g]=$!
    sleep 0.5
    expect_eq "$g: 8 MiB sent and closed at once, read slowly from 2 s later" 8388608 "$(python3 - "${GW_PORT[$g]}" <<'PY'
import socket, sys, time
client = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
time.sleep(2)
total = 0
client.settimeout(10)
while True:
    chunk = client.recv(16384)
    if not chunk:
        break
    total += len(chunk)
    time.sleep(0.002)  # a slow reader throughout: the gateway holds data for it
print(total)
PY
)"
done

node_kill9 n1
wait_one_leader "$START_TIMEOUT" n2 n3 >/dev/null || fail "no leader among n2, n3"
for g in gw-kvd gw-etcd; do
    ok=0
    for i in 1 2 3 4 5 6; do [[ $(gctl $g put "down-$g-$i" v 2>&1) == OK ]] && ok=$((ok + 1)); done
    expect_eq "$g: puts with n1 down" 6 "$ok"
done
expect_eq "the kvd gateway says it set an endpoint aside" yes \
    "$(grep -q "deactivated endpoint" "${SERVER_LOG[gw-kvd]}" && echo yes || echo no)"

node_stop n2
node_stop n3
for g in gw-kvd gw-etcd; do
    expect_eq "$g: a get with every member down" failed "$(gctl $g get "key-$g" --print-value-only 2>/dev/null || echo failed)"
done
node_restart n1
node_restart n2
node_restart n3
wait_healthy "$START_TIMEOUT" n1 n2 n3 || fail "members did not come back"
sleep 2.5   # the retry delay: every endpoint is eligible again
for g in gw-kvd gw-etcd; do
    ok=0
    for i in 1 2 3; do [[ $(gctl $g get "key-$g" --print-value-only 2>&1) == "value-$g" ]] && ok=$((ok + 1)); done
    expect_eq "$g: gets once the members are back" 3 "$ok"
done

port=${SERVER_CPORT[n1]}
for bin in "$KVD_BIN" "$ETCD_BIN"; do
    out=$(timeout 10 "$bin" gateway start --endpoints="127.0.0.1:$port" --listen-addr="127.0.0.1:$port" 2>&1)
    rc=$?
    expect_eq "$(basename "$bin") gateway: its own address as an endpoint, exit status" 1 "$rc"
    expect_eq "$(basename "$bin") gateway: its own address as an endpoint, message" yes \
        "$(grep -q "should not resolve to the gateway listen addr" <<<"$out" && echo yes || echo "no: $out")"
done
stop_gateways
summary tcp-gateway
