# SPDX-License-Identifier: MIT
"""Python side of the soft-rw interop tests: drives filelock.SoftReadWriteLock.

  softrw_peer.py hold read|write PATH HB STALE   print "ready <pid>", wait for a
                                                 line on stdin, release, print
                                                 "released"
  softrw_peer.py try read|write PATH HB STALE T  exit 0 acquired (and released),
                                                 1 on Timeout
  softrw_peer.py count PATH COUNTER M HB STALE   M locked increments of COUNTER;
                                                 exit 5 if another holder was
                                                 inside at the same time
"""

import os
import sys

from filelock import SoftReadWriteLock, Timeout


def make(path, hb, stale):
    return SoftReadWriteLock(
        path,
        is_singleton=False,
        heartbeat_interval=float(hb),
        stale_threshold=float(stale),
        poll_interval=0.01,
    )


def acquire(lock, mode, timeout):
    if mode == "read":
        lock.acquire_read(timeout=timeout)
    else:
        lock.acquire_write(timeout=timeout)


def main(argv):
    cmd = argv[1]
    if cmd == "hold":
        mode, path, hb, stale = argv[2:6]
        lock = make(path, hb, stale)
        acquire(lock, mode, 10)
        print(f"ready {os.getpid()}", flush=True)
        sys.stdin.readline()
        lock.release()
        print("released", flush=True)
        return 0
    if cmd == "try":
        mode, path, hb, stale, timeout = argv[2:7]
        lock = make(path, hb, stale)
        try:
            acquire(lock, mode, float(timeout))
        except Timeout:
            return 1
        lock.release()
        return 0
    if cmd == "count":
        path, counter, m, hb, stale = argv[2:7]
        lock = make(path, hb, stale)
        flag = os.path.join(os.path.dirname(counter), "inside")
        for _ in range(int(m)):
            acquire(lock, "write", 30)
            try:
                fd = os.open(flag, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            except FileExistsError:
                return 5
            os.close(fd)
            try:
                with open(counter) as f:
                    value = int(f.read().strip() or 0)
            except FileNotFoundError:
                value = 0
            with open(counter, "w") as f:
                f.write(f"{value + 1}\n")
            os.unlink(flag)
            lock.release()
        return 0
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv))
