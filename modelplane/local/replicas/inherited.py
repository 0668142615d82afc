"""What a restart in place (`exec`, the same process id) carries over: descriptors kept open across it
(`kept_across_exec`, taken back with `adopted_socket`), and the children the previous program started, still this process's children but
known to no asyncio object.

`InheritedChild` gives such a child what the supervisor uses of an asyncio subprocess (`pid`,
`returncode`, `wait()`, `terminate()`), waiting on a pidfd so that nothing polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket


class InheritedChild:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._exited = asyncio.Event()
        loop = asyncio.get_running_loop()
        try:
            self._pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            self._pidfd = None
            self._reap()
            return
        loop.add_reader(self._pidfd, self._on_exit)

    async def wait(self) -> int:
        await self._exited.wait()
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def _on_exit(self) -> None:
        asyncio.get_running_loop().remove_reader(self._pidfd)
        os.close(self._pidfd)
        self._reap()

    def _reap(self) -> None:
        try:
            _, status = os.waitpid(self.pid, 0)
            self.returncode = os.waitstatus_to_exitcode(status)
        except ChildProcessError:  # not ours after all, or reaped already
            self.returncode = -1
        self._exited.set()


def kept_across_exec(sock: socket.socket) -> int:
    """A copy of the socket's descriptor that the program `exec` runs next keeps open."""
    fd = os.dup(sock.fileno())
    os.set_inheritable(fd, True)
    return fd


def adopted_socket(fd: int) -> socket.socket:
    """The socket of a descriptor `kept_across_exec` handed over, no longer inherited: uvloop's
    subprocesses keep every inheritable descriptor open (it ignores `close_fds`), so a replica started
    later would hold the platform's listening sockets (and be seen listening on their ports)."""
    sock = socket.socket(fileno=fd)
    sock.set_inheritable(False)
    return sock
