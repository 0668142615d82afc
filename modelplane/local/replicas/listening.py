"""Where a replica's processes listen, read from /proc: why a replica that is not ready may never be.

A program not built on modelplane or KServe's SDK may ignore the port it is given (`$PORT`,
`--http_port`) and listen where it would in a pod (8080), or listen on its port at an address the
platform does not reach (`::1` only, while probes and requests go to 127.0.0.1). While a replica is not
ready, `PortCheck` looks now and then at the TCP ports that its process and the processes under it
listen on, and says so when none of them is its port at 127.0.0.1. Linux only: elsewhere it says nothing.
"""

from __future__ import annotations

import os
import re
import socket
import sys
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from modelplane.local.replicas.memory_watch import descendants

_PROC = Path("/proc")
_TCP_LISTEN = "0A"  # the state column of /proc/net/tcp
_SOCKET_LINK = re.compile(r"socket:\[(\d+)\]")
REACHED_AT = "127.0.0.1"  # where the platform probes a replica and sends it requests
# Addresses at which a listener takes connections to 127.0.0.1 (`::` does unless it is IPv6-only,
# which Linux sockets are not by default).
_TAKES_LOOPBACK = frozenset({"127.0.0.1", "0.0.0.0", "::", "::ffff:127.0.0.1"})
_NAMED_AT_MOST = 5  # listeners a reason names; more are counted

FIRST_LOOK = 1.0  # seconds after its readiness probes begin; a warm replica is usually ready well before
LONGEST_WAIT = 10.0  # between two looks, however long the replica takes to load


@dataclass(frozen=True)
class Listener:
    host: str
    port: int

    @property
    def shown_host(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host

    def __str__(self) -> str:
        return f"{self.shown_host}:{self.port}"


class PortCheck:
    """Why a replica that is not ready is not reached where it listens, looked for 1 s after its
    readiness probes begin and then at growing intervals, so that one that takes long to load costs
    little."""

    def __init__(
        self,
        pid: int,
        port: int,
        ports_of_its_own: Collection[int],
        given_in: Sequence[str],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pid = pid
        self._port = port
        self._ports_of_its_own = ports_of_its_own
        self._given_in = given_in
        self._clock = clock
        self._possible = can_look()
        self._wait = FIRST_LOOK
        self._due = clock() + FIRST_LOOK
        self.reason: str | None = None

    def look(self) -> str | None:
        """The reason, looked for again when it is due, else the one found last."""
        now = self._clock()
        if not self._possible or now < self._due:
            return self.reason
        self._wait = min(self._wait * 2, LONGEST_WAIT)
        self._due = now + self._wait
        self.reason = not_reached_reason(
            listeners(self._pid), self._port, self._ports_of_its_own, self._given_in
        )
        return self.reason


def can_look() -> bool:
    return (_PROC / "self" / "net" / "tcp").exists()


def not_reached_reason(
    found: Collection[Listener], port: int, ports_of_its_own: Collection[int], given_in: Sequence[str]
) -> str | None:
    """Why a program that listens at `found` is not reached on its `port` at 127.0.0.1; None when it is
    listening there, or nowhere yet. Its other ports (`ports_of_its_own`, its gRPC one) are not strays."""
    on_its_port = [listener for listener in found if listener.port == port]
    if any(listener.host in _TAKES_LOOPBACK for listener in on_its_port):
        return None
    reasons = []
    strays = sorted(
        (listener for listener in found if listener.port != port and listener.port not in ports_of_its_own),
        key=lambda listener: (listener.port, listener.host),
    )
    if strays:
        reasons.append(
            f"the program listens on {_named(strays)}, not on its port {port} (given in {' and '.join(given_in)})"
        )
    if on_its_port:
        hosts = " and ".join(sorted(listener.shown_host for listener in on_its_port))
        reasons.append(f"the program listens on its port {port} at {hosts} only, not at {REACHED_AT}")
    if not reasons:
        return None
    return "; ".join([*reasons, f"the platform probes it and sends it requests at {REACHED_AT}:{port}"])


def _named(found: Sequence[Listener]) -> str:
    named = [str(listener) for listener in found[:_NAMED_AT_MOST]]
    if len(found) > _NAMED_AT_MOST:
        named.append(f"{len(found) - _NAMED_AT_MOST} more")
    return named[0] if len(named) == 1 else f"{', '.join(named[:-1])} and {named[-1]}"


def port_given_in(argv: Sequence[str], port: int) -> tuple[str, ...]:
    """How a replica was told its port: `$PORT`, always, and the flags (or bare arguments) of its
    command line that hold it."""
    told = ["$PORT"]
    number = str(port)
    previous = ""
    for part in argv:
        flag, separator, value = part.partition("=")
        if separator and value == number and flag.startswith("-"):
            told.append(flag)
        elif part == number:
            told.append(previous if previous.startswith("-") else "its arguments")
        previous = part
    return tuple(dict.fromkeys(told))


def listeners(pid: int) -> set[Listener]:
    """The TCP addresses that process `pid` and the processes under it listen on (empty: none, or it is
    gone, or this system has no /proc)."""
    inodes: set[str] = set()
    for each in (pid, *descendants(pid)):
        inodes |= _socket_inodes(each)
    if not inodes:
        return set()
    return {listener for inode, listener in _listening(pid) if inode in inodes}


def _socket_inodes(pid: int) -> set[str]:
    folder = _PROC / str(pid) / "fd"
    try:
        names = os.listdir(folder)
    except OSError:
        return set()
    inodes = set()
    for name in names:
        try:
            match = _SOCKET_LINK.fullmatch(os.readlink(folder / name))
        except OSError:  # closed since it was listed
            continue
        if match:
            inodes.add(match[1])
    return inodes


def _listening(pid: int) -> list[tuple[str, Listener]]:
    """(inode, address) of every TCP socket that listens in the network namespace of process `pid`."""
    found = []
    for table in ("tcp", "tcp6"):
        try:
            lines = (_PROC / str(pid) / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == _TCP_LISTEN:
                found.append((fields[9], _address(fields[1])))
    return found


def _address(local: str) -> Listener:
    """`0100007F:1F90` (as /proc/net/tcp writes 127.0.0.1:8080): the address in 32-bit words of the
    machine's own byte order, and the port, in hexadecimal."""
    hex_host, _, hex_port = local.partition(":")
    raw = bytes.fromhex(hex_host)
    if sys.byteorder == "little":
        raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    family = socket.AF_INET if len(raw) == 4 else socket.AF_INET6
    return Listener(socket.inet_ntop(family, raw), int(hex_port, 16))
