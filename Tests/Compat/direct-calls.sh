#!/usr/bin/env bash
# Tests/Compat/direct-calls.sh: the KV calls kvd's client port answers on its event loop
# (DirectKVCalls) against etcd 3.4, call by call, through Python gRPC (direct-calls.py): every
# answer (code, message, response without IDs) equals etcd's, and each call took the path it
# must: Put, DeleteRange, a Txn that writes and a single key's Range served directly, errors
# included; a prefix Range, a read-only Txn, a call with credentials, a message over the gRPC
# receive limit and other methods left to grpc-swift (which, as etcd, refuses a token it does not
# know even while authentication is off, in every service); a compressed request refused with grpc-go's status (kvd_grpc_direct_calls_total tells which calls were served directly).
set -uo pipefail
. "$(dirname "$0")/lib.sh"
compat_init direct-calls
/usr/bin/python3 -c "import etcd3, grpc" 2>/dev/null || die "python3-etcd3 is not installed (make deps)"

server_start ref etcd plain
server_start tgt "$TARGET" plain
timeout 120 /usr/bin/python3 "$COMPAT_DIR/direct-calls.py" "${SERVER_CPORT[ref]}" >"$COMPAT_TMP/ref.out" 2>&1 ||
    die "direct-calls.py against etcd: $(tail -n 5 "$COMPAT_TMP/ref.out")"
metrics=""
[[ $TARGET == kvd ]] && metrics="http://127.0.0.1:${SERVER_CPORT[tgt]}/metrics"
timeout 120 /usr/bin/python3 "$COMPAT_DIR/direct-calls.py" "${SERVER_CPORT[tgt]}" $metrics >"$COMPAT_TMP/tgt.out" 2>&1 ||
    die "direct-calls.py against $TARGET: $(tail -n 5 "$COMPAT_TMP/tgt.out")"
server_stop tgt
server_stop ref

# Same calls, same answers.
expect_same_calls "$COMPAT_TMP/ref.out" "$COMPAT_TMP/tgt.out"

# Which path served each call (kvd only).
if [[ $TARGET == kvd ]]; then
    declare -A expected=(
        ["range of a prefix sorted by value"]="not direct" ["put beyond the gRPC receive limit"]="not direct"
        ["read-only txn"]="not direct" ["compact"]="not direct" ["put compressed"]="not direct"
        ["put with a token while auth is off"]="not direct" ["range with a token while auth is off"]="not direct"
        ["txn with a token while auth is off"]="not direct"
        ["lease grant with a token while auth is off"]="not direct" ["lease grant without a token"]="not direct"
        ["user get with a token while auth is off"]="not direct" ["user list with a token while auth is off"]="not direct"
        ["role get with a token while auth is off"]="not direct" ["role list with a token while auth is off"]="not direct"
    )
    while IFS= read -r line; do
        name=${line#PATH }
        path=${name#*|}
        name=${name%%|*}
        expect_eq "'$name' served by" "${expected[$name]:-direct}" "$path"
    done < <(grep '^PATH ' "$COMPAT_TMP/tgt.out")
fi
summary direct-calls
