"""Writes in the name of a client certificate's CN while users come and go, against one member
with authentication on: every change to the users moves the auth store's revision, and a write
named before the change reaches its apply after it. kvd proposes such a write again in the
caller's name (as etcd 3.3 did; etcd 3.4 and 3.5 answer "revision of auth store is old", which
clientv3 retries only for callers with a password), so its client does not see that refusal.
Usage: auth-churn.py HOST PORT CA CERT KEY ROOT_PASSWORD. Eight threads put 60 keys each (mutual
TLS, no credentials: the certificate's CN is the user) while one adds and deletes users as root;
prints one line per outcome kind with its count, then "churn: N user changes"."""
import collections
import sys
import threading

import etcd3  # noqa: F401  (puts etcd3.etcdrpc on the import path)
import grpc
from etcd3.etcdrpc import rpc_pb2

host, port, ca, cert, key, root_password = sys.argv[1:7]
credentials = grpc.ssl_channel_credentials(open(ca, "rb").read(), open(key, "rb").read(), open(cert, "rb").read())
channel = grpc.secure_channel(host + ":" + port, credentials)


def unary(path, request_type, response_type):
    return channel.unary_unary(path, request_serializer=request_type.SerializeToString,
                               response_deserializer=response_type.FromString)


put = unary("/etcdserverpb.KV/Put", rpc_pb2.PutRequest, rpc_pb2.PutResponse)
authenticate = unary("/etcdserverpb.Auth/Authenticate", rpc_pb2.AuthenticateRequest, rpc_pb2.AuthenticateResponse)
user_add = unary("/etcdserverpb.Auth/UserAdd", rpc_pb2.AuthUserAddRequest, rpc_pb2.AuthUserAddResponse)
user_delete = unary("/etcdserverpb.Auth/UserDelete", rpc_pb2.AuthUserDeleteRequest, rpc_pb2.AuthUserDeleteResponse)

outcomes = collections.Counter()
lock = threading.Lock()
done = threading.Event()


def writer(number):
    for i in range(60):
        try:
            put(rpc_pb2.PutRequest(key=b"/churn/%d/%d" % (number, i), value=b"v"), timeout=10)
            outcome = "ok"
        except grpc.RpcError as error:
            outcome = "%s: %s" % (error.code().name, error.details())
        with lock:
            outcomes[outcome] += 1


token = authenticate(rpc_pb2.AuthenticateRequest(name="root", password=root_password), timeout=10).token
as_root = [("token", token)]
changes = 0


def churn():
    global changes
    while not done.is_set():
        name = "churn-%d" % changes
        user_add(rpc_pb2.AuthUserAddRequest(name=name, password="x"), metadata=as_root, timeout=10)
        user_delete(rpc_pb2.AuthUserDeleteRequest(name=name), metadata=as_root, timeout=10)
        changes += 2


writers = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
churner = threading.Thread(target=churn)
churner.start()
for thread in writers:
    thread.start()
for thread in writers:
    thread.join()
done.set()
churner.join()
for outcome, count in sorted(outcomes.items()):
    print("%s: %d" % (outcome, count))
print("churn: %d user changes" % changes)
