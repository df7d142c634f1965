"""What the Python checkers of the compatibility suites share: one line per check, "ok: NAME" or
"FAIL: NAME: DETAIL", which lib.sh's report_checks counts; `failures` is the exit status."""
failures = 0


def check(name, ok, detail=""):
    global failures
    if ok:
        print("ok: " + name, flush=True)
    else:
        failures += 1
        print("FAIL: " + name + (": " + detail if detail else ""), flush=True)
