"""Ranges whose answers are larger than kvd builds whole (LargeRange: more than 4 MiB), against etcd
3.4 and kvd at 127.0.0.1:ETCD_PORT and 127.0.0.1:KVD_PORT, through gRPC from Python (python3-grpc
and python3-etcd3's etcdserverpb classes): the same writes to both, then each Range's key-values,
count and more must be equal (the headers' member and cluster IDs differ), in both response
encodings' bytes apart from the header; a call cancelled by its deadline mid-answer leaves the
member serving, and so do four readers that stop reading mid-answer. With KVD_PID, the member's peak resident memory during a get of every key
(~9.5 MB of answer) must grow by less than half the answer: a built answer grows it by several
times the answer. Prints "ok: ..." or "FAIL: ..." per check; exits with the number of failures."""
import os
import sys
import time

import etcd3  # noqa: F401  (puts etcd3.etcdrpc on the import path)
import grpc
from etcd3.etcdrpc import rpc_pb2

import checks
from checks import check

etcd_port, kvd_port = sys.argv[1], sys.argv[2]
kvd_pid = os.environ.get("KVD_PID")


def calls(port):
    channel = grpc.insecure_channel("127.0.0.1:" + port, options=[("grpc.max_receive_message_length", 1 << 30)])
    return (
        channel.unary_unary("/etcdserverpb.KV/Range", request_serializer=rpc_pb2.RangeRequest.SerializeToString,
                            response_deserializer=lambda raw: raw),
        channel.unary_unary("/etcdserverpb.KV/Put", request_serializer=rpc_pb2.PutRequest.SerializeToString,
                            response_deserializer=rpc_pb2.PutResponse.FromString),
        channel.unary_unary("/etcdserverpb.KV/DeleteRange",
                            request_serializer=rpc_pb2.DeleteRangeRequest.SerializeToString,
                            response_deserializer=rpc_pb2.DeleteRangeResponse.FromString),
    )


servers = {"etcd": calls(etcd_port), "kvd": calls(kvd_port)}

# 30,000 keys of 300-byte values (two puts of every tenth, a delete of every 97th): ~9.5 MB.
keys = [b"big/%06d" % n for n in range(30000)]
for name, (_, put, delete) in servers.items():
    for n, key in enumerate(keys):
        put(rpc_pb2.PutRequest(key=key, value=bytes([65 + n % 26]) * 300))
    middle = put(rpc_pb2.PutRequest(key=b"big/marker", value=b"m")).header.revision
    for n in range(0, 30000, 10):
        put(rpc_pb2.PutRequest(key=keys[n], value=b"second" * 50))
    for n in range(0, 30000, 97):
        delete(rpc_pb2.DeleteRangeRequest(key=keys[n]))
    put(rpc_pb2.PutRequest(key=b"small", value=b"s"))

cases = {
    "every key": rpc_pb2.RangeRequest(key=b"\0", range_end=b"\0"),
    "a prefix": rpc_pb2.RangeRequest(key=b"big/", range_end=b"big0"),
    "a prefix at an older revision": rpc_pb2.RangeRequest(key=b"big/", range_end=b"big0", revision=middle),
    "a limit of 20,000 (more, count of all)": rpc_pb2.RangeRequest(key=b"big/", range_end=b"big0", limit=20000),
    "a limit past the end": rpc_pb2.RangeRequest(key=b"big/", range_end=b"big0", limit=40000),
    "ascending by key, serializable": rpc_pb2.RangeRequest(
        key=b"big/", range_end=b"big0", sort_order=rpc_pb2.RangeRequest.ASCEND, serializable=True),
    "keys only": rpc_pb2.RangeRequest(key=b"big/", range_end=b"big0", keys_only=True),
    "a small range": rpc_pb2.RangeRequest(key=b"big/000100", range_end=b"big/000120"),
    "descending (left to the services)": rpc_pb2.RangeRequest(
        key=b"big/", range_end=b"big0", sort_order=rpc_pb2.RangeRequest.DESCEND),
}
for name, request in cases.items():
    answers = {}
    for server, (range_call, _, _) in servers.items():
        raw = range_call(request, timeout=60)
        response = rpc_pb2.RangeResponse.FromString(raw)
        header = rpc_pb2.RangeResponse(header=response.header).SerializeToString()
        # The encoding after the header: fields in etcd's order, byte for byte.
        answers[server] = (response.kvs, response.count, response.more, raw[len(header):], len(raw))
    etcd, kvd = answers["etcd"], answers["kvd"]
    check(name + ": key-values, count and more as etcd's (%d keys, %d bytes)" % (len(etcd[0]), etcd[4]),
          etcd[:3] == kvd[:3], "etcd %d keys count %d more %s, kvd %d keys count %d more %s"
          % (len(etcd[0]), etcd[1], etcd[2], len(kvd[0]), kvd[1], kvd[2]))
    check(name + ": encoded as etcd encodes it", etcd[3] == kvd[3])

range_call = servers["kvd"][0]
try:
    range_call(rpc_pb2.RangeRequest(key=b"\0", range_end=b"\0"), timeout=0.002)
    check("a get cut short by its deadline", False, "answered within 2 ms")
except grpc.RpcError as error:
    check("a get cut short by its deadline ends in DEADLINE_EXCEEDED", error.code() == grpc.StatusCode.DEADLINE_EXCEEDED,
          str(error.code()))
after = rpc_pb2.RangeResponse.FromString(range_call(rpc_pb2.RangeRequest(key=b"\0", range_end=b"\0"), timeout=60))
check("the member answers the next get of every key in full", after.count == len(after.kvs) > 29000, str(after.count))

# Readers that stop reading (their HTTP/2 windows full) must not hold the threads other reads
# need: with four of them stalled mid-answer, a prefix Range still answers at once.
from bridge import Connection, message  # noqa: E402  (python3-h2, beside this file)

stalled = []
for _ in range(4):
    connection = Connection(int(kvd_port))
    connection.open("/etcdserverpb.KV/Range", message(rpc_pb2.RangeRequest(key=b"\0", range_end=b"\0").SerializeToString()))
    stalled.append(connection)
for connection in stalled:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and connection.read(0.5):
        pass  # until nothing more arrives: the window is full
started = time.monotonic()
try:
    small = rpc_pb2.RangeResponse.FromString(range_call(rpc_pb2.RangeRequest(key=b"big/000100", range_end=b"big/000120"), timeout=10))
    check("with four readers stalled mid-answer, a prefix Range answers (%.2f s)" % (time.monotonic() - started), len(small.kvs) == 20)
except grpc.RpcError as error:
    check("with four readers stalled mid-answer, a prefix Range answers", False, str(error.code()))
for connection in stalled:
    connection.sock.close()

if kvd_pid:
    def peak_kib():
        with open("/proc/%s/status" % kvd_pid) as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))

    def resident_kib():
        with open("/proc/%s/status" % kvd_pid) as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))

    range_call(rpc_pb2.RangeRequest(key=b"\0", range_end=b"\0"), timeout=60)  # warm
    growths = []
    for _ in range(3):
        with open("/proc/%s/clear_refs" % kvd_pid, "w") as clear:
            clear.write("5")  # resets the peak to the current resident size
        before = resident_kib()
        size = len(range_call(rpc_pb2.RangeRequest(key=b"\0", range_end=b"\0"), timeout=60))
        growths.append(peak_kib() - before)
    growth = min(growths)
    check("a get of every key (%d KiB) grows the member's peak by less than half of it (%s KiB)"
          % (size // 1024, ", ".join(map(str, growths))), growth < size // 2048, "%d KiB" % growth)
sys.exit(checks.failures)
