#!/usr/bin/env python3
"""Workload client for the Jepsen-style tests: runs etcdctl (one process per operation,
one endpoint per operation) from concurrent workers and records a history as JSON lines
(an "invoke" event before each operation, an "ok"/"fail"/"info" event after it, times from
this process's monotonic clock in ns), the format linearizability.py reads.

Modes:
  load      unique puts (key PREFIX/<worker>/<n>) round-robin over the endpoints
  register  reads / writes / cas over a few register keys, plus unique puts under ack/
  final     one linearizable read of every register key through every endpoint
  revisions check that revisions never go back in real time across the history
  watch     one live watcher per endpoint on the register keys, for the duration
  watchcheck  the live watchers saw ordered events, no duplicates, no gaps
  acks      check every acknowledged unique put of a history is present, with its value,
            on every endpoint (serializable reads of each member's own copy)
  leases    leases kept alive through the faults never expire early (own check, no history)

Outcomes: a put/cas that etcdctl reports as done is "ok"; a cas whose compare did not hold
is "ok" with "succeeded": false; any error or timeout of a put/cas is "info" (indeterminate:
an etcd error such as "etcdserver: request timed out" does not mean the write will not be
applied), with the error text and "outcome": "timeout" or "failed"; a read that errors is "fail" (reads have no effect).
Every operation is bounded: etcdctl's --command-timeout, and a hard kill after OP_TIMEOUT.
"""

import argparse
import base64
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

ETCDCTL = os.environ.get("ETCDCTL_BIN", "/usr/bin/etcdctl")


class Ctl:
    def __init__(self, args):
        self.base = [ETCDCTL, "--cacert=" + args.cacert, "--cert=" + args.cert, "--key=" + args.key,
                     "--dial-timeout=1s", "--command-timeout=%ss" % args.command_timeout]
        self.op_timeout = args.command_timeout + 2.5
        self.env = dict(os.environ, ETCDCTL_API="3")

    def run(self, endpoint, argv, stdin=None):
        """Returns (rc, stdout, error text). rc None: killed after op_timeout."""
        # timeout(1) too: if this process is killed, an orphaned etcdctl still ends soon.
        cmd = ["timeout", "-k", "1", "%.1f" % self.op_timeout] + self.base + ["--endpoints=" + endpoint] + argv
        try:
            p = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=self.op_timeout + 2,
                               env=self.env)
        except subprocess.TimeoutExpired:
            return None, "", "timed out after %.1fs (killed)" % self.op_timeout
        if p.returncode in (124, 137):
            return None, "", "timed out after %.1fs (killed)" % self.op_timeout
        return p.returncode, p.stdout, error_text(p.stderr)


def error_text(stderr):
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if ln.startswith("Error:"):
            return ln[len("Error:"):].strip()
    return lines[-1][:300] if lines else ""


def failure(err):
    """The extra fields of a put/cas that did not succeed: its error text, and whether it timed
    out ("timeout") or failed with an error ("failed"). Both are recorded as indeterminate
    ("info"): an etcd error such as "etcdserver: request timed out" or "leader changed" does not
    mean the proposal will not be applied."""
    low = err.lower()
    timed_out = "deadline exceeded" in low or "timed out" in low
    return {"error": err, "outcome": "timeout" if timed_out else "failed"}


def b64(s):
    return base64.b64decode(s).decode() if s is not None else None


class History:
    def __init__(self, path):
        self.fh = open(path, "a", buffering=1)
        self.lock = threading.Lock()

    def event(self, **e):
        e["time"] = time.monotonic_ns()
        line = json.dumps(e)
        with self.lock:
            self.fh.write(line + "\n")
        return e["time"]


def do_read(ctl, ep, key):
    rc, out, err = ctl.run(ep, ["get", key, "-w", "json"])
    if rc != 0:
        return "fail", None, {"error": err or "exit %s" % rc}
    try:
        doc = json.loads(out)
    except ValueError:
        return "fail", None, {"error": "bad json: " + out[:200]}
    kvs = doc.get("kvs") or []
    value = b64(kvs[0].get("value", "")) if kvs else None
    extra = {"revision": doc.get("header", {}).get("revision")}
    if kvs:
        extra["mod_revision"] = kvs[0].get("mod_revision")
    return "ok", value, extra


def do_put(ctl, ep, key, value):
    rc, out, err = ctl.run(ep, ["put", key, value, "-w", "json"])
    if rc == 0:
        try:
            return "ok", {"revision": json.loads(out)["header"]["revision"]}
        except (ValueError, KeyError):
            return "info", failure("acked, but unreadable answer: " + out[:200])
    return "info", failure(err or "exit %s: %s" % (rc, out.strip()[:200]))


