#!/usr/bin/env python3
"""Linearizability checker for histories of single-key registers (read / write / cas).

Usage: linearizability.py HISTORY.jsonl [--quiet]
Exit 0 if every key's history is linearizable, 1 if one is not (a counterexample is
printed: the key and a minimal window of operations), 2 on a malformed history.

The search is Wing & Gong's, with Lowe's just-in-time linearization and memoization of
(set of linearized operations, register value) -- the algorithm of Lowe, "Testing for
linearizability" (2017), also used by porcupine. Keys are independent registers, so each
key is checked alone (P-compositionality, Horn & Kroening 2015).

History format: JSON lines, in either of two shapes (they may be mixed).
1. Jepsen-style events: an invocation and then a completion per operation, matched by "process":
     {"process": 3, "type": "invoke", "f": "write", "key": "k1", "value": "v7", "time": 123}
     {"process": 3, "type": "ok",     "f": "write", "key": "k1", "value": "v7", "time": 456}
   f is "read" (completion "value": what was read, null if the key was absent), "write"
   ("value": what was written) or "cas" ("value": [expected, new]; expected null means
   "the key is absent"). Completion "type": "ok" (it happened; for cas: the compare held
   and the write was done, unless the completion says "succeeded": false, which means the
   server saw a value other than expected), "fail" (it certainly did not happen; Jepsen's
   convention for a cas whose compare did not hold, then without checking it), "info" (indeterminate: it may or may not have taken effect, at any time after
   its invocation -- a timeout or a connection error). An invocation without a completion
   is indeterminate too.
2. Whole operations: {"process": 3, "f": "write", "key": "k1", "value": "v7",
     "call": 123, "ret": 456, "type": "ok"|"fail"|"info"}
Times are integers or floats on one clock (the recorder's monotonic clock). Other fields
(e.g. "error", "endpoint") are carried along for the report.

Semantics. The register starts absent (None). A read that did not succeed (fail/info) has
no effect and is dropped; a failed write or failed cas is dropped. An indeterminate write
or cas has no return: it can be linearized anywhere after its invocation, and leaving it
out is the same as linearizing it last (nothing observes the register after the end).
"""

import json
import sys
from collections import defaultdict

INF = float("inf")


class Op:
    __slots__ = ("id", "process", "f", "key", "value", "call", "ret", "type", "extra")

    def __init__(self, process, f, key, value, call, ret, typ, extra=None):
        self.id = -1
        self.process = process
        self.f = f
        self.key = key
        self.value = value
        self.call = call
        self.ret = ret
        self.type = typ
        self.extra = extra or {}

    def describe(self):
        ret = "..." if self.ret == INF else fmt_time(self.ret)
        if self.f == "cas":
            what = "cas(%r -> %r)" % tuple(self.value)
        elif self.f == "write":
            what = "write(%r)" % (self.value,)
        else:
            what = "read() = %r" % (self.value,)
        err = self.extra.get("error")
        return "p%-4s [%s, %s] %-5s %s%s" % (self.process, fmt_time(self.call), ret, self.type, what,
                                             ("  (" + str(err)[:80] + ")") if err else "")


def fmt_time(t):
    return "%.6f" % (t / 1e9) if isinstance(t, int) and t > 1e12 else str(t)


class HistoryError(Exception):
    pass


