# SPDX-License-Identifier: MIT
"""py-lockf.py -- Python fcntl.lockf workers for tests/cluster/py-lockf.sh.

Every lock is fcntl.lockf on the byte range [START, START+LEN) of PATH
(LEN 0: from START to the end of the file), opened read-write.

  counter PATH M START LEN   after one byte on stdin (the go signal): M times
                             lock the range, add 1 to every 20-byte decimal
                             slot in it (one slot at START when LEN is 0),
                             unlock.  Prints "done".
  hold PATH START LEN DIR TAG
                             lock (blocking), print "held"; on a line on
                             stdin create DIR/TAG, unlock, print "released";
                             exit at EOF.
  try PATH START LEN         one LOCK_NB try: print "got" or "busy ERRNO".
  getlk PATH START LEN       F_GETLK for a write lock: "unlocked" or
                             "locked TYPE START LEN PID".
  wait PATH START LEN DIR    print "waiting", lock (blocking), print
                             "held" and the sorted names in DIR, unlock.
"""
import errno
import fcntl
import os
import struct
import sys

SLOT = 20
# struct flock on LP64 Linux: short type, short whence, off_t start, off_t len,
# pid_t pid (with the padding the C compiler puts in).
FLOCK = "hhxxxxqqixxxx"


def out(*words):
    sys.stdout.write(" ".join(str(w) for w in words) + "\n")
    sys.stdout.flush()


def lock(fd, op, start, length):
    fcntl.lockf(fd, op, length, start, os.SEEK_SET)


def slots(start, length):
    if length == 0:
        return [start]
    return list(range(start, start + length, SLOT))


def counter(path, m, start, length):
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    os.read(0, 1)
    for _ in range(m):
        lock(fd, fcntl.LOCK_EX, start, length)
        for s in slots(start, length):
            raw = os.pread(fd, SLOT, s).strip(b"\0 \n")
            v = int(raw) if raw else 0
            os.pwrite(fd, b"%19d\n" % (v + 1), s)
        lock(fd, fcntl.LOCK_UN, start, length)
    os.close(fd)
    out("done")


def hold(path, start, length, d, tag):
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    lock(fd, fcntl.LOCK_EX, start, length)
    out("held")
    sys.stdin.readline()
    os.close(os.open(os.path.join(d, tag), os.O_WRONLY | os.O_CREAT, 0o644))
    lock(fd, fcntl.LOCK_UN, start, length)
    out("released")
    sys.stdin.read()


def try_(path, start, length):
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        lock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, start, length)
    except OSError as e:
        if e.errno in (errno.EAGAIN, errno.EACCES):
            out("busy", errno.errorcode[e.errno])
            return
        raise
    out("got")


def getlk(path, start, length):
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    arg = struct.pack(FLOCK, fcntl.F_WRLCK, os.SEEK_SET, start, length, 0)
    typ, _, s, ln, pid = struct.unpack(FLOCK, fcntl.fcntl(fd, fcntl.F_GETLK, arg))
    if typ == fcntl.F_UNLCK:
        out("unlocked")
    else:
        out("locked", {fcntl.F_RDLCK: "R", fcntl.F_WRLCK: "W"}.get(typ, typ), s, ln, pid)


def wait(path, start, length, d):
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    out("waiting")
    lock(fd, fcntl.LOCK_EX, start, length)
    out("held", *sorted(os.listdir(d)))
    lock(fd, fcntl.LOCK_UN, start, length)


def main(argv):
    cmd, path = argv[1], argv[2]
    if cmd == "counter":
        counter(path, int(argv[3]), int(argv[4]), int(argv[5]))
    elif cmd == "hold":
        hold(path, int(argv[3]), int(argv[4]), argv[5], argv[6])
    elif cmd == "try":
        try_(path, int(argv[3]), int(argv[4]))
    elif cmd == "getlk":
        getlk(path, int(argv[3]), int(argv[4]))
    elif cmd == "wait":
        wait(path, int(argv[3]), int(argv[4]), argv[5])
    else:
        sys.exit("py-lockf.py: unknown command " + cmd)


if __name__ == "__main__":
    main(sys.argv)