def txn_text(key, expected, new):
    if expected is None:
        cmp = 'create("%s") = "0"' % key
    else:
        cmp = 'value("%s") = "%s"' % (key, expected)
    return "%s\n\nput %s %s\n\n\n" % (cmp, key, new)


def do_cas(ctl, ep, key, expected, new):
    rc, out, err = ctl.run(ep, ["txn", "-w", "json"], stdin=txn_text(key, expected, new))
    if rc != 0:
        return "info", failure(err or "exit %s" % rc)
    try:
        doc = json.loads(out)
    except ValueError:
        return "info", failure("bad json: " + out[:200])
    return "ok", {"succeeded": bool(doc.get("succeeded", False)),
                  "revision": doc.get("header", {}).get("revision")}


def stop_requested(args, deadline):
    return time.monotonic() >= deadline or (args.stop_file and os.path.exists(args.stop_file))


def load_worker(args, ctl, hist, w, eps):
    n = 0
    deadline = time.monotonic() + args.duration
    while not stop_requested(args, deadline):
        n += 1
        ep = eps[(w + n) % len(eps)]
        key = "%s/%d/%d" % (args.prefix, w, n)
        value = "v%d.%d" % (w, n)
        hist.event(process=w, type="invoke", f="write", key=key, value=value, endpoint=ep)
        typ, extra = do_put(ctl, ep, key, value)
        hist.event(process=w, type=typ, f="write", key=key, value=value, endpoint=ep, **extra)
        if args.pause:
            time.sleep(args.pause)


def register_worker(args, ctl, hist, w, eps):
    rng = random.Random(args.seed * 1000 + w)
    keys = ["r%d" % i for i in range(args.keys)]
    last_seen = {}
    n = 0
    deadline = time.monotonic() + args.duration
    while not stop_requested(args, deadline):
        n += 1
        ep = rng.choice(eps)
        r = rng.random()
        key = rng.choice(keys)
        if r < 0.40:
            hist.event(process=w, type="invoke", f="read", key=key, value=None, endpoint=ep)
            typ, value, extra = do_read(ctl, ep, key)
            hist.event(process=w, type=typ, f="read", key=key, value=value, endpoint=ep, **extra)
            if typ == "ok":
                last_seen[key] = value
        elif r < 0.70:
            value = "w%d.%d" % (w, n)
            hist.event(process=w, type="invoke", f="write", key=key, value=value, endpoint=ep)
            typ, extra = do_put(ctl, ep, key, value)
            hist.event(process=w, type=typ, f="write", key=key, value=value, endpoint=ep, **extra)
            if typ == "ok":
                last_seen[key] = value
        elif r < 0.88:
            cas = [last_seen.get(key), "c%d.%d" % (w, n)]
            hist.event(process=w, type="invoke", f="cas", key=key, value=cas, endpoint=ep)
            typ, extra = do_cas(ctl, ep, key, cas[0], cas[1])
            hist.event(process=w, type=typ, f="cas", key=key, value=cas, endpoint=ep, **extra)
            if typ == "ok" and extra.get("succeeded"):
                last_seen[key] = cas[1]
        else:
            key = "ack/%d/%d" % (w, n)
            value = "a%d.%d" % (w, n)
            hist.event(process=w, type="invoke", f="write", key=key, value=value, endpoint=ep)
            typ, extra = do_put(ctl, ep, key, value)
            hist.event(process=w, type=typ, f="write", key=key, value=value, endpoint=ep, **extra)


