#!/usr/bin/python3
"""HTTP/2 pings as gRPC clients send them, over one mTLS HTTP/2 connection.

usage: pings.py HOST PORT CA CERT KEY INTERVAL COUNT
       pings.py HOST PORT CA CERT KEY rpc COUNT
       pings.py HOST PORT CA CERT KEY idle-silent|idle-answering SECONDS
The first form sends COUNT keepalive pings INTERVAL seconds apart with no RPC open, as clients
with PermitWithoutStream do (clientv3; kube-apiserver every 30 s), and prints "acked N of COUNT"
or "goaway <error code> <debug data> after N pings". The second sends COUNT unary KV.Range calls
one after another, each answered by a ping once its response arrives, as grpc-go's bandwidth
estimator does on every connection, and prints "answered N of COUNT, acked M" or the goaway.
The idle forms open no RPC and send nothing for SECONDS, answering the server's pings or not,
and print whether the server pinged and whether it closed the connection (its keepalive:
--grpc-keepalive-interval and --grpc-keepalive-timeout).
"""
import socket
import ssl
import sys
import time

import h2.config
import h2.connection
import h2.events


def connect(host, port, ca, cert, key):
    context = ssl.create_default_context(cafile=ca)
    context.load_cert_chain(cert, key)
    context.set_alpn_protocols(["h2"])
    sock = context.wrap_socket(socket.create_connection((host, port), timeout=10), server_hostname=host)
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    return sock, conn


def goaway(event, after):
    code = getattr(event.error_code, "name", event.error_code)
    return "goaway %s %s after %s" % (code, (event.additional_data or b"").decode(errors="replace"), after)


def rpcs(sock, conn, host, port, count):
    # RangeRequest{key: "a"} in a gRPC length-prefixed message.
    message = b"\x0a\x01a"
    body = b"\x00" + len(message).to_bytes(4, "big") + message
    answered = acked = 0
    for i in range(count):
        stream = conn.get_next_available_stream_id()
        conn.send_headers(stream, [
            (":method", "POST"), (":scheme", "https"), (":path", "/etcdserverpb.KV/Range"),
            (":authority", "%s:%d" % (host, port)), ("content-type", "application/grpc"), ("te", "trailers"),
        ])
        conn.send_data(stream, body, end_stream=True)
        sock.sendall(conn.data_to_send())
        ended = pinged = False
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not (ended and acked > i):
            data = sock.recv(65536)
            if not data:
                return "closed after %d calls" % answered
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.DataReceived):
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                    if not pinged:
                        conn.ping(b"bdp-ping")
                        pinged = True
                elif isinstance(event, h2.events.StreamEnded):
                    ended = True
                    answered += 1
                elif isinstance(event, h2.events.PingAckReceived):
                    acked += 1
                elif isinstance(event, h2.events.ConnectionTerminated):
                    return goaway(event, "%d calls" % answered)
            sock.sendall(conn.data_to_send())
    return "answered %d of %d, acked %d" % (answered, count, acked)


def idle(sock, conn, seconds, answering):
    pinged = closed = False
    deadline = time.monotonic() + seconds
    sock.settimeout(0.2)
    while time.monotonic() < deadline and not closed:
        try:
            data = sock.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            closed = True
            break
        if not data:
            closed = True
            break
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.PingReceived):
                pinged = True
            elif isinstance(event, h2.events.ConnectionTerminated):
                closed = True
        outgoing = conn.data_to_send()  # h2 queues the PING ACK itself; sent only when answering
        if answering and outgoing:
            sock.sendall(outgoing)
    return "%s, %s" % ("pinged" if pinged else "not pinged", "closed" if closed else "open")


def main():
    host, port, ca, cert, key = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
    sock, conn = connect(host, port, ca, cert, key)
    if sys.argv[6].startswith("idle-"):
        print(idle(sock, conn, float(sys.argv[7]), sys.argv[6] == "idle-answering"))
        return
    if sys.argv[6] == "rpc":
        print(rpcs(sock, conn, host, port, int(sys.argv[7])))
        return
    interval, count = float(sys.argv[6]), int(sys.argv[7])
    acked = 0
    for i in range(count):
        if i:
            time.sleep(interval)
        conn.ping(b"kvdping%d" % (i % 10))
        sock.sendall(conn.data_to_send())
        deadline = time.monotonic() + 5
        got_ack = False
        while not got_ack and time.monotonic() < deadline:
            try:
                data = sock.recv(65536)
            except socket.timeout:
                break
            if not data:
                print("closed after %d pings" % acked)
                return
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.PingAckReceived):
                    got_ack = True
                elif isinstance(event, h2.events.ConnectionTerminated):
                    print(goaway(event, "%d pings" % acked))
                    return
            sock.sendall(conn.data_to_send())
        if got_ack:
            acked += 1
    print("acked %d of %d" % (acked, count))


main()
