"""Warm starts: replicas of `modelplane serve` and `modelplane router` forked from a process that has
already imported them.

Starting `modelplane serve` spends most of its time importing (numpy, scikit-learn, grpc):
seconds on a busy machine, and a request that woke a revision at zero waits for all of it. So
`modelplane up` keeps one warm process, the zygote, that imports the model server and every runtime
library installed, then forks a replica whenever the supervisor asks. The replica only has to load
its model and open its ports.

The zygote talks to the platform over a socket pair, one JSON object per line:

    platform -> zygote   {"id": 1, "argv": [...], "env": {...}, "cwd": "...", "log": "..."}
    zygote -> platform   {"ready": true}                 once everything is imported
                         {"id": 1, "pid": 4242}          forked (or {"id": 1, "error": "..."})
                         {"exited": 4242, "code": 0}     a replica ended (its exit code, -N for signal N)

A platform restarting in place hands the channel to its next process: it sends {"handover": true},
the zygote answers the same and holds what it would send until {"resume": true} comes.

A forked replica leads a session of its own (so the supervisor signals its process group as for any
replica), writes to its log file, and gets SIGTERM if the zygote dies, as the zygote does if the
platform dies. Only `python -m modelplane serve ...` and `python -m modelplane router ...` are forked;
any other command starts as a process of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import importlib
import itertools
import json
import logging
import os
import runpy
import select
import signal
import socket
import sys
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path

import setproctitle

from modelplane.local.replicas.inherited import InheritedChild, adopted_socket, kept_across_exec

HANDOVER_TIMEOUT = 5.0  # seconds the zygote has to answer `handover`

logger = logging.getLogger("modelplane.zygote")

# What a replica of `modelplane serve` imports; the runtime libraries (and the scikit-learn modules
# models are most often pickled from) only when their extra is installed.
PRELOAD = (
    "modelplane.cli.serve",
    "modelplane.cli.router",
    "modelplane.server.model_server",
    "modelplane.server.rest",
    "modelplane.server.grpc_server",
    "modelplane.runtimes.detect",
    "modelplane.runtimes.custom",
    "modelplane.protocol.http_server",
)
PRELOAD_IF_INSTALLED = (
    "modelplane.runtimes.sklearn",
    "modelplane.runtimes.xgboost",
    "modelplane.runtimes.lightgbm",
    "numpy",
    "joblib",
    "sklearn.linear_model",
    "sklearn.ensemble",
    "sklearn.tree",
    "sklearn.svm",
    "sklearn.neighbors",
    "sklearn.pipeline",
    "sklearn.preprocessing",
    "xgboost",
    "lightgbm",
)

_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True) if sys.platform == "linux" else None


FORKED_COMMANDS = ("serve", "router")


def forkable(argv: list[str]) -> bool:
    """Whether the zygote can start this replica: `modelplane serve` (a model server) or `modelplane
    router` (an InferenceGraph's router) on this interpreter."""
    return argv[:3] == [sys.executable, "-m", "modelplane"] and argv[3:4] in ([c] for c in FORKED_COMMANDS)


# ---- the platform's side ----


class ForkedProcess:
    """A replica forked by the zygote; `pid`, `returncode` and `wait()` as an asyncio subprocess has."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._exited = asyncio.Event()

    async def wait(self) -> int:
        await self._exited.wait()
        return self.returncode

    def _ended(self, code: int) -> None:
        self.returncode = code
        self._exited.set()


class Zygote:
    """The warm process, seen from the platform's event loop. Until it is ready, or after it died,
    `spawn` returns None and the caller starts the replica as a process of its own."""

    def __init__(self, log_path: Path, env: Mapping[str, str] | None = None) -> None:
        self.log_path = log_path
        self.env = env  # the zygote's environment (default: the platform's)
        self._process: asyncio.subprocess.Process | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task | None = None
        self._ready = False
        self._ready_event = asyncio.Event()
        self._closing = False
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[ForkedProcess | None]] = {}
        self._children: dict[int, ForkedProcess] = {}
        self._handed_over = False

    @property
    def ready(self) -> bool:
        return self._ready

    async def start(self) -> None:
        """Starts the zygote; it becomes ready in the background once its imports are done."""
        ours, theirs = socket.socketpair()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log, theirs:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "modelplane.local.replicas.zygote",
                str(theirs.fileno()),
                pass_fds=[theirs.fileno()],
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=self.env,
                start_new_session=True,
                preexec_fn=dying_with_this_process(),
            )
        reader, self._writer = await asyncio.open_unix_connection(sock=ours)
        self._reader_task = asyncio.create_task(self._read(reader), name="zygote")

    async def hand_over(self) -> dict | None:
        """Leaves the zygote (and the replicas it forked) running for the platform's next process,
        which `inherit`s what this returns; None if it is not running."""
        process = self._process
        if self._writer is None or process is None or process.returncode is not None:
            return None
        self._writer.write(b'{"handover": true}\n')
        with contextlib.suppress(OSError):
            await self._writer.drain()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._reader_task), HANDOVER_TIMEOUT)
        if not self._handed_over:
            return None
        kept = kept_across_exec(self._writer.get_extra_info("socket"))
        self._writer.transport.abort()
        return {"pid": process.pid, "channel": kept, "ready": self._ready, "children": list(self._children)}

    async def inherit(self, state: dict) -> None:
        """Takes over the zygote a previous process handed over (`hand_over`)."""
        self._process = InheritedChild(state["pid"])
        reader, self._writer = await asyncio.open_unix_connection(sock=adopted_socket(state["channel"]))
        self._children = {pid: ForkedProcess(pid) for pid in state["children"]}
        self._ready = state["ready"]
        if self._ready:
            self._ready_event.set()
        self._reader_task = asyncio.create_task(self._read(reader), name="zygote")
        self._writer.write(b'{"resume": true}\n')

    def child(self, pid: int) -> ForkedProcess | None:
        return self._children.get(pid)

    async def wait_ready(self) -> bool:
        """Once started: waits until its imports are done (True) or it stopped (False)."""
        if self._reader_task is None:
            return False
        ready = asyncio.ensure_future(self._ready_event.wait())
        await asyncio.wait({ready, self._reader_task}, return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        return self._ready

    async def close(self) -> None:
        """Stops the zygote (the replicas it forked get SIGTERM too: stop them first)."""
        self._closing = True
        self._ready = False
        if self._writer is not None:
            self._writer.close()
        process = self._process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            await process.wait()
        if self._reader_task is not None:
            await asyncio.gather(self._reader_task, return_exceptions=True)

    async def spawn(
        self, argv: list[str], env: dict[str, str], log_path: Path, cwd: str | None = None
    ) -> ForkedProcess | None:
        """A replica forked from the zygote (in `cwd`, else the platform's folder), or None when the
        zygote cannot fork it."""
        if not self._ready or not forkable(argv):
            return None
        request_id = next(self._ids)
        request = {
            "id": request_id,
            "argv": argv,
            "env": env,
            "cwd": cwd or os.getcwd(),
            "log": str(log_path),
        }
        future = self._pending[request_id] = asyncio.get_running_loop().create_future()
        try:
            self._writer.write(json.dumps(request).encode() + b"\n")
            await self._writer.drain()
            return await future
        except OSError:
            return None
        finally:
            self._pending.pop(request_id, None)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while line := await reader.readline():
                message = json.loads(line)
                if message.get("handover"):
                    self._handed_over = True
                    return
                self._handle(message)
        finally:
            if not self._handed_over:
                self._lost()

    def _lost(self) -> None:
        """The zygote is gone: what waited on it is answered."""
        self._ready = False
        for future in self._pending.values():
            if not future.done():
                future.set_result(None)
        # The replicas it forked get SIGTERM now (their parent-death signal) and will exit.
        for child in self._children.values():
            child._ended(-signal.SIGTERM)
        self._children.clear()
        if not self._closing:
            logger.warning("the zygote stopped; replicas start cold until `modelplane up` restarts")

    def _handle(self, message: dict) -> None:
        if message.get("ready"):
            self._ready = True
            self._ready_event.set()
            logger.info("zygote ready: replicas of modelplane serve start warm")
        elif "exited" in message:
            child = self._children.pop(message["exited"], None)
            if child is not None:
                child._ended(message["code"])
        elif "id" in message:
            future = self._pending.get(message["id"])
            child = None
            if "pid" in message:
                child = self._children[message["pid"]] = ForkedProcess(message["pid"])
            else:
                logger.warning("the zygote could not fork a replica: %s", message.get("error"))
            if future is not None and not future.done():
                future.set_result(child)


def dying_with_this_process() -> Callable[[], None]:
    """A `preexec_fn` for a child that must not outlive this process, however it ends (SIGKILL
    included): the parent-death signal, and an exit at once if this process is already gone by the
    time the child asks for it (the signal would then never come)."""
    parent = os.getpid()

    def preexec() -> None:
        die_with_parent()
        if os.getppid() != parent:
            os._exit(1)

    return preexec


def die_with_parent() -> None:
    """SIGTERM when the parent process dies, however it dies (Linux's parent-death signal). Safe to
    call between fork and exec: the C library is found when this module is imported."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


# ---- the zygote's side ----


def main(channel_fd: int) -> None:
    # Set the title now, while the environment is untouched: this is what lets each replica set its own.
    setproctitle.setproctitle(f"{sys.executable} -m modelplane.local.replicas.zygote (warm replicas)")
    channel = socket.socket(fileno=channel_fd)
    for name in PRELOAD:
        importlib.import_module(name)
    for name in PRELOAD_IF_INSTALLED:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes the select below through the pipe
    _send(channel, {"ready": True})
    pending = b""
    while True:
        readable, _, _ = select.select([channel, wake_read], [], [])
        if wake_read in readable:
            with contextlib.suppress(BlockingIOError):
                while os.read(wake_read, 512):
                    pass
        _reap(channel)
        if channel in readable:
            data = channel.recv(1 << 20)
            if not data:
                return  # the platform is gone; the replicas get SIGTERM as the zygote exits
            pending += data
            *lines, pending = pending.split(b"\n")
            for line in lines:
                request = json.loads(line)
                if request.get("handover"):
                    _send(channel, {"handover": True})
                    _held.append([])
                elif request.get("resume"):
                    for message in _held.pop() if _held else ():
                        _send(channel, message)
                else:
                    _fork(channel, request, (wake_read, wake_write))


# While the platform hands the channel over to its next process: what it must still hear, sent on
# `resume` (a list inside a list, empty when nothing is held).
_held: list[list[dict]] = []


def _send(channel: socket.socket, message: dict) -> None:
    if _held:
        _held[-1].append(message)
    else:
        channel.sendall(json.dumps(message).encode() + b"\n")


def _reap(channel: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _send(channel, {"exited": pid, "code": os.waitstatus_to_exitcode(status)})


def _fork(channel: socket.socket, request: dict, wake_pipe: tuple[int, int]) -> None:
    zygote = os.getpid()  # read before the fork: the child may run only once the zygote is gone
    try:
        pid = os.fork()
    except OSError as exc:
        _send(channel, {"id": request["id"], "error": str(exc)})
        return
    if pid == 0:
        _become_replica(request, [channel.fileno(), *wake_pipe], zygote)
    _send(channel, {"id": request["id"], "pid": pid})


def _become_replica(request: dict, zygote_fds: list[int], zygote: int) -> None:
    """In the forked child of the process `zygote`: the replica's session, output, environment and
    command. Never returns."""
    code = 1
    try:
        os.setsid()
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, signal.SIG_DFL)
        die_with_parent()
        if os.getppid() != zygote:  # the zygote died before the parent-death signal was set
            os._exit(1)
        for fd in zygote_fds:
            os.close(fd)
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        os.close(devnull)
        sys.stdout = open(1, "w", buffering=1, encoding="utf-8", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", buffering=1, encoding="utf-8", closefd=False)  # noqa: SIM115
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        _, _, module, *arguments = request["argv"]  # python -m <module> ...
        sys.argv = [module, *arguments]
        # `ps` (and whoever looks for the replica by its command line) sees the replica's command.
        setproctitle.setproctitle(" ".join(request["argv"]))
        # What `python -m <module>` would run, in this warm process: the command is data here, as an
        # exec's would be, and the zygote depends on no command line code of its own.
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exc:
        code = 0 if exc.code is None else exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":
    die_with_parent()
    main(int(sys.argv[1]))
