"""C and Python holders on the same lock paths exclude each other, recover
each other's dead holders, and write byte-identical markers.

Run by py-basic.sh with Debian's python3; the peer package comes from
FL_PEER_DIR.  Processes are synchronised through pipes only.
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.environ["FL_PEER_DIR"])
from filelock import FileLock, SoftFileLock, Timeout  # noqa: E402
from filelock._identity import host_name, process_start_token  # noqa: E402

HOLDER = os.environ["FL_HOLDER"]
PASSED = 0
FAILED = 0


def check(cond, what):
    global PASSED, FAILED
    if cond:
        PASSED += 1
        print("ok   ", what)
    else:
        FAILED += 1
        print("FAIL ", what)


def c_hold(kind, path, *extra):
    p = subprocess.Popen([HOLDER, "-t", kind, *extra, path], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    return p, p.stdout.readline().strip()


def py_hold(cls, path):
    """A Python holder in its own process: prints 'ready PID', holds until EOF."""
    code = (
        "import sys\n"
        f"sys.path.insert(0, {os.environ['FL_PEER_DIR']!r})\n"
        "import os, filelock\n"
        f"lk = filelock.{cls}({path!r})\n"
        "lk.acquire()\n"
        "print('ready', os.getpid(), flush=True)\n"
        "sys.stdin.read()\n"
        "lk.release()\n"
    )
    p = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    return p, p.stdout.readline().strip()


def py_times_out(cls, path, timeout=0.1):
    try:
        with cls(path, timeout=timeout):
            return False
    except Timeout:
        return True


def finish(p):
    p.stdin.close()
    return p.wait()


def kill(p):
    p.kill()
    p.wait()


def main():
    signal.alarm(100)
    d = tempfile.mkdtemp(prefix="fl-interop.")

    # 1. C soft holder: Python times out, the marker bytes are Python's.
    path = os.path.join(d, "soft-c.lock")
    p, line = c_hold("soft", path)
    check(line.startswith("ready "), "C soft holder ready")
    pid = int(line.split()[1])
    check(py_times_out(SoftFileLock, path), "Python SoftFileLock times out on a C holder")
    with open(path, "rb") as f:
        got = f.read()
    want = f"{pid}\n{host_name()}\n{process_start_token(pid)}\n".encode()
    check(got == want, f"C marker bytes equal Python's record ({got!r})")
    check(finish(p) == 0 and not os.path.exists(path), "C release removes the marker")

    # 2. Python soft holder: C times out and names the Python holder.
    path = os.path.join(d, "soft-py.lock")
    p, line = py_hold("SoftFileLock", path)
    pypid = int(line.split()[1])
    c, cline = c_hold("soft", path, "-w", "0.1")
    check(c.wait() == 1 and cline.startswith("error 110"), "C soft times out on a Python holder")
    check(f"held by pid {pypid} on {host_name()}" in cline, f"C names the Python holder: {cline}")
    c.stdin.close()
    check(finish(p) == 0, "Python holder released")

    # 3. Dead holders are recovered across implementations.
    path = os.path.join(d, "dead-c.lock")
    p, line = c_hold("soft", path)
    kill(p)
    check(os.path.exists(path), "SIGKILLed C holder left its marker")
    lk = SoftFileLock(path, timeout=5)
    lk.acquire()
    check(lk.is_locked, "Python recovers a dead C holder's marker")
    lk.release()
    path = os.path.join(d, "dead-py.lock")
    p, line = py_hold("SoftFileLock", path)
    kill(p)
    check(os.path.exists(path), "SIGKILLed Python holder left its marker")
    c, cline = c_hold("soft", path, "-w", "5")
    check(cline.startswith("ready"), "C recovers a dead Python holder's marker")
    finish(c)

    # 4. flock kinds: C unix/file vs Python FileLock, both directions.
    for kind in ("unix", "file"):
        path = os.path.join(d, f"flock-{kind}.lock")
        p, line = c_hold(kind, path)
        check(py_times_out(FileLock, path), f"Python FileLock times out on a C {kind} holder")
        finish(p)
        p, line = py_hold("FileLock", path)
        c, cline = c_hold(kind, path, "-w", "0.1")
        check(c.wait() == 1, f"C {kind} times out on a Python FileLock holder")
        finish(p)
        c, cline = c_hold(kind, path, "-w", "0")
        check(cline.startswith("ready"), f"C {kind} gets it after Python released")
        finish(c)
        check(os.path.exists(path), "flock lock files are never unlinked")

    shutil.rmtree(d, ignore_errors=True)
    print(f"{PASSED} passed, {FAILED} failed")
    sys.exit(1 if FAILED else 0)


if __name__ == "__main__":
    main()
