#!/usr/bin/python3
"""Requests no etcd client library sends, as raw gRPC calls, and the status each one gets.

usage: bad-requests.py HOST PORT [NAME...]

Each request is hand-encoded protobuf (the client libraries would refuse or fix them) sent over
one plaintext HTTP/2 connection with prior knowledge, one call per stream, respecting the server's
flow-control windows. Prints one line per request: "NAME: code=N message=..." from the trailers
(and "succeeded=true|false" for a Txn that answered), "NAME: reset CODE" for a reset stream, or
"NAME: closed" when the connection ends. The last line is the revision a plain range reports, so
a caller can check that refused requests changed nothing. With NAMEs, only those requests are
sent (before the final range).
"""
import socket
import sys
import time
import urllib.parse

import h2.config
import h2.connection
import h2.events
import h2.exceptions


def varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field(number, payload):
    """A length-delimited field (bytes, string or message)."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def int_field(number, value):
    return varint(number << 3) + varint(value & 0xFFFFFFFFFFFFFFFF)


def put(key, value):  # etcdserverpb.PutRequest
    return field(1, key) + field(2, value)


def txn(compares=b"", success=b""):  # etcdserverpb.TxnRequest
    return compares + success


def compare(key, target, result=0, version=None):  # etcdserverpb.Compare, in TxnRequest.compare (1)
    body = int_field(1, result) + int_field(2, target) + field(3, key)
    if version is not None:
        body += int_field(4, version)
    return field(1, body)


def success_put(key, value):  # RequestOp{request_put} in TxnRequest.success (2)
    return field(2, field(2, put(key, value)))


def nested(depth):
    """A txn whose success branch holds a txn, `depth` levels in all, the innermost one a put."""
    body = txn(success=success_put(b"bad/nested", b"x"))
    for _ in range(depth - 1):
        body = txn(success=field(2, field(4, body)))  # RequestOp{request_txn}
    return body


KV = "/etcdserverpb.KV/"
REQUESTS = {
    # Above the gRPC message limit (max-request-bytes + 512 KiB): refused before decoding.
    "put-3MiB": (KV + "Put", put(b"bad/big", b"x" * (3 * 1024 * 1024))),
    # Within the gRPC limit, above max-request-bytes (1.5 MiB).
    "put-2MB": (KV + "Put", put(b"bad/big", b"x" * 2_000_000)),
    "range-sort-target-99": (KV + "Range", field(1, b"bad/") + int_field(5, 1) + int_field(6, 99)),
    "range-sort-order-99": (KV + "Range", field(1, b"bad/") + int_field(5, 99)),
    # Compare.target outside the enum, with EQUAL, on a key that exists (so a version compare
    # would fail): etcd compares it as equal.
    "txn-compare-target-99": (KV + "Txn", txn(compare(b"bad/existing", 99), success_put(b"bad/target", b"x"))),
    "txn-compare-target-99-not-equal": (
        KV + "Txn", txn(compare(b"bad/existing", 99, result=3), success_put(b"bad/target", b"x"))),
    "txn-compare-result-99": (
        KV + "Txn", txn(compare(b"bad/existing", 0, result=99, version=7), success_put(b"bad/result", b"x"))),
    "txn-nested-50": (KV + "Txn", nested(50)),
    # Each level may hold max-txn-ops (128) ops less the ones above it: too deep for the default.
    "txn-nested-130": (KV + "Txn", nested(130)),
    # A key whose length runs past the end of the message.
    "put-truncated": (KV + "Put", b"\x0a\x10bad"),
}


class Connection:
    def __init__(self, host, port):
        self.host, self.port = host, port
        self.sock = socket.create_connection((host, port), timeout=20)
        self.conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True))
        self.conn.initiate_connection()
        self.flush()
        self.closed = False

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def pump(self, stream, state):
        """Reads once and updates `state` for `stream`; returns False when the connection ended."""
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            state["result"] = state.get("result") or "timeout"
            return False
        if not data:
            self.closed = True
            return False
        for event in self.conn.receive_data(data):
            if isinstance(event, h2.events.DataReceived):
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                if event.stream_id == stream:
                    state["data"] = state.get("data", b"") + event.data
            elif isinstance(event, (h2.events.ResponseReceived, h2.events.TrailersReceived)):
                if event.stream_id == stream:
                    headers = {k.decode() if isinstance(k, bytes) else k: v.decode() if isinstance(v, bytes) else v
                               for k, v in event.headers}
                    if "grpc-status" in headers:
                        message = urllib.parse.unquote(headers.get("grpc-message", ""))
                        state["result"] = "code=%s message=%s" % (headers["grpc-status"], message)
            elif isinstance(event, h2.events.StreamReset) and event.stream_id == stream:
                state["result"] = state.get("result") or "reset %s" % getattr(event.error_code, "name", event.error_code)
            elif isinstance(event, h2.events.StreamEnded) and event.stream_id == stream:
                state["ended"] = True
            elif isinstance(event, h2.events.ConnectionTerminated):
                self.closed = True
        self.flush()
        return not self.closed

    def call(self, path, message):
        stream = self.conn.get_next_available_stream_id()
        self.conn.send_headers(stream, [
            (":method", "POST"), (":scheme", "http"), (":path", path),
            (":authority", "%s:%d" % (self.host, self.port)), ("content-type", "application/grpc"), ("te", "trailers"),
        ])
        body = b"\x00" + len(message).to_bytes(4, "big") + message
        state = {}
        deadline = time.monotonic() + 30
        while body and "result" not in state and time.monotonic() < deadline:
            try:
                window = min(self.conn.local_flow_control_window(stream), self.conn.max_outbound_frame_size)
            except h2.exceptions.StreamClosedError:
                break
            if window > 0:
                chunk, body = body[:window], body[window:]
                self.conn.send_data(stream, chunk, end_stream=not body)
                self.flush()
            elif not self.pump(stream, state):
                break
        while "result" not in state and not state.get("ended") and time.monotonic() < deadline:
            if not self.pump(stream, state):
                break
        if "result" in state:
            return state["result"], state.get("data", b"")
        return ("closed" if self.closed else "no status"), b""


def fields(message):
    """The top-level fields of a protobuf message: number -> value (varint) or bytes."""
    out, index = {}, 0
    while index < len(message):
        key, index = read_varint(message, index)
        if key & 7 == 0:
            out[key >> 3], index = read_varint(message, index)
        elif key & 7 == 2:
            length, index = read_varint(message, index)
            out[key >> 3], index = message[index:index + length], index + length
        else:
            raise ValueError("unexpected wire type %d" % (key & 7))
    return out


def revision_of(response):
    """The header revision of a response framed as one gRPC message."""
    return fields(fields(response[5:]).get(1, b"")).get(3, 0)


def read_varint(data, index):
    value = shift = 0
    while True:
        byte = data[index]
        index += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, index


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    names = sys.argv[3:] or list(REQUESTS)
    connection = Connection(host, port)
    for name in names:
        if connection.closed:
            connection = Connection(host, port)
        path, message = REQUESTS[name]
        result, data = connection.call(path, message)
        if path.endswith("/Txn") and data:  # which branch ran
            result += " succeeded=%s" % ("true" if fields(data[5:]).get(2, 0) else "false")
        print("%s: %s" % (name, result))
    if connection.closed:
        connection = Connection(host, port)
    result, data = connection.call(KV + "Range", field(1, b"bad/") + field(2, b"bad0"))
    print("revision: %d (%s)" % (revision_of(data), result))


main()
