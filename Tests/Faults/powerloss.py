#!/usr/bin/env python3
"""Tests/Faults/powerloss.py: after a kill -9, takes from a member's files what a power cut would
have taken, from the log powerloss.c kept while it ran.

    powerloss.py LOG clean|torn SEED

Every file the log names is cut back to the bytes its last successful fsync/fdatasync covered (a
file never synced since it was opened: to its size at that open; a file created and never synced:
empty). `torn` keeps, instead, a random part of the unsynced tail, so that the last record can end
mid-way, as when the disk wrote back some of the pages before the power went. The log is emptied
afterwards (the next run's log starts from the files as they are now).

Prints one line: files cut, bytes dropped, those of them from RocksDB's write-ahead logs (*.log,
the files that hold the Raft log and the state's unsynced batches), and the largest cut, so a test
can tell that the cut took something away that mattered.
"""
import os
import random
import sys


def durable_sizes(lines):
    durable = {}
    for line in lines:
        parts = line.rstrip("\n").split(" ", 2)
        if len(parts) < 3:
            continue  # a line cut short by the kill
        event, a, b = parts
        if event == "open":
            size = int(a)
            durable[b] = min(durable.get(b, size), size)
        elif event == "sync":
            durable[b] = int(a)
        elif event == "rename":
            old, new = a, b
            if old in durable:
                durable[new] = durable.pop(old)
            else:
                durable.pop(new, None)
        elif event == "unlink":
            durable.pop(a, None)
    return durable


def main():
    log, mode, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if mode not in ("clean", "torn"):
        sys.exit(f"powerloss.py: mode must be clean or torn, not {mode}")
    rng = random.Random(seed)
    try:
        with open(log, errors="replace") as f:
            lines = f.readlines()
    except FileNotFoundError:
        lines = []
    files = dropped = wal_dropped = largest = 0
    largest_path = "-"
    for path, size in sorted(durable_sizes(lines).items()):
        try:
            actual = os.path.getsize(path)
        except OSError:
            continue
        if actual <= size:
            continue
        keep = size if mode == "clean" else size + rng.randrange(actual - size)
        os.truncate(path, keep)
        files += 1
        dropped += actual - keep
        if path.endswith(".log"):
            wal_dropped += actual - keep
        if actual - keep > largest:
            largest, largest_path = actual - keep, path
    open(log, "w").close()
    print(f"powerloss: wal_bytes={wal_dropped} bytes={dropped} files={files} largest={largest}:{largest_path}")


if __name__ == "__main__":
    main()
