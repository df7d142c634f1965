#!/usr/bin/env python3
"""Drives one server with two third-party Python etcd clients, Debian's python3-etcd3gw (the JSON
gateway) and python3-etcd3 (gRPC), and prints what each call returns, one line per step, with
what differs between any two servers (IDs, terms, versions, sizes) left out. python-clients.sh
runs it against etcd 3.4 and kvd and compares the lines."""
import sys
import threading
import time

import etcd3
from etcd3gw.client import Etcd3Client

host, port = sys.argv[1], int(sys.argv[2])


def say(step, *values):
    print(step + ":", *values, flush=True)


def attempt(step, call):
    """A step whose failure is part of the answer (the exception's class and text)."""
    try:
        say(step, call())
    except Exception as error:  # noqa: BLE001 - the error is what is compared
        if hasattr(error, "code") and hasattr(error, "details"):  # a gRPC status
            say(step, "raised", error.code(), error.details())
        else:
            say(step, "raised", type(error).__name__, str(error).splitlines()[0] if str(error) else "")


def kv_meta(meta):
    return {k: meta[k] for k in ("key", "value", "version", "create_revision", "mod_revision") if k in meta}


# --- the JSON gateway (etcd3gw) -----------------------------------------------------------------
# etcd3gw 2.0 defaults to /v3alpha/, which neither etcd 3.4 nor kvd serves; its users set the path.
gw = Etcd3Client(host=host, port=port, api_path="/v3/")
say("gw put", gw.put("gw/a", "1"))
say("gw get", gw.get("gw/a"))
say("gw get missing", gw.get("gw/missing"))
say("gw create existing", gw.create("gw/a", "2"))
say("gw create new", gw.create("gw/b", "2"))
say("gw replace wrong", gw.replace("gw/a", "9", "3"))
say("gw replace right", gw.replace("gw/a", "1", "3"))
say("gw get metadata", [(value, kv_meta(meta)) for value, meta in gw.get("gw/a", metadata=True)])
say("gw prefix", sorted((value, meta["key"]) for value, meta in gw.get_prefix("gw/")))
say("gw all", sorted(meta["key"] for _, meta in gw.get_all()))
lease = gw.lease(ttl=30)
say("gw lease ttl", lease.ttl() in (29, 30))
say("gw put with lease", gw.put("gw/leased", "x", lease=lease))
say("gw lease keys", lease.keys())
say("gw lease refresh", lease.refresh() in (29, 30))
say("gw lease revoke", lease.revoke())
say("gw leased key after revoke", gw.get("gw/leased"))
lock = gw.lock("gw-lock", ttl=30)
say("gw lock acquire", lock.acquire())
say("gw lock held", lock.is_acquired())
say("gw lock release", lock.release())
say("gw lock held after release", lock.is_acquired())

events, cancel = gw.watch("gw/w")
seen = []
reader = threading.Thread(target=lambda: seen.extend([next(events), next(events)]), daemon=True)
reader.start()
time.sleep(0.5)
gw.put("gw/w", "v1")
gw.delete("gw/w")
reader.join(5)
cancel()
say("gw watch", [(e.get("type", "PUT"), e["kv"]["key"], e["kv"].get("value", "")) for e in seen])
prefix_events, cancel_prefix = gw.watch_prefix("gw/p/", start_revision=1)
gw.put("gw/p/1", "a")
say("gw watch prefix", [(e.get("type", "PUT"), e["kv"]["key"]) for e in [next(prefix_events)]])
cancel_prefix()
say("gw delete", gw.delete("gw/a"))
say("gw delete missing", gw.delete("gw/a"))
say("gw delete prefix", gw.delete_prefix("gw/"))
say("gw members", [sorted(m.keys()) for m in gw.members()])
say("gw status fields", sorted(gw.status().keys()))

# --- gRPC (etcd3) ----------------------------------------------------------------------------------
client = etcd3.client(host=host, port=port)
client.put("g/a", "1")
value, meta = client.get("g/a")
say("grpc get", value, meta.key, meta.version, meta.create_revision, meta.mod_revision)
say("grpc put prev", client.put("g/a", "2", prev_kv=True).prev_kv.value)
say("grpc prefix", sorted((v, m.key) for v, m in client.get_prefix("g/")))
ok, responses = client.transaction(
    compare=[client.transactions.value("g/a") == "2"],
    success=[client.transactions.put("g/b", "x"), client.transactions.get("g/a")],
    failure=[client.transactions.delete("g/a")],
)
say("grpc txn", ok, [[(v, m.key) for v, m in r] if isinstance(r, list) else type(r).__name__ for r in responses])
grpc_lease = client.lease(ttl=30)
client.put("g/l", "x", lease=grpc_lease)
say("grpc lease", grpc_lease.remaining_ttl in (29, 30), [k for k in grpc_lease.keys])
grpc_lease.revoke()
say("grpc leased after revoke", client.get("g/l"))
with client.lock("grpc-lock", ttl=30) as held:
    say("grpc lock", held.is_acquired())
watched = []
watch_id = client.add_watch_callback("g/w", lambda response: watched.extend(response.events))
client.put("g/w", "1")
time.sleep(1)
client.cancel_watch(watch_id)
say("grpc watch", [(type(e).__name__, e.key, e.value) for e in watched])
say("grpc delete", client.delete("g/a"), client.delete("g/a"))
say("grpc members", [(m.name != "", len(m.peer_urls)) for m in client.members])
status = client.status()
say("grpc status", status.db_size > 0, status.leader is not None)
attempt("grpc compact", lambda: client.compact(3, physical=True))
attempt("grpc compact again", lambda: client.compact(2))
attempt("grpc revoke unknown lease", lambda: client.revoke_lease(123))
