#!/usr/bin/python3
"""HTTP/2 keepalive pings on a connection with no RPC open, as gRPC clients with
PermitWithoutStream send them (clientv3 does; kube-apiserver pings every 30 s).

usage: pings.py HOST PORT CA CERT KEY INTERVAL COUNT
Sends COUNT pings INTERVAL seconds apart over one mTLS HTTP/2 connection and prints one line:
"acked N of COUNT" or "goaway <error code> <debug data> after N pings".
"""
import socket
import ssl
import sys
import time

import h2.config
import h2.connection
import h2.events


def main():
    host, port, ca, cert, key = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
    interval, count = float(sys.argv[6]), int(sys.argv[7])
    context = ssl.create_default_context(cafile=ca)
    context.load_cert_chain(cert, key)
    context.set_alpn_protocols(["h2"])
    sock = context.wrap_socket(socket.create_connection((host, port), timeout=10), server_hostname=host)
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
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
                    code = getattr(event.error_code, "name", event.error_code)
                    print("goaway %s %s after %d pings" % (code, (event.additional_data or b"").decode(errors="replace"), acked))
                    return
            sock.sendall(conn.data_to_send())
        if got_ack:
            acked += 1
    print("acked %d of %d" % (acked, count))


main()
