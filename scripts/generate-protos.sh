#!/usr/bin/env bash
# Regenerates Sources/EtcdAPI from Protos/ with protoc and the swift-protobuf and grpc-swift-2
# plugins. The output is committed; CI never runs this (building the plugins takes minutes).
#
# Plugins: taken from $PROTOC_GEN_SWIFT / $PROTOC_GEN_GRPC_SWIFT when set, otherwise built once
# from grpc-swift-protobuf 2.4.1 (the version Package.swift pins) into $PLUGIN_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."

PLUGIN_DIR=${PLUGIN_DIR:-/tmp/kvd-protoc-plugins}
if [[ -z "${PROTOC_GEN_SWIFT:-}" || -z "${PROTOC_GEN_GRPC_SWIFT:-}" ]]; then
    if [[ ! -d "$PLUGIN_DIR" ]]; then
        git clone -q --branch 2.4.1 https://github.com/grpc/grpc-swift-protobuf "$PLUGIN_DIR"
    fi
    (cd "$PLUGIN_DIR" && swift build -c release --product protoc-gen-grpc-swift-2 \
        && swift build -c release --product protoc-gen-swift)
    bin=$(cd "$PLUGIN_DIR" && swift build -c release --show-bin-path)
    PROTOC_GEN_SWIFT=$bin/protoc-gen-swift
    PROTOC_GEN_GRPC_SWIFT=$bin/protoc-gen-grpc-swift-2
fi

out=Sources/EtcdAPI
rm -f "$out"/*.pb.swift "$out"/*.grpc.swift
protos=(
    etcd/mvcc/mvccpb/kv.proto
    etcd/auth/authpb/auth.proto
    etcd/etcdserver/etcdserverpb/rpc.proto
    etcd/etcdserver/api/v3lock/v3lockpb/v3lock.proto
    etcd/etcdserver/api/v3election/v3electionpb/v3election.proto
)
peer_protos=()
for p in Protos/kvd/*.proto; do [[ -e "$p" ]] && peer_protos+=("${p#Protos/}"); done

protoc -I Protos \
    --plugin=protoc-gen-swift="$PROTOC_GEN_SWIFT" \
    --plugin=protoc-gen-grpc-swift-2="$PROTOC_GEN_GRPC_SWIFT" \
    --swift_out="$out" --swift_opt=Visibility=Public,FileNaming=DropPath \
    --grpc-swift-2_out="$out" --grpc-swift-2_opt=Visibility=Public,FileNaming=DropPath \
    "${protos[@]}" "${peer_protos[@]}"
# Client requests are decoded as etcd's grpc-go decodes them: its size limit and status, and no
# protobuf depth limit short of a deeply nested Txn (Sources/EtcdAPI/RequestDecoding.swift).
sed -i -E 's/GRPCProtobuf\.ProtobufDeserializer<((Etcdserverpb|V3lockpb|V3electionpb)_[A-Za-z]+Request)>\(\)/EtcdRequestDeserializer<\1>()/' \
    "$out/rpc.grpc.swift" "$out/v3lock.grpc.swift" "$out/v3election.grpc.swift"
ls -l "$out"
