"""The calls kvd's client port answers itself (DirectKVCalls) and the ones it must leave to
grpc-swift, against a member at 127.0.0.1:PORT through Python gRPC (Debian's python3-grpc, the
etcdserverpb classes python3-etcd3 ships).

Prints, per call, one line "CALL name|answer" with what the server answered (code, message and
the response without the header's IDs), for the shell side to compare between etcd and kvd. With
a metrics URL as the second argument (kvd only) it also reads kvd_grpc_direct_calls_total around
each call and prints "PATH name|direct" or "PATH name|not direct"."""
import sys
import urllib.request

import etcd3  # noqa: F401  (puts etcd3.etcdrpc on the import path)
import grpc
from etcd3.etcdrpc import rpc_pb2

port = sys.argv[1]
metrics_url = sys.argv[2] if len(sys.argv) > 2 else None
channel = grpc.insecure_channel("127.0.0.1:" + port, options=[("grpc.max_send_message_length", 8 << 20)])


def method(name, request, response, service="KV"):
    return channel.unary_unary(
        "/etcdserverpb.%s/%s" % (service, name),
        request_serializer=request.SerializeToString,
        response_deserializer=response.FromString)


kv = {
    "Range": method("Range", rpc_pb2.RangeRequest, rpc_pb2.RangeResponse),
    "Put": method("Put", rpc_pb2.PutRequest, rpc_pb2.PutResponse),
    "DeleteRange": method("DeleteRange", rpc_pb2.DeleteRangeRequest, rpc_pb2.DeleteRangeResponse),
    "Txn": method("Txn", rpc_pb2.TxnRequest, rpc_pb2.TxnResponse),
    "Compact": method("Compact", rpc_pb2.CompactionRequest, rpc_pb2.CompactionResponse),
    # Other services, for the calls with a token while authentication is off.
    "LeaseGrant": method("LeaseGrant", rpc_pb2.LeaseGrantRequest, rpc_pb2.LeaseGrantResponse, "Lease"),
    "UserGet": method("UserGet", rpc_pb2.AuthUserGetRequest, rpc_pb2.AuthUserGetResponse, "Auth"),
    "UserList": method("UserList", rpc_pb2.AuthUserListRequest, rpc_pb2.AuthUserListResponse, "Auth"),
    "RoleGet": method("RoleGet", rpc_pb2.AuthRoleGetRequest, rpc_pb2.AuthRoleGetResponse, "Auth"),
    "RoleList": method("RoleList", rpc_pb2.AuthRoleListRequest, rpc_pb2.AuthRoleListResponse, "Auth"),
}


def direct_calls():
    with urllib.request.urlopen(metrics_url, timeout=10) as answer:
        for line in answer.read().decode().splitlines():
            if line.startswith("kvd_grpc_direct_calls_total"):
                return float(line.split()[-1])
    return 0.0


def without_ids(response):
    """The answer as text, without what differs between any two servers (cluster and member IDs,
    the term)."""
    def scrub(message):
        for field, value in message.ListFields():
            if field.name == "header":
                value.cluster_id = value.member_id = value.raft_term = 0
            elif field.message_type is not None:
                for item in (value if field.label == field.LABEL_REPEATED else [value]):
                    scrub(item)
    scrub(response)
    return str(response).replace("\n", " ").strip()


def call(name, rpc, request, metadata=None, compression=None):
    before = direct_calls() if metrics_url else 0
    try:
        answer = "OK " + without_ids(kv[rpc](request, metadata=metadata, compression=compression, timeout=10))
    except grpc.RpcError as error:
        answer = "%s %s" % (error.code().name, error.details())
    print("CALL %s|%s" % (name, answer))
    if metrics_url:
        served = direct_calls() - before
        print("PATH %s|%s" % (name, {1: "direct", 0: "not direct"}.get(served, "served %d times" % served)))


def put(key, value, **fields):
    return rpc_pb2.PutRequest(key=key, value=value, **fields)


def op_put(key, value):
    return rpc_pb2.RequestOp(request_put=put(key, value))


def op_get(key):
    return rpc_pb2.RequestOp(request_range=rpc_pb2.RangeRequest(key=key))


call("put", "Put", put(b"k1", b"v1"))
call("put prev_kv", "Put", put(b"k1", b"v2", prev_kv=True))
call("range linearizable", "Range", rpc_pb2.RangeRequest(key=b"k1"))
call("range serializable", "Range", rpc_pb2.RangeRequest(key=b"k1", serializable=True))
call("range missing key", "Range", rpc_pb2.RangeRequest(key=b"nope"))
call("range of a prefix", "Range", rpc_pb2.RangeRequest(key=b"k", range_end=b"l"))
call("range of a prefix sorted by value", "Range", rpc_pb2.RangeRequest(
    key=b"k", range_end=b"l", sort_order=rpc_pb2.RangeRequest.DESCEND, sort_target=rpc_pb2.RangeRequest.VALUE))