def lease_worker(args, ctl, w, eps):
    """Leases kept alive through the faults. Grants a lease of args.ttl seconds, attaches a key to
    it, then every half second either keeps it alive (keep-alive --once) or reads the key, each
    through a random member, until the lease is gone; then starts over.

    A lease renewed by a keep-alive that was sent at time t (and answered with TTL s) cannot
    expire before t + s: the leader sets its expiry when the keep-alive reaches it, after t. So a
    read that finds the key gone, or a keep-alive told the lease is not found, that completes
    before the latest such t + s is an early expiry. Expiries after it are the lease's right (the
    faults can keep keep-alives from arriving). Returns (granted, renewed, expired, early)."""
    rng = random.Random(args.seed * 7919 + w)
    deadline = time.monotonic() + args.duration
    margin = 0.25  # the client's own timing, measured around etcdctl: conservative already
    granted = renewed = expired = 0
    early = []
    n = 0
    while not stop_requested(args, deadline):
        n += 1
        key = "lease/%d/%d" % (w, n)
        ep = rng.choice(eps)
        sent = time.monotonic()
        rc, out, err = ctl.run(ep, ["lease", "grant", str(args.ttl), "-w", "json"])
        if rc != 0:
            time.sleep(0.3)
            continue
        try:
            doc = json.loads(out)
            lease, ttl = int(doc["ID"]), int(doc["TTL"])
        except (ValueError, KeyError):
            continue
        granted += 1
        alive_until = sent + ttl
        rc, out, err = ctl.run(ep, ["put", "--lease=%x" % lease, key, "v%d" % n])
        if rc != 0:
            continue  # the key may or may not be there: this lease is not followed
        while not stop_requested(args, deadline):
            time.sleep(0.5)
            ep = rng.choice(eps)
            sent = time.monotonic()
            if rng.random() < 0.5:
                rc, out, err = ctl.run(ep, ["lease", "keep-alive", "--once", "%x" % lease, "-w", "json"])
                done = time.monotonic()
                if rc == 0:
                    try:
                        left = int(json.loads(out).get("TTL", 0))
                    except ValueError:
                        left = 0
                    if left > 0:
                        renewed += 1
                        alive_until = max(alive_until, sent + left)
                        continue
                if rc is not None and "not found" in (err or "").lower():
                    gone = "a keep-alive through %s was told it is not found" % ep
                else:
                    continue  # failed or timed out: no renewal, no news
            else:
                typ, value, extra = do_read(ctl, ep, key)
                done = time.monotonic()
                if typ != "ok" or value is not None:
                    continue
                gone = "a read through %s found %s gone (revision %s)" % (ep, key, extra.get("revision"))
            expired += 1
            if done < alive_until - margin:
                early.append("lease %x: %s %.2f s before the TTL of its last renewal ran out" %
                             (lease, gone, alive_until - done))
            break
    return granted, renewed, expired, early