def parse(lines):
    """Parse JSON lines into a list of Ops (all keys)."""
    ops = []
    pending = {}
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        try:
            e = json.loads(line)
        except ValueError as err:
            raise HistoryError("line %d: not JSON: %s" % (n, err))
        typ = e.get("type")
        f = e.get("f")
        if f not in ("read", "write", "cas"):
            raise HistoryError("line %d: unknown f %r" % (n, f))
        extra = {k: v for k, v in e.items() if k not in ("process", "type", "f", "key", "value", "time", "call", "ret")}
        if "call" in e:
            ret = e.get("ret")
            if typ == "info" or ret is None:
                ret = INF
            ops.append(Op(e.get("process"), f, e.get("key"), e.get("value"), e["call"], ret, typ or "info", extra))
            continue
        p = e.get("process")
        if typ == "invoke":
            if p in pending:
                raise HistoryError("line %d: process %r invoked twice without completing" % (n, p))
            pending[p] = Op(p, f, e.get("key"), e.get("value"), e["time"], INF, "info", extra)
        elif typ in ("ok", "fail", "info"):
            op = pending.pop(p, None)
            if op is None:
                raise HistoryError("line %d: completion without invocation for process %r" % (n, p))
            if op.f != f or op.key != e.get("key"):
                raise HistoryError("line %d: completion does not match the invocation of process %r" % (n, p))
            op.type = typ
            op.extra.update(extra)
            if typ == "info":
                op.ret = INF
            else:
                op.ret = e["time"]
                if f == "read" and typ == "ok":
                    op.value = e.get("value")
            ops.append(op)
        else:
            raise HistoryError("line %d: unknown type %r" % (n, typ))
    ops.extend(pending.values())  # never completed: indeterminate
    for op in ops:
        if op.f == "cas" and (not isinstance(op.value, list) or len(op.value) != 2):
            raise HistoryError("cas needs value [expected, new]: %r" % (op.value,))
        if op.ret != INF and op.ret < op.call:
            raise HistoryError("operation returns before it is invoked: %s" % op.describe())
    return ops


def relevant(ops):
    """The operations that constrain the register: drop failed ops and unsuccessful reads."""
    out = []
    for op in ops:
        if op.type == "fail":
            continue
        if op.f == "cas" and op.type != "ok" and op.extra.get("succeeded") is False:
            continue
        if op.f == "read" and op.type != "ok":
            continue
        out.append(op)
    return out


def step(state, op):
    """Register model. Returns (legal, new_state)."""
    if op.f == "read":
        return state == op.value, state
    if op.f == "write":
        return True, op.value
    expected, new = op.value
    if op.type == "ok" and op.extra.get("succeeded") is False:
        # The server answered that the compare did not hold: an observation, like a read.
        return state != expected, state
    # An ok cas had a matching compare; an indeterminate one is only worth linearizing
    # where it would succeed (where it would fail, it is a no-op: same as placing it last).
    if state == expected:
        return True, new
    return False, state


class _Entry:
    __slots__ = ("op", "is_call", "match", "prev", "next")

    def __init__(self, op, is_call):
        self.op = op
        self.is_call = is_call
        self.match = None
        self.prev = None
        self.next = None


def check_ops(ops, init=None, limit=None):
    """Lowe's WGL search over the ops of one register starting at `init`.

    Returns (linearizable, info); info is a dict with the search statistics and, when the
    history is not linearizable, the longest prefix that was linearized. `limit` bounds the
    number of search steps (None: unbounded); on exhaustion returns (None, info).
    """
    ops = list(ops)
    for i, op in enumerate(ops):
        op.id = i
    events = []
    for op in ops:
        call = _Entry(op, True)
        ret = _Entry(op, False)
        call.match = ret
        events.append((op.call, 0, op.id, call))
        # At equal times an invocation sorts before a return: ops whose times touch are
        # treated as concurrent (the clock cannot order them).
        events.append((op.ret, 1, op.id, ret))
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    head = _Entry(None, False)
    prev = head
    for ev in events:
        e = ev[3]
        prev.next = e
        e.prev = prev
        prev = e

    def lift(e):
        e.prev.next = e.next
        if e.next:
            e.next.prev = e.prev
        m = e.match
        m.prev.next = m.next
        if m.next:
            m.next.prev = m.prev

    def unlift(e):
        m = e.match
        m.prev.next = m
        if m.next:
            m.next.prev = m
        e.prev.next = e
        if e.next:
            e.next.prev = e

    state = init
    linearized = 0
    # Determinate ops not linearized yet; when none is left, the indeterminate rest goes last.
    remaining = sum(1 for op in ops if op.ret != INF)
    cache = set()
    stack = []
    best = []  # the longest sequence of ops linearized so far
    steps = 0
    entry = head.next
    while head.next is not None:
        steps += 1
        if limit is not None and steps > limit:
            return None, {"steps": steps}
        if remaining == 0:
            break
        if entry.is_call:
            ok, new_state = step(state, entry.op)
            if ok:
                new_lin = linearized | (1 << entry.op.id)
                key = (new_lin, new_state)
                if key not in cache:
                    cache.add(key)
                    stack.append((entry, state))
                    if len(stack) > len(best):
                        best = [s[0].op for s in stack]
                    state = new_state
                    linearized = new_lin
                    if entry.op.ret != INF:
                        remaining -= 1
                    lift(entry)
                    entry = head.next
                    continue
            entry = entry.next
        else:
            # The return of an op that is not linearized yet: backtrack.
            if not stack:
                return False, {"steps": steps, "linearized": best, "stuck": entry.op}
            entry, state = stack.pop()
            linearized &= ~(1 << entry.op.id)
            if entry.op.ret != INF:
                remaining += 1
            unlift(entry)
            entry = entry.next
    return True, {"steps": steps}


