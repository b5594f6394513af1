# SPDX-License-Identifier: MIT
"""h5py on a simulated host (hdf5.sh): HDF5 takes flock(LOCK_NB) once per
open and fails the open when the lock is busy.

  h5-worker.py hold r|r+ PATH    open, print "ready", wait for a line on
                                  stdin (or EOF), close
  h5-worker.py read PATH          open read-only and print c[0]; exit 1 with
                                  "locked" when the lock is busy
  h5-worker.py rmw PATH N LOG     N read-modify-write cycles of c[0], each a
                                  new open, retrying an open refused by the
                                  lock; enter/exit stamps (CLOCK_MONOTONIC ns)
                                  go to LOG; prints "done TRIES"
"""
import sys
import time

import h5py


def locked(err):
    return "unable to lock file" in str(err) or "lock" in str(err).lower()


def main():
    cmd = sys.argv[1]
    if cmd == "hold":
        with h5py.File(sys.argv[3], sys.argv[2]):
            print("ready", flush=True)
            sys.stdin.readline()
        print("closed", flush=True)
        return 0
    if cmd == "read":
        try:
            with h5py.File(sys.argv[2], "r") as f:
                print(int(f["c"][0]), flush=True)
        except OSError as err:
            if locked(err):
                print("locked", flush=True)
                return 1
            raise
        return 0
    if cmd == "rmw":
        path, n, log = sys.argv[2], int(sys.argv[3]), sys.argv[4]
        tries = 0
        with open(log, "a", buffering=1) as lg:
            for _ in range(n):
                while True:
                    tries += 1
                    try:
                        f = h5py.File(path, "r+")
                    except OSError as err:
                        if not locked(err):
                            raise
                        time.sleep(0.01)
                        continue
                    break
                with f:
                    lg.write("enter %d\n" % time.clock_gettime_ns(time.CLOCK_MONOTONIC))
                    f["c"][0] = f["c"][0] + 1
                    f.flush()
                    lg.write("exit %d\n" % time.clock_gettime_ns(time.CLOCK_MONOTONIC))
        print("done %d" % tries, flush=True)
        return 0
    print("usage: h5-worker.py hold|read|rmw ...", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
