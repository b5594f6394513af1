# SPDX-License-Identifier: MIT
"""
bench-handoff-py.py -- Python filelock's hand-off, the column beside
bench-handoff's table: a holder process releases, a waiter process
(acquire with a 60 s timeout, default poll interval 0.05 s) holds; the time
from just before the release to just after the acquire returned, on
CLOCK_MONOTONIC (one clock for both processes).  The holder keeps the lock
a random 2-52 ms first, as bench-handoff does.  Median and p99 per class.

  PYTHONPATH=<filelock source> python3 bench-handoff-py.py [-n HANDOFFS] [DIR]

Exits 77 when the filelock package cannot be imported.
"""

import math
import os
import random
import struct
import sys
import tempfile
import time

try:
    import filelock
except ImportError as e:
    print(f"bench-handoff-py: skipped: cannot import filelock ({e})")
    sys.exit(77)


def classes():
    yield "unix", lambda p: filelock.FileLock(p), "acquire", "release"
    yield "soft", lambda p: filelock.SoftFileLock(p), "acquire", "release"
    if hasattr(filelock, "SoftFileLease"):
        yield "lease", lambda p: filelock.SoftFileLease(p), "acquire", "release"
    if hasattr(filelock, "StrictSoftFileLock"):
        yield "strict", lambda p: filelock.StrictSoftFileLock(p), "acquire", "release"
    if hasattr(filelock, "SoftReadWriteLock"):
        yield "soft-rw", lambda p: filelock.SoftReadWriteLock(p), "acquire_write", "release"
    if hasattr(filelock, "ReadWriteLock"):
        yield "rw", lambda p: filelock.ReadWriteLock(p), "acquire_write", "release"


def read_exact(fd, n):
    buf = b""
    while len(buf) < n:
        got = os.read(fd, n - len(buf))
        if not got:
            raise SystemExit("bench-handoff-py: peer process went away")
        buf += got
    return buf


def handoff(name, make, acq, rel, path, n):
    go_r, go_w = os.pipe()
    back_r, back_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(go_w)
        os.close(back_r)
        lk = make(path)
        while os.read(go_r, 1):
            os.write(back_w, b"r")
            getattr(lk, acq)(timeout=60)
            t1 = time.monotonic()
            getattr(lk, rel)()
            os.write(back_w, struct.pack("d", t1))
        os._exit(0)
    os.close(go_r)
    os.close(back_w)
    lk = make(path)
    rnd = random.Random(42)
    v = []
    for _ in range(n):
        getattr(lk, acq)(timeout=60)
        os.write(go_w, b"g")
        read_exact(back_r, 1)
        time.sleep(0.002 + 0.05 * rnd.random())
        t0 = time.monotonic()
        getattr(lk, rel)()
        (t1,) = struct.unpack("d", read_exact(back_r, 8))
        v.append((t1 - t0) * 1e3)
    os.close(go_w)
    os.waitpid(pid, 0)
    os.close(back_r)
    v.sort()
    return v[len(v) // 2 - (1 - len(v) % 2)] if v else 0, v[max(0, math.ceil(0.99 * len(v)) - 1)]


def main():
    n = 60
    args = sys.argv[1:]
    if len(args) >= 2 and args[0] == "-n":
        n = int(args[1])
        args = args[2:]
    base = args[0] if args else None
    d = tempfile.mkdtemp(prefix="bench-handoff-py.", dir=base)
    print(f"Python filelock {filelock.__version__} hand-off, {n} per class, waiter timeout 60 s")
    print(f"  {'kind':<11} {'median':>9} {'p99':>9}")
    for name, make, acq, rel in classes():
        med, p99 = handoff(name, make, acq, rel, os.path.join(d, name + ".lock"), n)
        print(f"  {name:<11} {med:7.3f}ms {p99:7.3f}ms", flush=True)
    os.system(f"rm -rf '{d}'")


if __name__ == "__main__":
    main()
