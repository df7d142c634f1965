"""Unit tests of linearizability.py: small hand-written register histories, each one
linearizable or not by construction, in both input shapes, plus the CLI's exit codes.
Run: python3 -m unittest discover -s Tests/Jepsen -p 'test_*.py'"""

import io
import json
import os
import random
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import linearizability as lin  # noqa: E402

CHECKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "linearizability.py")


def op(p, f, value, call, ret, typ="ok", key="x"):
    """A whole-operation line (shape 2)."""
    d = {"process": p, "f": f, "key": key, "value": value, "call": call, "type": typ}
    if ret is not None:
        d["ret"] = ret
    return json.dumps(d)


def check(lines):
    ops = lin.parse(lines)
    bad, _ = lin.check_history(ops)
    return not bad


class Linearizable(unittest.TestCase):
    def test_empty(self):
        self.assertTrue(check([]))

    def test_sequential(self):
        self.assertTrue(check([
            op(1, "read", None, 0, 1),
            op(1, "write", "a", 2, 3),
            op(2, "read", "a", 4, 5),
            op(2, "cas", ["a", "b"], 6, 7),
            op(1, "read", "b", 8, 9),
        ]))

    def test_concurrent_read_sees_either(self):
        # A read overlapping a write may see the old or the new value.
        for seen in (None, "a"):
            self.assertTrue(check([
                op(1, "write", "a", 0, 10),
                op(2, "read", seen, 1, 2),
            ]), seen)

    def test_reordering_needed(self):
        # Invocation order w(a), w(b) but linearization order w(b), w(a): reads prove it.
        self.assertTrue(check([
            op(1, "write", "a", 0, 10),
            op(2, "write", "b", 1, 10),
            op(3, "read", "b", 2, 3),
            op(3, "read", "a", 11, 12),
        ]))

    def test_indeterminate_write_may_take_effect_late(self):
        # A write that timed out shows up long after its invocation.
        self.assertTrue(check([
            op(1, "write", "a", 0, None, "info"),
            op(2, "read", None, 5, 6),
            op(2, "read", "a", 100, 101),
        ]))

    def test_indeterminate_write_may_never_happen(self):
        self.assertTrue(check([
            op(1, "write", "a", 0, 1),
            op(2, "write", "b", 2, None, "info"),
            op(3, "read", "a", 10, 11),
        ]))

    def test_failed_cas_and_failed_read_are_ignored(self):
        self.assertTrue(check([
            op(1, "write", "a", 0, 1),
            op(2, "cas", ["z", "b"], 2, 3, "fail"),
            op(3, "read", "nonsense", 4, 5, "info"),
            op(3, "read", "a", 6, 7),
        ]))

    def test_event_shape(self):
        lines = [
            {"process": 1, "type": "invoke", "f": "write", "key": "k", "value": "a", "time": 0},
            {"process": 2, "type": "invoke", "f": "read", "key": "k", "value": None, "time": 1},
            {"process": 1, "type": "ok", "f": "write", "key": "k", "value": "a", "time": 2},
            {"process": 2, "type": "ok", "f": "read", "key": "k", "value": "a", "time": 3},
            {"process": 3, "type": "invoke", "f": "cas", "key": "k", "value": ["a", "c"], "time": 4},
            {"process": 3, "type": "info", "f": "cas", "key": "k", "value": ["a", "c"], "time": 9},
            {"process": 1, "type": "invoke", "f": "read", "key": "k", "value": None, "time": 10},
            {"process": 1, "type": "ok", "f": "read", "key": "k", "value": "c", "time": 11},
        ]
        self.assertTrue(check([json.dumps(e) for e in lines]))
        self.assertEqual(len(lin.parse([json.dumps(e) for e in lines])), 4)

    def test_event_shape_violation(self):
        # The same shape must also be able to fail: a stale read after an acked write.
        lines = [
            {"process": 1, "type": "invoke", "f": "write", "key": "k", "value": "a", "time": 0},
            {"process": 1, "type": "ok", "f": "write", "key": "k", "value": "a", "time": 2},
            {"process": 2, "type": "invoke", "f": "read", "key": "k", "value": None, "time": 3},
            {"process": 2, "type": "ok", "f": "read", "key": "k", "value": None, "time": 4},
        ]
        self.assertFalse(check([json.dumps(e) for e in lines]))

    def test_pending_invocation_is_indeterminate(self):
        lines = [
            {"process": 1, "type": "invoke", "f": "write", "key": "k", "value": "a", "time": 0},
            {"process": 2, "type": "invoke", "f": "read", "key": "k", "value": None, "time": 5},
            {"process": 2, "type": "ok", "f": "read", "key": "k", "value": "a", "time": 6},
        ]
        ops = lin.parse([json.dumps(e) for e in lines])
        self.assertEqual(len(ops), 2)
        self.assertTrue(check([json.dumps(e) for e in lines]))

    def test_keys_are_independent(self):
        self.assertTrue(check([
            op(1, "write", "a", 0, 1, key="x"),
            op(1, "read", None, 2, 3, key="y"),
            op(1, "read", "a", 4, 5, key="x"),
        ]))

    def test_random_sequential_histories_pass(self):
        # Any history produced by a real register with non-overlapping ops is linearizable,
        # and so is one whose intervals are widened around the true linearization points.
        rng = random.Random(7)
        for trial in range(30):
            state = None
            lines = []
            t = 0
            for i in range(40):
                point = t + rng.randint(1, 5)
                call = point - rng.randint(0, 20)
                ret = point + rng.randint(0, 20)
                t = point
                f = rng.choice(["read", "write", "cas"])
                if f == "read":
                    lines.append(op(i, "read", state, call, ret))
                elif f == "write":
                    state = "v%d" % i
                    lines.append(op(i, "write", state, call, ret))
                else:
                    exp = rng.choice([state, "nope"])
                    if exp == state:
                        state = "v%d" % i
                        lines.append(op(i, "cas", [exp, state], call, ret))
                    else:
                        lines.append(op(i, "cas", [exp, "v%d" % i], call, ret, "fail"))
            self.assertTrue(check(lines), "trial %d" % trial)