call("range empty key", "Range", rpc_pb2.RangeRequest(key=b""))
call("range future revision", "Range", rpc_pb2.RangeRequest(key=b"k1", revision=1000))
call("put empty key", "Put", put(b"", b"x"))
call("put ignore_value with a value", "Put", put(b"k1", b"x", ignore_value=True))
call("put with an unknown lease", "Put", put(b"k1", b"x", lease=12345))
call("put too large for etcd's proposal limit", "Put", put(b"big", b"x" * (1536 * 1024)))
call("put beyond the gRPC receive limit", "Put", put(b"big", b"x" * (2560 * 1024)))
call("txn that writes", "Txn", rpc_pb2.TxnRequest(
    compare=[rpc_pb2.Compare(key=b"k1", target=rpc_pb2.Compare.VERSION, result=rpc_pb2.Compare.EQUAL, version=2)],
    success=[op_put(b"k3", b"t"), op_get(b"k1")], failure=[op_get(b"k3")]))
call("txn that writes, compare fails", "Txn", rpc_pb2.TxnRequest(
    compare=[rpc_pb2.Compare(key=b"k1", target=rpc_pb2.Compare.VALUE, result=rpc_pb2.Compare.EQUAL, value=b"no")],
    success=[op_put(b"k3", b"u")], failure=[op_put(b"k4", b"f"), op_get(b"k4")]))
call("read-only txn", "Txn", rpc_pb2.TxnRequest(success=[op_get(b"k1"), op_get(b"k3")]))
call("txn with a duplicate key", "Txn", rpc_pb2.TxnRequest(success=[op_put(b"k5", b"a"), op_put(b"k5", b"b")]))
call("txn with too many ops", "Txn", rpc_pb2.TxnRequest(success=[op_put(b"k%d" % i, b"a") for i in range(129)]))
call("delete", "DeleteRange", rpc_pb2.DeleteRangeRequest(key=b"k3", prev_kv=True))
call("delete missing key", "DeleteRange", rpc_pb2.DeleteRangeRequest(key=b"k3"))
call("delete empty key", "DeleteRange", rpc_pb2.DeleteRangeRequest(key=b""))
call("compact", "Compact", rpc_pb2.CompactionRequest(revision=3))
call("range compacted revision", "Range", rpc_pb2.RangeRequest(key=b"k1", revision=2))
call("put after all", "Put", put(b"k1", b"v3"))
call("put compressed", "Put", put(b"k1", b"v4"), compression=grpc.Compression.Gzip)
# etcd refuses a token it does not know even while authentication is off.
call("put with a token while auth is off", "Put", put(b"k2", b"t"), metadata=[("token", "not-a-token")])
call("range with a token while auth is off", "Range", rpc_pb2.RangeRequest(key=b"k1"), metadata=[("token", "x.1")])
call("txn with a token while auth is off", "Txn", rpc_pb2.TxnRequest(success=[op_put(b"k2", b"t")]),
     metadata=[("authorization", "not-a-token")])
call("lease grant with a token while auth is off", "LeaseGrant", rpc_pb2.LeaseGrantRequest(TTL=60, ID=7),
     metadata=[("token", "not-a-token")])
call("user get with a token while auth is off", "UserGet", rpc_pb2.AuthUserGetRequest(name="root"),
     metadata=[("token", "not-a-token")])
call("user list with a token while auth is off", "UserList", rpc_pb2.AuthUserListRequest(), metadata=[("token", "x.1")])
call("role get with a token while auth is off", "RoleGet", rpc_pb2.AuthRoleGetRequest(role="root"),
     metadata=[("token", "not-a-token")])
call("role list with a token while auth is off", "RoleList", rpc_pb2.AuthRoleListRequest(),
     metadata=[("token", "not-a-token")])
call("lease grant without a token", "LeaseGrant", rpc_pb2.LeaseGrantRequest(TTL=60, ID=8))


def watch_create(name, metadata):
    """One watch created on a stream of its own; prints the first answer (etcd cancels a watch
    whose creator it cannot check, with the reason as grpc-go's status text)."""
    watch = channel.stream_stream(
        "/etcdserverpb.Watch/Watch",
        request_serializer=rpc_pb2.WatchRequest.SerializeToString,
        response_deserializer=rpc_pb2.WatchResponse.FromString)
    requests = iter([rpc_pb2.WatchRequest(create_request=rpc_pb2.WatchCreateRequest(key=b"k1"))])
    stream = watch(requests, metadata=metadata, timeout=10)
    try:
        first = next(stream)
        first.header.revision = 0
        answer = "OK " + without_ids(first)
    except grpc.RpcError as error:
        answer = "%s %s" % (error.code().name, error.details())
    finally:
        stream.cancel()
    print("CALL %s|%s" % (name, answer))


watch_create("watch with a token while auth is off", [("token", "not-a-token")])
