"""A server under test: started in a session of its own, polled until it answers, and stopped with every
process it started (a Java frontend's Python workers, a server's worker processes)."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness import log


def http_request(
    port: int, method: str, path: str, body: bytes | None = None, content_type: str = "application/json"
) -> tuple[int, bytes]:
    """One request on a fresh connection to 127.0.0.1:port; (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        headers = {"content-type": content_type} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _group_stats(pgid: int):
    """(pid, its /proc stat fields after "pid (comm) ", its comm) for each live process of a group."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # state ppid pgrp ...
        if int(fields[2]) == pgid:
            yield entry, fields, stat[stat.index("(") + 1 : stat.rindex(")")]


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU time so far of every live process in a process group (threads included)."""
    ticks = sum(int(fields[11]) + int(fields[12]) for _, fields, _ in _group_stats(pgid))  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def group_peak_rss_mib(pgid: int) -> float:
    """The peak resident memory (VmHWM) of each live process of a process group, summed, in MiB: for one
    process its peak; for several, at most the sum of their peaks (which need not have come together)."""
    kib = 0
    for pid, _, _ in _group_stats(pgid):
        try:
            with open(f"/proc/{pid}/status") as f:
                kib += next((int(line.split()[1]) for line in f if line.startswith("VmHWM:")), 0)
        except (OSError, ValueError):
            continue
    return kib / 1024


def group_commands(pgid: int) -> list[str]:
    """The command names of the live processes of a process group."""
    return [comm for _, _, comm in _group_stats(pgid)]


@dataclass
class ServerProcess:
    """`argv` run in `cwd` with `env`, its output in `logfile`; ready when every (port, path) of `ready`
    answers 200 to a GET."""

    name: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    logfile: Path
    ready: list[tuple[int, str]]
    ports: list[int] = field(default_factory=list)
    stop_signal: int = signal.SIGTERM
    proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.logfile.parent.mkdir(parents=True, exist_ok=True)
        with open(self.logfile, "wb") as out:
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopped with every child it starts
            )

    @property
    def pgid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def wait_ready(self, timeout: float = 240.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.logfile}")
            try:
                if all(http_request(port, "GET", path)[0] == 200 for port, path in self.ready):
                    return
            except OSError:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f} s; see {self.logfile}")

    def stop(self, timeout: float = 30.0) -> None:
        """Stops the whole process group and waits until none of its processes and ports is left."""
        if self.proc is None:
            return
        pgid = self.pgid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, self.stop_signal)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log(f"WARNING: {self.name} did not stop on {signal.Signals(self.stop_signal).name}; killing it")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            self.proc.wait(10)
        deadline = time.monotonic() + timeout
        while group_commands(pgid):
            if time.monotonic() > deadline:
                log(f"WARNING: {self.name} left {group_commands(pgid)} behind; killing the group")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGKILL)
                time.sleep(1)
                break
            time.sleep(0.1)
        if group_commands(pgid):
            raise RuntimeError(f"{self.name}: processes {group_commands(pgid)} survived SIGKILL")
        self.proc = None
        for port in self.ports:
            deadline = time.monotonic() + 10
            while not port_is_free(port) and time.monotonic() < deadline:
                time.sleep(0.2)
