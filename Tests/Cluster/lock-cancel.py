"""A Lock and a Campaign whose caller gives up while waiting, against one member (etcd's v3lock and
v3election over gRPC with mutual TLS, messages encoded by hand: python3-etcd3 ships no v3lock
classes). A first caller holds the lock (leads the election); a second waits with a 1.5 s deadline
and gets DEADLINE_EXCEEDED; a second later, the keys left under the name are counted: etcd's lock and
election servers remove the waiter's key when its caller goes away.
Usage: lock-cancel.py HOST PORT CA CERT KEY; prints one line per step."""
import sys
import time

import etcd3  # noqa: F401  (puts etcd3.etcdrpc on the import path)
import grpc
from etcd3.etcdrpc import rpc_pb2

host, port, ca, cert, key = sys.argv[1:6]
credentials = grpc.ssl_channel_credentials(open(ca, "rb").read(), open(key, "rb").read(), open(cert, "rb").read())
channel = grpc.secure_channel(host + ":" + port, credentials)
raw = lambda data: data  # noqa: E731


def field_bytes(number, data):
    length, out = len(data), bytes([number << 3 | 2])
    while length >= 0x80:
        out += bytes([length & 0x7F | 0x80])
        length >>= 7
    return out + bytes([length]) + data


def call(path):
    return channel.unary_unary(path, request_serializer=raw, response_deserializer=raw)


count = channel.unary_unary("/etcdserverpb.KV/Range", request_serializer=rpc_pb2.RangeRequest.SerializeToString,
                            response_deserializer=rpc_pb2.RangeResponse.FromString)


def keys_under(name):
    return count(rpc_pb2.RangeRequest(key=name + b"/", range_end=name + b"0", count_only=True)).count


for label, path, request in [
    ("lock", "/v3lockpb.Lock/Lock", field_bytes(1, b"cancel-lock")),
    ("campaign", "/v3electionpb.Election/Campaign", field_bytes(1, b"cancel-elect") + field_bytes(3, b"v")),
]:
    call(path)(request, timeout=10)
    print("%s: first caller holds it" % label)
    try:
        call(path)(request, timeout=1.5)
        print("%s: second caller did not wait" % label)
    except grpc.RpcError as error:
        print("%s: second caller gave up with %s" % (label, error.code().name))
    time.sleep(1)
    name = b"cancel-lock" if label == "lock" else b"cancel-elect"
    print("%s: keys under the name afterwards: %d" % (label, keys_under(name)))
