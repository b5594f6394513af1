# SPDX-License-Identifier: MIT
"""Python peer for the cluster suites: the same jobs as fl-counter and
fl-holder, done with the Python filelock package (PYTHONPATH=$FL_PEER_DIR),
so that C and Python processes on different simulated hosts share one lock.

  py-worker.py counter KIND LOCK COUNTER ITERS WORK_US LOGPREFIX [key=value]...
      like fl-counter -L: exit 0 done, 2 lock error, 3 the lock was lost before
      a write (lease only: Python reports a lost lease through on_compromise)
  py-worker.py holder KIND LOCK [key=value]...
      like fl-holder: prints "ready PID" (or "error ..." and exit 1 on timeout),
      "compromised REASON" when a lease is lost, answers "valid", releases
      on "release" or EOF

Keys: timeout, poll_interval, lease_duration, heartbeat_interval,
stale_threshold (the same meaning as the C options).
"""

import os
import socket
import sys
import threading
import time

import filelock


def mono_ns():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


class Peer:
    def __init__(self, kind, path, opts):
        self.kind = kind
        self.lost = threading.Event()
        self.timeout = float(opts.get("timeout", -1))
        poll = float(opts.get("poll_interval", 0.05))
        self.poll = poll
        if kind == "soft":
            self.lk = filelock.SoftFileLock(path, timeout=self.timeout)
        elif kind == "strict":
            self.lk = filelock.StrictSoftFileLock(path, timeout=self.timeout)
        elif kind == "lease":
            dur = float(opts["lease_duration"])
            hb = float(opts.get("heartbeat_interval", dur / 3))
            self.lk = filelock.SoftFileLease(path, timeout=self.timeout, lease_duration=dur,
                                             heartbeat_interval=hb, on_compromise=self.on_lost)
        elif kind == "soft-rw":
            hb = float(opts["heartbeat_interval"])
            st = float(opts.get("stale_threshold", 3 * hb))
            self.lk = filelock.SoftReadWriteLock(path, timeout=self.timeout, heartbeat_interval=hb,
                                                 stale_threshold=st, poll_interval=poll,
                                                 is_singleton=False)
        else:
            raise SystemExit(f"py-worker: kind {kind} has no Python peer")

    def on_lost(self, why):
        self.lost.set()
        os.write(1, f"compromised {why.reason}\n".encode())

    def acquire(self):
        if self.kind == "soft-rw":
            self.lk.acquire_write(timeout=self.timeout)
        else:
            self.lk.acquire(timeout=self.timeout, poll_interval=self.poll)

    def release(self):
        if self.kind == "soft-rw":
            self.lk.release(force=True)
        else:
            self.lk.release(force=True)

    def valid(self):
        return not self.lost.is_set()


def parse(kvs):
    out = {}
    for kv in kvs:
        k, _, v = kv.partition("=")
        out[k] = v
    return out


def counter(kind, lock, path, iters, work_us, prefix, opts):
    peer = Peer(kind, lock, parse(opts))
    log = open(f"{prefix}.{socket.gethostname()}.{os.getpid()}", "w", encoding="ascii")
    log.write(f"begin {mono_ns()}\n")
    log.flush()
    for _ in range(int(iters)):
        try:
            peer.acquire()
        except filelock.Timeout:
            print(f"py-worker: timeout on {lock}", file=sys.stderr)
            return 2
        log.write(f"enter {mono_ns()}\n")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        data = os.pread(fd, 64, 0)
        value = int(data) if data.strip() else 0
        if int(work_us) > 0:
            time.sleep(int(work_us) / 1e6)
        if not peer.valid():
            print("py-worker: lock lost before the write; update skipped", file=sys.stderr)
            return 3
        rec = f"{value + 1}\n".encode()
        os.pwrite(fd, rec, 0)
        os.ftruncate(fd, len(rec))
        os.close(fd)
        log.write(f"exit {mono_ns()}\n")
        log.flush()
        peer.release()
    log.close()
    return 0


def holder(kind, lock, opts):
    peer = Peer(kind, lock, parse(opts))
    try:
        peer.acquire()
    except filelock.Timeout:
        os.write(1, b"error 110 timeout\n")
        return 1
    os.write(1, f"ready {os.getpid()}\n".encode())
    for line in sys.stdin:
        if line.startswith("valid"):
            os.write(1, f"valid {int(peer.valid())}\n".encode())
        elif line.startswith("release"):
            peer.release()
            os.write(1, b"released 0\n")
            return 0
    peer.release()
    return 0


def main(argv):
    if len(argv) >= 8 and argv[1] == "counter":
        return counter(*argv[2:8], argv[8:])
    if len(argv) >= 4 and argv[1] == "holder":
        return holder(argv[2], argv[3], argv[4:])
    print(__doc__, file=sys.stderr)
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv))
