# SPDX-License-Identifier: MIT
"""Python side of the filelock-rw/1 interop tests: drives Python filelock 4's
SoftReadWriteLock (the generation log).

  softrw4_peer.py hold read|write PATH HB STALE   print "ready <pid> <generation>",
                                                  wait for a line on stdin,
                                                  release, print "released"
  softrw4_peer.py try read|write PATH HB STALE T  exit 0 acquired (and released),
                                                  1 on Timeout, 3 on another error
                                                  (its message on stderr)
  softrw4_peer.py count PATH COUNTER M HB STALE FENCES
                                                  M locked increments of COUNTER,
                                                  appending "<generation> py" to
                                                  FENCES under the lock; exit 5 if
                                                  another holder was inside
  softrw4_peer.py host                            print host_name()
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
    if cmd == "host":
        from filelock._identity import host_name

        print(host_name())
        return 0
    if cmd == "hold":
        mode, path, hb, stale = argv[2:6]
        lock = make(path, hb, stale)
        acquire(lock, mode, 10)
        print(f"ready {os.getpid()} {lock.generation}", flush=True)
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
        except Exception as error:  # the refusal of a mixed deployment, for one
            print(f"{type(error).__name__}: {error}", file=sys.stderr)
            return 3
        lock.release()
        return 0
    if cmd == "count":
        path, counter, m, hb, stale, fences = argv[2:8]
        lock = make(path, hb, stale)
        flag = os.path.join(os.path.dirname(counter), "inside")
        for _ in range(int(m)):
            acquire(lock, "write", 30)
            try:
                fd = os.open(flag, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            except FileExistsError:
                return 5
            os.close(fd)
            with open(fences, "a") as f:
                f.write(f"{lock.generation} py\n")
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