class NotLinearizable(unittest.TestCase):
    def test_stale_read(self):
        # The write completed before the read began; the read must see it.
        self.assertFalse(check([
            op(1, "write", "a", 0, 1),
            op(2, "read", None, 2, 3),
        ]))

    def test_lost_acknowledged_write(self):
        self.assertFalse(check([
            op(1, "write", "a", 0, 1),
            op(1, "write", "b", 2, 3),
            op(2, "read", "a", 4, 5),
        ]))

    def test_read_of_never_written_value(self):
        self.assertFalse(check([op(1, "read", "ghost", 0, 1)]))

    def test_reads_go_back_in_time(self):
        # Two sequential reads during a long write: new value, then old value.
        self.assertFalse(check([
            op(1, "write", "a", 0, 1),
            op(1, "write", "b", 2, 50),
            op(2, "read", "b", 3, 4),
            op(2, "read", "a", 5, 6),
        ]))

    def test_double_cas_success(self):
        # Two cas from the same expected value cannot both succeed.
        self.assertFalse(check([
            op(1, "write", "a", 0, 1),
            op(2, "cas", ["a", "b"], 2, 10),
            op(3, "cas", ["a", "c"], 2, 10),
        ]))

    def test_indeterminate_does_not_excuse_a_real_violation(self):
        # An indeterminate write of "c" cannot explain reading "a" after "b" was acked.
        self.assertFalse(check([
            op(1, "write", "a", 0, 1),
            op(2, "write", "c", 0, None, "info"),
            op(1, "write", "b", 2, 3),
            op(3, "read", "a", 4, 5),
        ]))

    def test_cas_effect_missing(self):
        self.assertFalse(check([
            op(1, "write", "a", 0, 1),
            op(2, "cas", ["a", "b"], 2, 3),
            op(3, "read", "a", 4, 5),
        ]))

    def test_compare_false_that_must_have_held(self):
        # The server said the compare failed, but the register certainly held "a".
        line = json.loads(op(2, "cas", ["a", "b"], 2, 3))
        line["succeeded"] = False
        self.assertFalse(check([op(1, "write", "a", 0, 1), json.dumps(line)]))
        line["call"], line["ret"] = 0, 3  # concurrent with the write: "absent" was possible
        self.assertTrue(check([op(1, "write", "a", 0, 1), json.dumps(line)]))

    def test_minimal_window_names_the_culprit(self):
        lines = [op(1, "write", "v%d" % i, 10 * i, 10 * i + 1) for i in range(20)]
        lines += [op(1, "read", "v19", 200, 201), op(2, "read", "v3", 210, 211), op(1, "read", "v19", 220, 221)]
        ops = lin.relevant(lin.parse(lines))
        ok, _ = lin.check_ops(ops)
        self.assertFalse(ok)
        window, _ = lin.minimal_window(ops)
        self.assertLessEqual(len(window), 3)
        self.assertIn("v3", [o.value for o in window])


class CLI(unittest.TestCase):
    def run_cli(self, lines):
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as fh:
            fh.write("\n".join(lines) + "\n")
            path = fh.name
        try:
            return subprocess.run([sys.executable, CHECKER, path], capture_output=True, text=True, timeout=60)
        finally:
            os.unlink(path)

    def test_ok_exit_0(self):
        r = self.run_cli([op(1, "write", "a", 0, 1), op(2, "read", "a", 2, 3)])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_violation_exit_1_with_counterexample(self):
        r = self.run_cli([op(1, "write", "a", 0, 1, key="k9"), op(2, "read", None, 2, 3, key="k9")])
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("'k9' is NOT linearizable", r.stdout)
        self.assertIn("minimal window", r.stdout)

    def test_malformed_exit_2(self):
        r = self.run_cli(['{"process": 1, "type": "ok", "f": "read", "key": "k", "time": 1}'])
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main()