def _fails_any_init(ops, inits, limit):
    for init in inits:
        ok, _ = check_ops(ops, init, limit)
        if ok is not False:
            return False
    return True


def minimal_window(ops, limit=200000):
    """A short contiguous window (by invocation time) of a non-linearizable history that is
    not linearizable on its own, for any starting value of the register."""
    ops = sorted(ops, key=lambda o: (o.call, o.ret))
    # Shortest failing prefix (from the start state: absent).
    lo, hi = 1, len(ops)
    while lo < hi:
        mid = (lo + hi) // 2
        ok, _ = check_ops(ops[:mid], None, limit)
        if ok is False:
            hi = mid
        else:
            lo = mid + 1
    end = lo
    if check_ops(ops[:end], None, limit)[0] is not False:
        end = len(ops)
    # Drop ops from the front while the window still fails for every start value that
    # an earlier op could have left (or absent).
    start = 0
    for s in range(end - 1, 0, -1):
        window = ops[s:end]
        inits = {None}
        for o in ops[:s]:
            if o.f == "write":
                inits.add(o.value)
            elif o.f == "cas":
                inits.add(o.value[1])
        if _fails_any_init(window, inits, limit):
            start = s
            break
    return ops[start:end], start > 0


def check_history(ops, limit=None):
    """Check every key. Returns a list of (key, result dict) for the keys that fail."""
    by_key = defaultdict(list)
    for op in relevant(ops):
        by_key[op.key].append(op)
    bad = []
    stats = {}
    for key in sorted(by_key, key=str):
        kops = by_key[key]
        ok, info = check_ops(kops, None, limit)
        stats[key] = (len(kops), info.get("steps"))
        if ok is False:
            bad.append((key, kops, info))
        elif ok is None:
            bad.append((key, kops, {"unknown": True}))
    return bad, stats


def main(argv):
    if len(argv) < 2:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    quiet = "--quiet" in argv
    try:
        with open(argv[1]) as fh:
            ops = parse(fh)
    except (HistoryError, KeyError, OSError) as err:
        print("linearizability: bad history: %s" % err, file=sys.stderr)
        return 2
    bad, stats = check_history(ops)
    counts = defaultdict(int)
    for op in ops:
        counts[(op.f, op.type)] += 1
    if not quiet:
        print("linearizability: %d ops over %d keys (%s)" % (
            len(ops), len(stats), ", ".join("%s/%s %d" % (f, t, c) for (f, t), c in sorted(counts.items()))))
    if not bad:
        print("linearizability: OK, every key is linearizable")
        return 0
    for key, kops, info in bad:
        if info.get("unknown"):
            print("linearizability: key %r: search limit reached, undecided" % (key,))
            continue
        print("linearizability: key %r is NOT linearizable (%d ops)" % (key, len(kops)))
        window, from_mid = minimal_window(kops)
        print("  minimal window (%d ops%s):" % (
            len(window), ", not linearizable from any value the register could hold" if from_mid else ", from the start"))
        for op in window:
            print("    " + op.describe())
        lin = info.get("linearized") or []
        if lin:
            print("  the longest sequence the search could linearize ends with:")
            for op in lin[-5:]:
                print("    " + op.describe())
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
