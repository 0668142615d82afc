"""A replica's startup, liveness and readiness probes, run as the kubelet runs them.

A container's `startupProbe`, `livenessProbe` and `readinessProbe` (httpGet, tcpSocket, grpc or exec, with
`initialDelaySeconds`, `periodSeconds`, `timeoutSeconds`, `successThreshold` and `failureThreshold`)
are checked against the replica's process:

- the startup probe first, every period from the initial delay until it succeeds; until then the
  replica is not probed for readiness and gets no request. `failureThreshold` failures in a row and
  the replica is restarted;
- then the liveness probe, every period for as long as the process runs: `failureThreshold` failures
  in a row and the replica is restarted (SIGTERM, SIGKILL after the probe's
  `terminationGracePeriodSeconds`, else the platform's stop grace), a hung server included;
- the readiness probe, where one is given with more than an HTTP path (the supervisor's own probe
  covers that case, `probe.py`): `successThreshold` successes in a row make the replica ready, and
  `failureThreshold` failures in a row take it out of the routes. It is probed every period once
  ready, and more often while it is not, so that a replica serves as soon as it can.

A probe's port is the container's: the port the replica serves HTTP on, or gRPC, stands for the one
the platform gave it; any other port is probed as it is. An exec probe runs its command on this
machine with the replica's environment, and succeeds with exit code 0. An httpGet probe succeeds
with a status from 200 to 399, a grpc probe when gRPC's health service answers SERVING.

    probes = replica_probes(template, ports, env)
    guard = asyncio.create_task(guard_liveness(process, probes, started, grace))  # why it killed, or None
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import grpc
import httpx

from modelplane.local.replicas.command import ReplicaPorts
from modelplane.local.replicas.memory_watch import Process
from modelplane.protocol.grpc import health
from modelplane.protocol.grpc.client import GrpcCallError, GrpcChannel

STARTUP, LIVENESS, READINESS = "startup", "liveness", "readiness"
ACTIONS = ("httpGet", "tcpSocket", "grpc", "exec")


@dataclass(frozen=True)
class ProbeSpec:
    """One probe, its port already the replica's."""

    kind: str  # "startup", "liveness" or "readiness"
    action: str  # "httpGet", "tcpSocket", "grpc" or "exec"
    port: int | str = 0  # a name no container port has stays a name, and fails
    path: str = "/"
    scheme: str = "http"
    host: str = "127.0.0.1"
    headers: tuple[tuple[str, str], ...] = ()
    command: tuple[str, ...] = ()
    service: str = ""  # of a gRPC probe: the name it asks the health service about
    env: Mapping[str, str] = field(default_factory=dict)
    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    failure_threshold: int = 3
    success_threshold: int = 1
    grace: float | None = None  # terminationGracePeriodSeconds of the probe

    def describe(self) -> str:
        if self.action == "httpGet":
            return f"GET {self.scheme}://{self.host}:{self.port}{self.path}"
        if self.action == "tcpSocket":
            return f"TCP {self.host}:{self.port}"
        if self.action == "grpc":
            return f"gRPC health {self.host}:{self.port}" + (f" {self.service}" if self.service else "")
        return f"exec {' '.join(self.command)}"


@dataclass(frozen=True)
class Probes:
    startup: ProbeSpec | None = None
    liveness: ProbeSpec | None = None
    readiness: ProbeSpec | None = None


class Readiness:
    """A readiness probe's verdict, kept across probes: it changes after `successThreshold` successes in
    a row (to ready) or `failureThreshold` failures in a row (to not ready)."""

    def __init__(self, spec: ProbeSpec) -> None:
        self.spec = spec
        self.ready = False
        self._streak = 0  # probes in a row that disagree with the verdict

    async def probe(self, client: httpx.AsyncClient) -> bool:
        passed = await check(self.spec, client) is None
        if passed == self.ready:
            self._streak = 0
            return self.ready
        self._streak += 1
        if self._streak >= (self.spec.failure_threshold if self.ready else self.spec.success_threshold):
            self.ready, self._streak = passed, 0
        return self.ready


