#!/usr/bin/env bash
# Tests/Compat/bridge.sh: the calls kvd's client port carries to its gRPC services through the
# in-process bridge (every call the direct path does not serve), beside etcd 3.4, in HTTP/2 spoken
# directly (bridge.py): the requests grpc-go refuses or lets through before a handler runs (no
# gRPC content type, another :method, an unknown or malformed method name, a message four times
# over the receive limit, refused from its first bytes) get the same answers; a
# Snapshot whose reader stops reading holds the member's memory flat (the bridge's pacing: without
# it the whole snapshot was buffered) and then arrives whole; a member that stops ends the
# connection of a client with a watch open (kvd after GOAWAY, as grpc's graceful stop).
set -uo pipefail
. "$(dirname "$0")/lib.sh"
compat_init bridge
PY=/usr/bin/python3
$PY -c 'import h2' 2>/dev/null || die "python3-h2 is not installed (make deps)"

for side in ref tgt; do
    kind=$TARGET; [[ $side == ref ]] && kind=etcd
    server_start "$side" "$kind" plain
    timeout 60 $PY "$COMPAT_DIR/bridge.py" refusals "${SERVER_CPORT[$side]}" >"$COMPAT_TMP/$side.refusals" 2>&1 ||
        die "bridge.py refusals against $kind: $(tail -n 3 "$COMPAT_TMP/$side.refusals")"
    # A database of about 48 MB (48 values of 1 MiB), then a Snapshot that stalls.
    head -c $((1024 * 1024 - 64)) /dev/zero | tr '\0' 'v' >"$COMPAT_TMP/value"
    for i in $(seq 1 48); do ctl "$side" put "big/$i" <"$COMPAT_TMP/value" >/dev/null || die "put big/$i failed on $kind"; done
    timeout 180 $PY "$COMPAT_DIR/bridge.py" slow-snapshot "${SERVER_CPORT[$side]}" "${SERVER_PID[$side]}" \
        >"$COMPAT_TMP/$side.snapshot" 2>&1 || die "bridge.py slow-snapshot against $kind: $(tail -n 3 "$COMPAT_TMP/$side.snapshot")"
    timeout 60 $PY "$COMPAT_DIR/bridge.py" goaway "${SERVER_CPORT[$side]}" >"$COMPAT_TMP/$side.goaway" 2>&1 &
    watcher=$!
    for ((i = 0; i < 100; i++)); do grep -q "^WATCH" "$COMPAT_TMP/$side.goaway" && break; sleep 0.1; done
    server_stop "$side"
    wait "$watcher"
done

expect_same_calls "$COMPAT_TMP/ref.refusals" "$COMPAT_TMP/tgt.refusals"

for side in ref tgt; do
    snapshot=$(grep '^SNAPSHOT received' "$COMPAT_TMP/$side.snapshot")
    bytes=$(awk '{print $3}' <<<"$snapshot")
    expect_eq "$side: the stalled snapshot arrives whole" "yes code=0 message=" \
        "$( ((bytes > 48 * 1024 * 1024)) && echo yes || echo "no ($bytes bytes)") ${snapshot#*bytes, }"
    expect_eq "$side: a watch open while the member stops ends with the connection" "WATCH created|CONNECTION ended" \
        "$(grep -v '^GOAWAY' "$COMPAT_TMP/$side.goaway" | paste -sd'|')"
done
if [[ $TARGET == kvd ]]; then
    # grpc's graceful stop; etcd 3.4 (gRPC behind its HTTP server) closes without one.
    expect_eq "kvd tells the watching client to go away first" "GOAWAY error=NO_ERROR" "$(grep '^GOAWAY' "$COMPAT_TMP/tgt.goaway")"
    growth=$(grep -o 'resident growth [-0-9]*' "$COMPAT_TMP/tgt.snapshot" | awk '{print $3}')
    expect_eq "kvd's memory while a 48 MB snapshot's reader stalls grows by under 16 MiB" "yes" \
        "$( ((${growth:-999999} < 16384)) && echo yes || echo "no (${growth:-?} KiB)")"
fi
summary bridge
