"""A replica's lifecycle hooks, stop signal and grace period, as the kubelet runs a container's.

- `postStart` runs as soon as the replica's process starts, beside it. Until it completes the replica
  is not probed and gets no request; a hook that fails stops the process (and it is restarted as any
  exit is), the failure said in its log and status (`FailedPostStartHook`).
- `preStop` runs whenever the running replica is stopped (scaled down, replaced by a new revision,
  deleted, `modelplane up` stopping, or restarted for a failed probe or hook), before the stop signal. A hook that fails is said in the log, and the
  stop goes on.
- The stop signal is `lifecycle.stopSignal` (SIGTERM by default); the replica has the pod's
  `terminationGracePeriodSeconds` (the platform's stop grace when not set) for its `preStop` hook and
  its exit together, and is killed after that. Where the hook took it all, the process still gets 2
  seconds after the signal, as the kubelet gives it.

A handler is `exec` (its command runs on this machine with the replica's environment, and succeeds
with exit code 0), `httpGet` (to the replica's port: it succeeds with a status from 200 to 399) or
`sleep` (`seconds`). Kubernetes keeps `tcpSocket` for compatibility only and does not run it; neither
does modelplane (a warning on apply).
"""

from __future__ import annotations

import asyncio
import dataclasses
import signal
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import httpx

from modelplane.api.errors import FieldError
from modelplane.local.replicas.command import ReplicaPorts
from modelplane.local.replicas.container_probes import ProbeSpec, check, probe_spec

POST_START, PRE_STOP = "postStart", "preStop"
HANDLERS = ("exec", "httpGet", "sleep")
MIN_GRACE_AFTER_HOOK = 2.0  # seconds the process gets after the signal when its preStop hook used the rest
HOOK_TIMEOUT = 24 * 3600.0  # a postStart hook has no timeout of its own, as in Kubernetes


@dataclass(frozen=True)
class Hook:
    name: str  # postStart or preStop
    sleep: float | None = None  # a `sleep` handler: its seconds
    action: ProbeSpec | None = None  # any other handler

    def describe(self) -> str:
        return f"sleep {self.sleep:g}s" if self.sleep is not None else self.action.describe()

    async def run(self, timeout: float = HOOK_TIMEOUT) -> str | None:
        """None when the hook succeeded, else why it failed."""
        if self.sleep is not None:
            await asyncio.sleep(min(self.sleep, timeout))
            return None
        async with httpx.AsyncClient() as client:
            return await check(dataclasses.replace(self.action, timeout=timeout), client)


@dataclass(frozen=True)
class Lifecycle:
    post_start: Hook | None = None
    pre_stop: Hook | None = None
    stop_signal: signal.Signals = signal.SIGTERM
    grace: float | None = None  # terminationGracePeriodSeconds; None: the platform's


def replica_lifecycle(template: Mapping, ports: ReplicaPorts, env: Mapping[str, str]) -> Lifecycle:
    """The hooks, stop signal and grace period of a revision template, for a replica given `ports`."""
    declared = template.get("lifecycle") or {}
    hooks = {name: _hook(name, declared.get(name), template, ports, env) for name in (POST_START, PRE_STOP)}
    grace = template.get("terminationGracePeriodSeconds")
    return Lifecycle(
        hooks[POST_START],
        hooks[PRE_STOP],
        stop_signal(declared.get("stopSignal")) or signal.SIGTERM,
        float(grace) if grace is not None else None,
    )


def stop_signal(name: object) -> signal.Signals | None:
    """A stop signal as Kubernetes names it (`SIGINT`, `SIGUSR1`...); None for a name it is not."""
    if not isinstance(name, str) or not name.startswith("SIG"):
        return None
    return getattr(signal.Signals, name, None)


def lifecycle_errors(container: Mapping, path: str) -> Iterator[FieldError]:
    """A stop signal this system has no such signal for, as the API server refuses an unknown one."""
    lifecycle = container.get("lifecycle")
    named = lifecycle.get("stopSignal") if isinstance(lifecycle, Mapping) else None
    if named is not None and stop_signal(named) is None:
        yield FieldError(
            f"{path}.lifecycle.stopSignal",
            f'Unsupported value: "{named}": not a signal name (SIGTERM, SIGINT...)',
        )


def _hook(name: str, handler: object, template: Mapping, ports: ReplicaPorts, env: Mapping) -> Hook | None:
    if not isinstance(handler, Mapping):
        return None
    if isinstance(handler.get("sleep"), Mapping):
        return Hook(name, sleep=float(handler["sleep"].get("seconds") or 0))
    if isinstance(handler.get("exec"), Mapping) or isinstance(handler.get("httpGet"), Mapping):
        return Hook(name, action=probe_spec(name, handler, template, ports, env))
    return None  # tcpSocket, which Kubernetes does not run either