def replica_probes(template: Mapping, ports: ReplicaPorts, env: Mapping[str, str] | None = None) -> Probes:
    """The probes of a revision template, for a replica given `ports`."""
    specs = {}
    for kind in (STARTUP, LIVENESS, READINESS):
        probe = template.get(f"{kind}Probe")
        runnable = isinstance(probe, Mapping) and any(action in probe for action in ACTIONS)
        specs[kind] = probe_spec(kind, probe, template, ports, env or {}) if runnable else None
    return Probes(specs[STARTUP], specs[LIVENESS], specs[READINESS])


async def guard_liveness(
    process: Process,
    probes: Probes,
    started: asyncio.Event,
    stop_grace: float,
    terminate: Callable[[float], Awaitable[None]] | None = None,
) -> str | None:
    """Runs `probes` on `process` until it ends; sets `started` once the startup probe passed (at once
    without one). Returns why it stopped the process, or None when the process ended otherwise. A
    failed probe stops the process with `terminate(grace)` (the replica's preStop hook and stop signal),
    else SIGTERM; SIGKILL after the probe's grace period, else `stop_grace`."""
    if terminate is None:
        terminate = functools.partial(stop, process)
    began = time.monotonic()
    async with httpx.AsyncClient() as client:
        if probes.startup is not None:
            why = await _failing(process, probes.startup, client, began, until_success=True)
            if why is not None:
                await terminate(probes.startup.grace or stop_grace)
                return why
        started.set()
        if probes.liveness is not None:
            why = await _failing(process, probes.liveness, client, began, until_success=False)
            if why is not None:
                await terminate(probes.liveness.grace or stop_grace)
                return why
    await process.wait()
    return None


async def check(spec: ProbeSpec, client: httpx.AsyncClient) -> str | None:
    """One probe: None when it succeeds, else what failed."""
    if spec.action != "exec" and not isinstance(spec.port, int):
        return f"{spec.describe()}: the container has no port named {spec.port}"
    try:
        if spec.action == "httpGet":
            url = f"{spec.scheme}://{spec.host}:{spec.port}{spec.path}"
            response = await client.get(url, headers=list(spec.headers), timeout=spec.timeout)
            if 200 <= response.status_code < 400:
                return None
            return f"HTTP probe failed with statuscode: {response.status_code}"
        if spec.action == "tcpSocket":
            _reader, writer = await asyncio.wait_for(
                asyncio.open_connection(spec.host, spec.port), spec.timeout
            )
            writer.close()
            return None
        if spec.action == "grpc":
            return await _grpc_health(spec)
        return await _exec(spec)
    except (TimeoutError, httpx.TimeoutException):
        return f"{spec.describe()}: timed out after {spec.timeout:g}s"
    except (OSError, httpx.HTTPError) as exc:
        return f"{spec.describe()}: {exc or type(exc).__name__}"


async def _grpc_health(spec: ProbeSpec) -> str | None:
    """gRPC's health service (`grpc.health.v1.Health/Check`), as the kubelet's gRPC probe calls it."""
    host = f"[{spec.host}]" if ":" in spec.host else spec.host
    channel = GrpcChannel(f"{host}:{spec.port}", f"{host}:{spec.port}")
    request = health.HealthCheckRequest(spec.service).SerializeToString()
    try:
        answer = await channel.unary(health.CHECK, request, timeout=spec.timeout)
    except GrpcCallError as exc:
        if exc.code == grpc.StatusCode.DEADLINE_EXCEEDED:
            raise TimeoutError from None
        return f"{spec.describe()}: {exc.code.name}: {exc.details}"
    finally:
        channel.close()
    status = health.HealthCheckResponse.FromString(answer).status
    if status == health.SERVING:
        return None
    return f"{spec.describe()}: {health.STATUS_NAMES.get(status, status)}"