def check_leases(args):
    ctl = Ctl(args)
    eps = args.endpoints.split(",")
    results = [None] * args.workers

    def run(w):
        results[w] = lease_worker(args, ctl, w, eps)

    threads = [threading.Thread(target=run, args=(w,), daemon=True) for w in range(args.workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    granted = sum(r[0] for r in results)
    renewed = sum(r[1] for r in results)
    expired = sum(r[2] for r in results)
    early = [e for r in results for e in r[3]]
    print("leases: %d granted, %d keep-alives renewed them, %d gone after their TTL, %d gone early" %
          (granted, renewed, expired - len(early), len(early)))
    for e in early:
        print("  early expiry: " + e)
    return 1 if early or granted == 0 else 0


def run_workers(args, target):
    ctl = Ctl(args)
    hist = History(args.history)
    eps = args.endpoints.split(",")
    threads = [threading.Thread(target=target, args=(args, ctl, hist, w, eps), daemon=True)
               for w in range(args.workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return 0


def final_reads(args):
    ctl = Ctl(args)
    hist = History(args.history)
    bad = 0
    for i, ep in enumerate(args.endpoints.split(",")):
        for k in range(args.keys):
            key = "r%d" % k
            p = 1000 + i
            hist.event(process=p, type="invoke", f="read", key=key, value=None, endpoint=ep, final=True)
            typ, value, extra = do_read(ctl, ep, key)
            hist.event(process=p, type=typ, f="read", key=key, value=value, endpoint=ep, final=True, **extra)
            if typ != "ok":
                bad += 1
                print("final read of %s via %s failed: %s" % (key, ep, extra.get("error")), file=sys.stderr)
    return 1 if bad else 0


def acked_puts(path, prefix):
    """key -> value of every put under prefix that completed ok (unique keys)."""
    pending = {}
    acked = {}
    attempted = 0
    with open(path) as fh:
        for line in fh:
            e = json.loads(line)
            if e.get("f") != "write" or not str(e.get("key", "")).startswith(prefix):
                continue
            if e["type"] == "invoke":
                attempted += 1
                pending[e["process"]] = e
            else:
                pending.pop(e["process"], None)
                if e["type"] == "ok":
                    acked[e["key"]] = e["value"]
    return acked, attempted


def check_acks(args):
    ctl = Ctl(args)
    acked, attempted = acked_puts(args.history, args.prefix)
    failures = 0
    for ep in args.endpoints.split(","):
        rc, out, err = ctl.run(ep, ["get", args.prefix, "--prefix", "--consistency=s", "-w", "json"])
        if rc != 0:
            print("acks: reading %s* via %s failed: %s" % (args.prefix, ep, err))
            failures += 1
            continue
        doc = json.loads(out)
        have = {b64(kv["key"]): b64(kv.get("value", "")) for kv in doc.get("kvs") or []}
        missing = [k for k in acked if k not in have]
        wrong = [k for k in acked if k in have and have[k] != acked[k]]
        if missing or wrong:
            failures += 1
            print("acks: %s: %d of %d acknowledged puts missing, %d with another value (e.g. %s)" % (
                ep, len(missing), len(acked), len(wrong), ", ".join(sorted(missing + wrong)[:5])))
        else:
            print("acks: %s: all %d acknowledged puts present (%d attempted, %d keys stored)" % (
                ep, len(acked), attempted, len(have)))
    if not acked:
        print("acks: no put was acknowledged at all")
        failures += 1
    return 1 if failures else 0


def check_revisions(args):
    """Revisions never go back in real time: an op invoked after another completed sees a
    revision at least as high (reads, failed compares), or strictly higher (acked writes)."""
    inv = {}
    ops = []
    with open(args.history) as fh:
        for line in fh:
            e = json.loads(line)
            if e["type"] == "invoke":
                inv[e["process"]] = e
                continue
            i = inv.pop(e["process"])
            if e["type"] == "ok" and e.get("revision"):
                write = e["f"] == "write" or (e["f"] == "cas" and e.get("succeeded"))
                ops.append((i["time"], e["time"], int(e["revision"]), write, e))
    events = [(o[0], 0, n) for n, o in enumerate(ops)] + [(o[1], 1, n) for n, o in enumerate(ops)]
    events.sort()
    max_done, max_op = 0, None
    seen_at_call = {}
    bad = []
    for t, kind, n in events:
        if kind == 0:
            seen_at_call[n] = (max_done, max_op)
            continue
        floor, by = seen_at_call[n]
        rev, write = ops[n][2], ops[n][3]
        if rev < floor or (write and rev == floor and by is not None and by[3]):
            bad.append((ops[n], floor, by))
        if rev > max_done:
            max_done, max_op = rev, ops[n]
    print("revisions: %d ops with a revision, %d went back in time" % (len(ops), len(bad)))
    for op, floor, by in bad[:5]:
        e = op[4]
        print("  %s %s via %s got revision %d after %s %s via %s had completed with revision %d" % (
            e["f"], e["key"], e.get("endpoint"), op[2], by[4]["f"], by[4]["key"], by[4].get("endpoint"), floor))
    return 1 if bad else 0


def stop_proc(p):
    """SIGTERM (timeout(1) passes it on to etcdctl; SIGKILL would orphan etcdctl), then SIGKILL."""
    p.terminate()
    try:
        p.wait(timeout=3)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def watch(args):
    """One live watcher per endpoint on the register keys (prefix), from revision 1, until
    the stop file appears (or --duration). Each etcdctl output line (a JSON WatchResponse) is
    appended to HISTORY.watch.<i>, its stderr to HISTORY.watch.<i>.err. etcdctl resumes a
    broken stream itself; if it exits (e.g. the watch was cancelled because the member lost
    its leader: etcdctl asks for require-leader), it is started again from the last revision
    seen + 1, so the events stay checkable for gaps."""
    eps = args.endpoints.split(",")
    base = Ctl(args).base
    env = dict(os.environ, ETCDCTL_API="3")
    state = []
    for i, ep in enumerate(eps):
        state.append({"ep": ep, "out": "%s.watch.%d" % (args.history, i), "proc": None, "restarts": 0})

    def last_rev(path):
        evs = watch_events(path) if os.path.exists(path) else []
        return evs[-1][0] if evs else 0

    def start(w):
        rev = last_rev(w["out"]) + 1
        out = open(w["out"], "a")
        err = open(w["out"] + ".err", "a")
        err.write("=== %d start from revision %d\n" % (time.monotonic_ns(), rev))
        err.flush()
        cmd = ["timeout", "-k", "1", str(int(args.duration) + 30)] + base + [
            "--endpoints=" + w["ep"], "watch", "--prefix", args.prefix, "--rev", str(rev), "-w", "json"]
        w["proc"] = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        out.close()
        err.close()

    def on_term(signum, frame):
        raise SystemExit(143)

    signal.signal(signal.SIGTERM, on_term)
    try:
        for w in state:
            start(w)
        deadline = time.monotonic() + args.duration
        while time.monotonic() < deadline and not (args.stop_file and os.path.exists(args.stop_file)):
            time.sleep(0.2)
            for w in state:
                if w["proc"].poll() is not None:
                    w["restarts"] += 1
                    time.sleep(0.3)
                    start(w)
    finally:
        for w in state:
            if w["proc"] is not None:
                stop_proc(w["proc"])
    for w in state:
        with open(w["out"] + ".restarts", "w") as fh:
            fh.write("%d\n" % w["restarts"])
    return 0


def watch_events(path):
    """(mod_revision, key, value, deleted) of every event in an etcdctl watch -w json log."""
    events = []
    with open(path) as fh:
        for line in fh:
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                resp = json.loads(line)
            except ValueError:
                continue  # the last line may be cut by the kill
            for ev in resp.get("Events") or []:
                kv = ev.get("kv", {})
                events.append((int(kv.get("mod_revision", 0)), b64(kv.get("key")), b64(kv.get("value", "")),
                               ev.get("type") == 1))
    return events


def check_watches(args):
    """Every live watcher saw events in revision order, without duplicates, and exactly the
    events the cluster has for the prefix between its first and last one (no gaps); the
    reference is a watch from revision 1 through the first endpoint after the run."""
    ctl = Ctl(args)
    eps = args.endpoints.split(",")
    ref_path = args.history + ".watch.ref"
    with open(ref_path, "w") as out:
        cmd = ["timeout", "-k", "1", "10"] + ctl.base + [
            "--endpoints=" + eps[0], "watch", "--prefix", args.prefix, "--rev", "1", "-w", "json"]
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL, env=ctl.env)
        time.sleep(3)
        stop_proc(p)
    ref = watch_events(ref_path)
    bad = 0
    if not ref or any(a[0] >= b[0] for a, b in zip(ref, ref[1:])):
        print("watch: the reference watch from revision 1 is empty or out of order (%d events)" % len(ref))
        return 1
    ref_by_rev = {e[0]: e for e in ref}
    for i, ep in enumerate(eps):
        evs = watch_events("%s.watch.%d" % (args.history, i))
        if not evs:
            print("watch: %s: no events at all" % ep)
            bad += 1
            continue
        revs = [e[0] for e in evs]
        dups = len(revs) - len(set(revs))
        back = sum(1 for a, b in zip(revs, revs[1:]) if b < a)
        lo, hi = revs[0], revs[-1]
        want = [e for e in ref if lo <= e[0] <= hi]
        try:
            restarts = open("%s.watch.%d.restarts" % (args.history, i)).read().strip()
        except OSError:
            restarts = "?"
        seen = set(revs)
        gaps = [e[0] for e in want if e[0] not in seen]
        wrong = [e[0] for e in evs if ref_by_rev.get(e[0]) != e]
        if dups or back or gaps or wrong:
            bad += 1
            print("watch: %s: %d events [%d..%d]: %d duplicates, %d going back, %d missing (e.g. %s), "
                  "%d differing from the cluster's history (e.g. %s); etcdctl restarted %s times" % (
                      ep, len(evs), lo, hi, dups, back, len(gaps), gaps[:5], len(wrong), wrong[:5], restarts))
        elif hi < ref[-1][0]:
            bad += 1
            print("watch: %s: stalled: its last event is revision %d, the cluster's last one on the prefix is %d "
                  "(%d events missed; etcdctl restarted %s times)" % (
                      ep, hi, ref[-1][0], sum(1 for e in ref if e[0] > hi), restarts))
        else:
            print("watch: %s: %d events [%d..%d] in order, no duplicates, no gaps, up to date "
                  "(etcdctl restarted %s times)" % (ep, len(evs), lo, hi, restarts))
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["load", "register", "final", "acks", "revisions", "watch", "watchcheck", "leases"])
    ap.add_argument("--endpoints", default="")
    ap.add_argument("--history", required=True)
    ap.add_argument("--cacert", default="")
    ap.add_argument("--cert", default="")
    ap.add_argument("--key", default="")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--duration", type=float, default=30)
    ap.add_argument("--stop-file", default="")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keys", type=int, default=3)
    ap.add_argument("--prefix", default="p")
    ap.add_argument("--pause", type=float, default=0.0)
    ap.add_argument("--command-timeout", type=float, default=2)
    ap.add_argument("--ttl", type=int, default=4)
    args = ap.parse_args()
    if args.mode == "load":
        return run_workers(args, load_worker)
    if args.mode == "register":
        return run_workers(args, register_worker)
    if args.mode == "watch":
        return watch(args)
    if args.mode == "leases":
        return check_leases(args)
    if args.mode == "watchcheck":
        return check_watches(args)
    if args.mode == "revisions":
        return check_revisions(args)
    if args.mode == "final":
        return final_reads(args)
    return check_acks(args)


if __name__ == "__main__":
    sys.exit(main())
