# SPDX-License-Identifier: MIT
# adopt-holder.py PATH fork|exec -- run under the shim by adopt.sh.
#
# Takes flock(LOCK_EX) on PATH, forks three children that exit at once, then
# a child that keeps the descriptor, and exits.  fd 3 (the "ready" pipe) is inherited by the child, which writes
# "child PID" on it and holds it until it exits, so the reader sees EOF only
# once both processes are gone.  The child waits for a line on stdin, then:
#   fork   closes the descriptor (its last close releases the lock), exits;
#   exec   has exec'd bash right after the fork, keeping the descriptor as
#          fd 9; bash reads the line and exits (exit(3), whose handlers
#          release the lock; dash would _exit, which runs none).
import fcntl
import os
import sys

path, how = sys.argv[1], sys.argv[2]
fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX)
ready = os.fdopen(3, "w")
# Short-lived children first: each adopts the lock in fork's handler and is
# gone at once; the records must still name the taker for the next one.
for i in range(3):
    p = os.fork()
    if p == 0:
        os._exit(0)
    os.waitpid(p, 0)
pid = os.fork()
if pid == 0:
    if how == "exec":
        os.dup2(fd, 9)  # inheritable
        os.execv("/bin/bash", ["bash", "-c", "echo child $$ >&3; read x; exit 0"])
    ready.write("child %d\n" % os.getpid())
    ready.flush()
    sys.stdin.readline()
    os.close(fd)
    os._exit(0)
# The parent: gone at once, through a normal exit (the shim's exit handler
# finds the description still open in the child and leaves the lock to it).
sys.exit(0)