async def _exec(spec: ProbeSpec) -> str | None:
    process = await asyncio.create_subprocess_exec(
        *spec.command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, **spec.env},
        start_new_session=True,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), spec.timeout)
    except BaseException:  # timed out, or cancelled (a hook whose replica ended first): none outlives it
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
        raise
    if process.returncode == 0:
        return None
    said = output.decode(errors="replace").strip().splitlines()
    return f"{spec.describe()}: exit code {process.returncode}" + (f": {said[-1]}" if said else "")


async def _failing(
    process: Process, spec: ProbeSpec, client: httpx.AsyncClient, began: float, *, until_success: bool
) -> str | None:
    """Probes every period from the initial delay (counted from the process's start); the last failure
    once `failureThreshold` came in a row, or None when the probe passed (`until_success`) or the
    process ended."""
    failures = 0
    wait = max(0.0, began + spec.initial_delay - time.monotonic())
    while await _running_after(process, wait):
        why = await check(spec, client)
        if why is None:
            failures = 0
            if until_success:
                return None
        else:
            failures += 1
            if failures >= spec.failure_threshold:
                return f"{spec.kind} probe failed {failures} times: {why}"
        wait = spec.period
    return None


async def _running_after(process: Process, seconds: float) -> bool:
    """Whether `process` still runs after `seconds`."""
    if process.returncode is None and seconds > 0:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), seconds)
    return process.returncode is None


async def stop(process: Process, grace: float, stop_signal: signal.Signals = signal.SIGTERM) -> None:
    """The stop signal to the process group, SIGKILL after `grace`, as the kubelet restarts a container."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, stop_signal)
    if not await _running_after(process, grace):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    await process.wait()


def probe_spec(kind: str, probe: Mapping, template: Mapping, ports: ReplicaPorts, env: Mapping) -> ProbeSpec:
    """A probe (or a lifecycle hook's handler), its port the replica's."""
    timing = {
        "kind": kind,
        "initial_delay": float(probe.get("initialDelaySeconds") or 0),
        "period": float(probe.get("periodSeconds") or 10),
        "timeout": float(probe.get("timeoutSeconds") or 1),
        "failure_threshold": int(probe.get("failureThreshold") or 3),
        "success_threshold": int(probe.get("successThreshold") or 1),
        "grace": float(probe["terminationGracePeriodSeconds"])
        if probe.get("terminationGracePeriodSeconds") is not None
        else None,
    }
    served = template.get("ports") or {}
    given = {served.get("http"): ports.http, served.get("grpc"): ports.grpc}
    if isinstance(probe.get("httpGet"), Mapping):
        action = probe["httpGet"]
        return ProbeSpec(
            action="httpGet",
            port=given.get(action.get("port"), action.get("port")),
            path=str(action.get("path") or "/"),
            scheme=str(action.get("scheme") or "HTTP").lower(),
            host=str(action.get("host") or "127.0.0.1"),
            headers=tuple(
                (str(h.get("name")), str(h.get("value", "")))
                for h in action.get("httpHeaders") or ()
                if isinstance(h, Mapping)
            ),
            **timing,
        )
    if isinstance(probe.get("tcpSocket"), Mapping):
        action = probe["tcpSocket"]
        port = given.get(action.get("port"), action.get("port"))
        return ProbeSpec(action="tcpSocket", port=port, host=str(action.get("host") or "127.0.0.1"), **timing)
    if isinstance(probe.get("grpc"), Mapping):
        action = probe["grpc"]
        port = given.get(action.get("port"), action.get("port"))
        return ProbeSpec(action="grpc", port=port, service=str(action.get("service") or ""), **timing)
    command = (probe.get("exec") or {}).get("command") or ()
    return ProbeSpec(action="exec", command=tuple(str(part) for part in command), env=env, **timing)
