"""The client port's calls that take the bridge (every call the direct path does not serve),
spoken in HTTP/2 directly (python3-h2), so that flow control and the connection's end are seen
as they happen. Modes (each prints result lines):

  refusals PORT            requests gRPC must refuse before a handler runs
  slow-snapshot PORT PID   a Snapshot whose reader stalls for 3 s with its window full: the
                           member's resident memory while it waits (PID: the member's), then
                           the whole snapshot read
  goaway PORT              a watch open while the member stops: GOAWAY, then the connection's end
"""
import socket
import sys
import time
import urllib.parse

import h2.config
import h2.connection
import h2.events
import h2.exceptions

WATCH = "/etcdserverpb.Watch/Watch"
SNAPSHOT = "/etcdserverpb.Maintenance/Snapshot"


def message(payload):
    return b"\x00" + len(payload).to_bytes(4, "big") + payload


class Connection:
    def __init__(self, port):
        self.port = port
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        config = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        self.conn = h2.connection.H2Connection(config=config)
        self.conn.initiate_connection()
        self.flush()
        self.events = []

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def open(self, path, body, headers=None, end_stream=True):
        stream = self.conn.get_next_available_stream_id()
        self.conn.send_headers(stream, headers or [
            (":method", "POST"), (":scheme", "http"), (":path", path),
            (":authority", "127.0.0.1:%d" % self.port), ("content-type", "application/grpc"), ("te", "trailers"),
        ], end_stream=body is None)
        if body is not None:
            self.conn.send_data(stream, body, end_stream=end_stream)
        self.flush()
        return stream

    def read(self, timeout):
        """Events from one socket read; [] on timeout; None when the connection has ended."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(1 << 16)
        except socket.timeout:
            return []
        except ConnectionResetError:
            return None
        if not data:
            return None
        events = self.conn.receive_data(data)
        self.flush()
        return events


def status_of(headers):
    headers = dict(headers)
    if "grpc-status" in headers:
        return "code=%s message=%s" % (headers["grpc-status"], urllib.parse.unquote(headers.get("grpc-message", "")))
    return "http=%s" % headers.get(":status")


def unary(port, path, body, headers=None, end_stream=True):
    """The status a call ends with (or the HTTP status of a refusal without one)."""
    conn = Connection(port)
    stream = conn.open(path, body, headers, end_stream)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        events = conn.read(1)
        if events is None:
            return "closed"
        for event in events:
            if isinstance(event, h2.events.DataReceived):
                conn.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, (h2.events.ResponseReceived, h2.events.TrailersReceived)) and event.stream_id == stream:
                headers_seen = dict(event.headers)
                if "grpc-status" in headers_seen or event.stream_ended is not None:
                    return status_of(event.headers)
            elif isinstance(event, h2.events.StreamReset) and event.stream_id == stream:
                return "reset %s" % getattr(event.error_code, "name", event.error_code)
        conn.flush()
    return "no answer"


def oversized(port, path, length):
    """The answer to a message that announces `length` bytes, of which only the first frame's worth is sent."""
    return unary(port, path, b"\x00" + length.to_bytes(4, "big") + b"x" * 16000, end_stream=False)


def refusals(port):
    authority = "127.0.0.1:%d" % port
    print("CALL unknown method|" + unary(port, "/etcdserverpb.KV/NoSuchMethod", message(b"")))
    print("CALL unknown service|" + unary(port, "/etcdserverpb.NoSuchService/Range", message(b"")))
    print("CALL malformed method name|" + unary(port, "NoSlash", message(b"")))
    text = [(":method", "POST"), (":scheme", "http"), (":path", "/etcdserverpb.Maintenance/Status"),
            (":authority", authority), ("content-type", "text/plain")]
    print("CALL content-type text/plain|" + unary(port, None, message(b""), text))
    get = [(":method", "GET"), (":scheme", "http"), (":path", "/etcdserverpb.Maintenance/Status"),
           (":authority", authority), ("content-type", "application/grpc")]
    print("CALL method GET|" + unary(port, None, message(b""), get).split(" message=")[0])
    print("CALL path without its leading slash|" + unary(port, "etcdserverpb.KV/Range", message(b"")))
    # Beyond four times etcd's receive limit the bridge refuses a message from its first bytes.
    print("CALL a 9 MiB lease keep-alive|" + oversized(port, "/etcdserverpb.Lease/LeaseKeepAlive", 9 << 20))
    # A bridged call that works: Maintenance.Status answers code 0.
    print("CALL status|" + unary(port, "/etcdserverpb.Maintenance/Status", message(b"")).split(" message=")[0])


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def slow_snapshot(port, pid):
    conn = Connection(port)
    before = rss_kib(pid)
    stream = conn.open(SNAPSHOT, message(b""))
    received, unacknowledged, status = 0, 0, None
    # Read until the window is full (nothing acknowledged): the member can send no more.
    started = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        events = conn.read(0.5)
        if events is None:
            print("SNAPSHOT closed early")
            return
        for event in events:
            if isinstance(event, h2.events.DataReceived):
                received += len(event.data)
                unacknowledged += event.flow_controlled_length
        if received and started is None:
            started = time.monotonic()
        if started is not None and not events and time.monotonic() - started > 0.5:
            break
    time.sleep(3)
    after = rss_kib(pid)
    print("SNAPSHOT stalled with %d bytes received, resident growth %d KiB" % (received, after - before))
    conn.conn.acknowledge_received_data(unacknowledged, stream)
    conn.flush()
    deadline = time.monotonic() + 120
    while status is None and time.monotonic() < deadline:
        events = conn.read(5)
        if events is None:
            break
        for event in events:
            if isinstance(event, h2.events.DataReceived):
                received += len(event.data)
                conn.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.TrailersReceived) and event.stream_id == stream:
                status = status_of(event.headers)
        conn.flush()
    print("SNAPSHOT received %d bytes, %s" % (received, status))


def goaway(port):
    conn = Connection(port)
    # WatchCreateRequest{key: "a"} inside WatchRequest.create_request (1).
    create = b"\x0a\x03\x0a\x01a"
    stream = conn.open(WATCH, message(create), end_stream=False)
    created = False
    deadline = time.monotonic() + 10
    while not created and time.monotonic() < deadline:
        events = conn.read(1) or []
        for event in events:
            if isinstance(event, h2.events.DataReceived) and event.stream_id == stream:
                conn.conn.acknowledge_received_data(event.flow_controlled_length, stream)
                created = True
        conn.flush()
    print("WATCH created" if created else "WATCH not created")
    sys.stdout.flush()
    goaway_seen, ended = None, None
    deadline = time.monotonic() + 30
    while ended is None and time.monotonic() < deadline:
        try:
            events = conn.read(1)
        except h2.exceptions.ProtocolError:
            events = []  # frames after GOAWAY, which python3-h2 refuses to take
        if events is None:
            ended = time.monotonic()
            break
        for event in events:
            if isinstance(event, h2.events.ConnectionTerminated) and goaway_seen is None:
                goaway_seen = time.monotonic()
                print("GOAWAY error=%s" % getattr(event.error_code, "name", event.error_code))
    if goaway_seen is None:
        print("GOAWAY none")
    print("CONNECTION %s" % ("ended" if ended is not None else "still open"))


def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode == "refusals":
        refusals(port)
    elif mode == "slow-snapshot":
        slow_snapshot(port, int(sys.argv[3]))
    elif mode == "goaway":
        goaway(port)


if __name__ == "__main__":
    main()
