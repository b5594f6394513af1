# SPDX-License-Identifier: MIT
"""Python filelock peer driven by the interop tests through pipes.

    py-peer.py hold KIND PATH [DURATION]   acquire, print "ready PID", then obey stdin:
                                            "valid" -> "valid 0|1", "release" -> "released 0"
    py-peer.py try KIND PATH TIMEOUT [DURATION]
                                            one acquire with a timeout: "ok", "timeout",
                                            "mismatch" (LeaseSettingsMismatch) or "protocol"
    py-peer.py counter KIND PATH CTR N [DURATION]
                                            N locked increments of the number in CTR
    py-peer.py breakall PATH               force_break every strict claim, print "broken N"

KIND is "strict" or "lease".
"""
import os
import sys

from filelock import LeaseSettingsMismatch, SoftFileLease, SoftFileLockProtocolError, StrictSoftFileLock, Timeout


def make(kind, path, duration=None):
    if kind == "strict":
        return StrictSoftFileLock(path, poll_interval=0.005)
    return SoftFileLease(path, lease_duration=float(duration or 30.0), poll_interval=0.005)


def say(text):
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def main(argv):
    cmd = argv[1]
    if cmd == "hold":
        lock = make(argv[2], argv[3], argv[4] if len(argv) > 4 else None)
        lock.acquire()
        say(f"ready {os.getpid()}")
        for line in sys.stdin:
            if line.startswith("valid"):
                compromise = getattr(lock, "compromise", None)
                say(f"valid {0 if compromise is not None else 1}")
            elif line.startswith("release"):
                lock.release()
                say("released 0")
                return 0
        lock.release()
        return 0
    if cmd == "try":
        lock = make(argv[2], argv[3], argv[5] if len(argv) > 5 else None)
        try:
            lock.acquire(timeout=float(argv[4]))
        except Timeout:
            say("timeout")
            return 0
        except LeaseSettingsMismatch:
            say("mismatch")
            return 0
        except SoftFileLockProtocolError:
            say("protocol")
            return 0
        lock.release()
        say("ok")
        return 0
    if cmd == "counter":
        lock = make(argv[2], argv[3], argv[6] if len(argv) > 6 else None)
        ctr = argv[4]
        for _ in range(int(argv[5])):
            with lock:
                try:
                    with open(ctr) as f:
                        value = int(f.read() or 0)
                except FileNotFoundError:
                    value = 0
                with open(ctr, "w") as f:
                    f.write(f"{value + 1}\n")
        return 0
    if cmd == "breakall":
        lock = StrictSoftFileLock(argv[2])
        claims = lock.claims
        for claim in claims:
            lock.force_break(claim.name)
        say(f"broken {len(claims)}")
        return 0
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv))
