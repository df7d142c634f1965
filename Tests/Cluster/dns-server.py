#!/usr/bin/env python3
"""A tiny authoritative DNS server over UDP for the DNS discovery test.

    dns-server.py ADDRESS ZONE_FILE

Each line of ZONE_FILE is one record: `NAME A IPV4` or `NAME SRV PRIORITY WEIGHT PORT TARGET`.
A known name answers its records of the asked type (none: NOERROR, no answer); an unknown name
answers NXDOMAIN. Every query is logged to stdout, so a test can see what was asked.
"""
import socket
import struct
import sys


def encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def load(path):
    records = {}
    with open(path) as zone:
        for line in zone:
            fields = line.split()
            if not fields:
                continue
            name, kind = fields[0].rstrip(".").lower(), fields[1]
            if kind == "A":
                data = socket.inet_aton(fields[2])
                code = 1
            elif kind == "SRV":
                priority, weight, port = (int(f) for f in fields[2:5])
                data = struct.pack("!HHH", priority, weight, port) + encode_name(fields[5])
                code = 33
            else:
                raise SystemExit("unknown record type " + kind)
            records.setdefault(name, []).append((code, data))
    return records


def answer(query, records):
    ident, _flags, questions = struct.unpack("!HHH", query[:6])
    position, labels = 12, []
    while query[position]:
        length = query[position]
        labels.append(query[position + 1 : position + 1 + length].decode())
        position += 1 + length
    qtype, _qclass = struct.unpack("!HH", query[position + 1 : position + 5])
    question = query[12 : position + 5]
    name = ".".join(labels).lower()
    print("query", name, qtype, flush=True)
    if name not in records:
        return struct.pack("!HHHHHH", ident, 0x8183, 1, 0, 0, 0) + question
    found = [data for code, data in records[name] if code == qtype]
    body = b"".join(
        struct.pack("!HHHIH", 0xC00C, qtype, 1, 5, len(data)) + data for data in found
    )
    return struct.pack("!HHHHHH", ident, 0x8580, 1, len(found), 0, 0) + question + body


def main():
    address, zone = sys.argv[1], sys.argv[2]
    records = load(zone)
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind((address, 53))
    print("serving", address, flush=True)
    while True:
        query, client = server.recvfrom(512)
        try:
            server.sendto(answer(query, records), client)
        except (IndexError, struct.error, UnicodeDecodeError):
            continue


if __name__ == "__main__":
    main()
