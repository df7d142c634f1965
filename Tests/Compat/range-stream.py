"""KV.RangeStream (etcd 3.7) against a member at 127.0.0.1:PORT, through gRPC from Python (Debian's
python3-grpc and the etcdserverpb classes python3-etcd3 ships): for each request, the chunks
merged in order equal what Range answers; chunks start at 10 keys and only the last one carries
header, more and count; what RangeStream refuses, it refuses with etcd's code and message.
Prints one line per check ("ok: ..." or "FAIL: ..."); the exit status is the number of failures."""
import sys

import etcd3  # noqa: F401  (puts etcd3.etcdrpc on the import path)
import grpc
from etcd3.etcdrpc import rpc_pb2

import checks
from checks import check

port = sys.argv[1]
channel = grpc.insecure_channel("127.0.0.1:" + port)
range_call = channel.unary_unary(
    "/etcdserverpb.KV/Range",
    request_serializer=rpc_pb2.RangeRequest.SerializeToString,
    response_deserializer=rpc_pb2.RangeResponse.FromString)
put_call = channel.unary_unary(
    "/etcdserverpb.KV/Put",
    request_serializer=rpc_pb2.PutRequest.SerializeToString,
    response_deserializer=rpc_pb2.PutResponse.FromString)
compact_call = channel.unary_unary(
    "/etcdserverpb.KV/Compact",
    request_serializer=rpc_pb2.CompactionRequest.SerializeToString,
    response_deserializer=rpc_pb2.CompactionResponse.FromString)


def chunk_of(raw):
    """RangeStreamResponse { RangeResponse range_response = 1; }: python3-etcd3 predates it."""
    response = rpc_pb2.RangeResponse()
    if raw:
        assert raw[0] == 0x0A, "field 1, length-delimited"
        length, shift, offset = 0, 0, 1
        while True:
            byte = raw[offset]
            offset += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        response.ParseFromString(raw[offset:offset + length])
    return response


stream_call = channel.unary_stream(
    "/etcdserverpb.KV/RangeStream",
    request_serializer=rpc_pb2.RangeRequest.SerializeToString,
    response_deserializer=chunk_of)



def without_volatile(response):
    copy = rpc_pb2.RangeResponse()
    copy.CopyFrom(response)
    copy.header.raft_term = 0
    return copy


# 3,000 small keys, and 40 of 100 KB in their middle: chunks grow from 10 keys, then halve after
# the one that holds the big values (etcd's adjustChunkLimit).
for i in range(3000):
    put_call(rpc_pb2.PutRequest(key=b"s/%05d" % i, value=b"v%d" % i))
first_revision = range_call(rpc_pb2.RangeRequest(key=b"s/")).header.revision
for i in range(40):
    put_call(rpc_pb2.PutRequest(key=b"s/00700-big-%02d" % i, value=bytes([65 + i % 26]) * 100_000))
put_call(rpc_pb2.PutRequest(key=b"s/00007", value=b"changed"))

cases = {
    "all keys of the prefix": rpc_pb2.RangeRequest(key=b"s/", range_end=b"s0"),
    "every key from a start": rpc_pb2.RangeRequest(key=b"s/01000", range_end=b"\0"),
    "limit below the total": rpc_pb2.RangeRequest(key=b"s/", range_end=b"s0", limit=1234),
    "limit above the total": rpc_pb2.RangeRequest(key=b"s/", range_end=b"s0", limit=100_000),
    "an older revision": rpc_pb2.RangeRequest(key=b"s/", range_end=b"s0", revision=first_revision),
    "keys only, serializable": rpc_pb2.RangeRequest(key=b"s/", range_end=b"s0", keys_only=True, serializable=True),
    "count only": rpc_pb2.RangeRequest(key=b"s/", range_end=b"s0", count_only=True),
    "sorted by key, ascending (the default order)": rpc_pb2.RangeRequest(
        key=b"s/", range_end=b"s0", sort_order=rpc_pb2.RangeRequest.ASCEND, sort_target=rpc_pb2.RangeRequest.KEY),
    "one key": rpc_pb2.RangeRequest(key=b"s/00007"),
    "an empty range": rpc_pb2.RangeRequest(key=b"t/", range_end=b"t0"),
}
for name, request in cases.items():
    chunks = list(stream_call(request))
    merged = rpc_pb2.RangeResponse()
    for chunk in chunks:
        merged.MergeFrom(chunk)
    want = range_call(request)
    check(name + ": merged chunks equal Range", without_volatile(merged) == without_volatile(want),
          "%d chunks, %d vs %d kvs, count %d vs %d, more %s vs %s" % (
              len(chunks), len(merged.kvs), len(want.kvs), merged.count, want.count, merged.more, want.more))
    check(name + ": only the last chunk has header, more and count",
          all(not c.HasField("header") and c.count == 0 and not c.more for c in chunks[:-1])
          and chunks[-1].HasField("header") and chunks[-1].header.member_id != 0)
    if name == "all keys of the prefix":
        sizes = [len(c.kvs) for c in chunks]
        check("chunks start at 10 keys and grow", sizes[:3] == [10, 20, 40], str(sizes[:8]))
        big = next(i for i, c in enumerate(chunks) if any(len(kv.value) == 100_000 for kv in c.kvs))
        check("the chunk after the one with the 100 KB values is half as long",
              big + 2 < len(chunks) and sizes[big + 1] == sizes[big] // 2, str(sizes))

refusals = {
    "a custom sort order": (rpc_pb2.RangeRequest(key=b"s/", range_end=b"s0", sort_order=rpc_pb2.RangeRequest.DESCEND),
                            grpc.StatusCode.UNIMPLEMENTED, "RangeStream does not support custom sort orders"),
    # No order with another target sorts ascending by it (etcd's applier): a custom order too.
    "a sort target without an order": (
        rpc_pb2.RangeRequest(key=b"s/", range_end=b"s0", sort_target=rpc_pb2.RangeRequest.MOD),
        grpc.StatusCode.UNIMPLEMENTED, "RangeStream does not support custom sort orders"),
    "a revision filter": (rpc_pb2.RangeRequest(key=b"s/", range_end=b"s0", min_mod_revision=2),
                          grpc.StatusCode.UNIMPLEMENTED, "RangeStream does not support revision filters"),
    "no key": (rpc_pb2.RangeRequest(), grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: key is not provided"),
    "a future revision": (rpc_pb2.RangeRequest(key=b"s/", revision=10 ** 9), grpc.StatusCode.OUT_OF_RANGE,
                          "etcdserver: mvcc: required revision is a future revision"),
}
compact_call(rpc_pb2.CompactionRequest(revision=first_revision))
refusals["a compacted revision"] = (rpc_pb2.RangeRequest(key=b"s/", revision=first_revision - 1),
                                    grpc.StatusCode.OUT_OF_RANGE,
                                    "etcdserver: mvcc: required revision has been compacted")
for name, (request, code, message) in refusals.items():
    try:
        list(stream_call(request))
        check(name + " is refused", False, "answered")
    except grpc.RpcError as error:
        check(name + " is refused with %s %r" % (code.name, message),
              error.code() == code and error.details() == message, "%s %r" % (error.code().name, error.details()))
sys.exit(checks.failures)
