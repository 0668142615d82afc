"""The command line and environment of one replica, from its revision template.

A template speaks of a container: it listens on 8080 (and 8081 for gRPC), finds its model in
`/mnt/models`, and reaches its predictor at `<name>-predictor.<namespace>`. On one machine each
replica gets ports of its own, the folder the storage initializer fetched, and the gateway's address
for other components, so this module rewrites those values in the arguments and the environment. The
gateway's hosts are names under `localhost`, which a Python replica resolves by the platform's startup
hook (python_startup/sitecustomize.py, first on its PYTHONPATH) whatever the system's resolver knows.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from modelplane.control.image_args import Flag
from modelplane.local.replicas.container_env import expand
from modelplane.local.replicas.resources import replica_resources, resource_env, with_nthread

if TYPE_CHECKING:
    from modelplane.storage import Source

MODEL_MOUNT = "/mnt/models"
# First on every replica's PYTHONPATH: its sitecustomize resolves names under `localhost` to the loopback.
PYTHON_STARTUP = Path(__file__).with_name("python_startup")
# Flags whose value names another component's service: `<isvc>-<component>.<namespace>`.
_SERVICE_FLAGS = ("--predictor_host", "--predictor-host", "--explainer_host", "--explainer-host")
_GRPC_FLAGS = ("--grpc-port", "--grpc_port")
_HTTP_FLAGS = ("--http-port", "--http_port")
_USE_SSL_FLAG = (
    "--predictor_use_ssl"  # KServe's SDK: https (or a TLS gRPC channel) to the predictor and explainer
)
_PYTHON = re.compile(r"python(3(\.\d+)?)?")
# KServe's SDK, or modelplane's, whose ModelServer() reads the same flags.
_SDK_IMPORT = re.compile(
    rb"^[ \t]*(?:from[ \t]+kserve[ \t.]|import[ \t]+kserve\b"
    rb"|from[ \t]+modelplane\.server[ \t.]|import[ \t]+modelplane\.server\b|from[ \t]+modelplane[ \t]+import[ \t]+server\b)",
    re.MULTILINE,
)
# Flags of `modelplane serve` whose numbers are never ports, even when one reads 8080 or 8081.
_NUMBER_FLAGS = (
    "--max-batch-size",
    "--max-batchsize",
    "--max-latency",
    "--batch-timeout",
    "--max-iter",
    "--nb-classes",
)
_LOCALHOST_PORT = re.compile(r"\.localhost:\d+$")
# A Kubernetes Service by name, with the port 80 its Services listen on or none.
_SERVICE_NAME = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.svc(\.cluster\.local)?)?(:80)?$"
)
# A component's Service by its name alone, as a pod's resolver finds it in the pod's own namespace.
_BARE_COMPONENT = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?-(predictor|explainer|transformer)(:80)?$")
# A component's Service at another of its ports (its gRPC port, say): the gateway's port takes REST and
# gRPC alike.
_COMPONENT_PORT = re.compile(
    r"^(?P<service>[a-z0-9]([-a-z0-9]*[a-z0-9])?-(predictor|explainer|transformer))"
    r"(\.(?P<namespace>[a-z0-9]([-a-z0-9]*[a-z0-9])?)(\.svc(\.cluster\.local)?)?)?:[0-9]{1,5}$"
)


@dataclass(frozen=True)
class ReplicaPorts:
    http: int
    grpc: int


@dataclass(frozen=True)
class ModelMount:
    """Where a replica's model is: `folder` on this machine stands for `path` in the container."""

    folder: Path
    path: str = MODEL_MOUNT


@dataclass(frozen=True)
class Launch:
    argv: list[str]
    env: dict[str, str]
    cwd: str | None = None  # the container's `workingDir` where this machine has that folder
    notes: tuple[str, ...] = ()  # what the replica's log should say about how it was started
    mounts: tuple[ModelMount, ...] = ()  # the container paths its arguments and env had rewritten


def working_dir(template: dict, mounts: Sequence[ModelMount]) -> str | None:
    """The folder a replica starts in: the container's `workingDir` (its model's and volumes' paths
    standing for their folders here), where this machine has it; None otherwise (the platform's own)."""
    declared = template.get("workingDir")
    if not declared:
        return None
    folder = _with_mounts(str(declared), mounts)
    return folder if os.path.isdir(folder) else None


def replica_launch(
    template: dict,
    ports: ReplicaPorts,
    model: ModelMount | Path | None,
    *,
    domain: str,
    gateway_port: int,
    gpus: Sequence[str] = (),
    declared_env: Mapping[str, str] | None = None,
    volumes: Sequence[ModelMount] = (),
    knative_revision: str | None = None,
    namespace: str = "default",
) -> Launch:
    """The argv and the environment (on top of the platform's own) for one replica of `template`,
    which was given `gpus` (see `replicas/resources.py` for what its resources become). Its model's
    container path (`/mnt/models`) becomes the folder on this machine in its arguments and variables.
    `declared_env` is what the container's `envFrom` and `env` made (replicas/container_env.py); the
    command's `$(NAME)` references are expanded from the container's variables. Each of `volumes` (its
    volumeMounts, replicas/volumes.py) stands for its mount path as the model's folder does. Its
    `$(PORT)` is the replica's port; a revision of a Knative-mode service (`knative_revision`, its
    name) has Knative's `K_SERVICE`, `K_CONFIGURATION` and `K_REVISION` as well, as a pod has. A
    component's service named alone (`--predictor_host iris-predictor`) is the one in `namespace`, the
    replica's own."""
    model_mount = ModelMount(model) if isinstance(model, Path) else model
    mounts = [m for m in (model_mount, *volumes) if m is not None and m.path != "/"]
    container_env = {**template["env"], **(declared_env or {})}
    platform_env = {"PORT": str(ports.http), **_knative_env(knative_revision)}
    expanded_env = {**container_env, **platform_env}
    resources = replica_resources(template)
    container_ports = {
        str(template["ports"]["http"]): str(ports.http),
        str(template["ports"]["grpc"]): str(ports.grpc),
    }
    argv = []
    previous = ""
    services: list[tuple[str, str]] = []  # (the address on the gateway, as the flag named it)
    for part in template["command"]:
        part = _with_mounts(expand(part, expanded_env), mounts)
        if previous not in _NUMBER_FLAGS and not part.startswith(tuple(f + "=" for f in _NUMBER_FLAGS)):
            part = _with_ports(part, container_ports)
        if previous in _SERVICE_FLAGS:
            services.append((gateway_address(part, domain, gateway_port, namespace), part))
            part = services[-1][0]
        elif part.startswith(tuple(flag + "=" for flag in _SERVICE_FLAGS)):
            flag, _, value = part.partition("=")
            services.append((gateway_address(value, domain, gateway_port, namespace), value))
            part = f"{flag}={services[-1][0]}"
        argv.append(part)
        previous = part
    if speaks_modelplane_serve(argv) and not any(part.startswith(_GRPC_FLAGS) for part in argv):
        argv.append(f"--grpc-port={ports.grpc}")  # its own default, 8081, would clash between replicas
    if speaks_modelplane_serve(argv):
        argv = with_nthread(argv, resources)
    cwd = working_dir(template, mounts)
    argv, notes = _local_program(argv, cwd)
    argv, notes = _told_its_ports(argv, cwd, ports, notes)
    if not speaks_modelplane_serve(argv) and any(address != named for address, named in services):
        argv, notes = _plain_to_the_gateway(argv, notes)
    local_hosts = sorted(
        {address.rsplit(":", 1)[0] for address, _ in services if _LOCALHOST_PORT.search(address)}
    )
    if local_hosts and not speaks_modelplane_serve(argv) and not _runs_python(argv):
        notes = (*notes, _resolver_note(local_hosts))
    own_env = {name: _with_mounts(value, mounts) for name, value in container_env.items()}
    env = resource_env(resources, own_env, gpus)
    for name, port in (template.get("portEnv") or {}).items():  # a stock server told its ports by env
        env[name] = str(ports.http if port == "http" else ports.grpc)
    env.update(platform_env)
    env["PYTHONPATH"] = _python_path(env.get("PYTHONPATH", os.environ.get("PYTHONPATH", "")))
    env.setdefault("PYTHONUNBUFFERED", "1")
    return Launch(argv, env, cwd, notes, tuple(mounts))


def unmounted_path_hint(message: str, mounts: Sequence[ModelMount]) -> str | None:
    """What to tell a program that failed on a mount's container path (`/mnt/models`) this machine
    lacks: the path is rewritten where the container's arguments and env name it, not in its code."""
    for mount in mounts:
        if mount.path in message and not os.path.exists(mount.path):
            return (
                f"{mount.path} is {mount.folder} on this machine, given to the program where its "
                f"arguments or env name {mount.path} (as in --model_dir={mount.path}), not where its "
                "code does"
            )
    return None


def _python_path(inherited: str) -> str:
    """A replica's PYTHONPATH: the platform's startup hook, then what the replica would have had."""
    return os.pathsep.join(part for part in (str(PYTHON_STARTUP), inherited) if part)


def _resolver_note(hosts: Sequence[str]) -> str:
    """A Python program resolves names under `localhost` itself (python_startup/sitecustomize.py); another
    asks the system's resolver, which follows RFC 6761 (systemd-resolved, macOS) or does not (glibc alone)."""
    return (
        f"this program reaches {', '.join(hosts)} through the gateway on 127.0.0.1; where the system's "
        f"resolver does not resolve names under localhost, add `127.0.0.1 {' '.join(hosts)}` to /etc/hosts "
        "(a Python program needs no entry: modelplane's startup hook resolves them)"
    )


def _runs_python(argv: list[str]) -> bool:
    return bool(argv) and _PYTHON.fullmatch(Path(argv[0]).name) is not None


def _knative_env(revision: str | None) -> dict[str, str]:
    """What Knative adds to a revision's container: its service (`<isvc>-<component>`), configuration
    (the same name) and revision (`<isvc>-<component>-00001`)."""
    if revision is None:
        return {}
    service = revision.rsplit("-", 1)[0]
    return {"K_SERVICE": service, "K_CONFIGURATION": service, "K_REVISION": revision}


def gateway_address(value: str, domain: str, gateway_port: int, namespace: str = "default") -> str:
    """`iris-predictor.default` (a Kubernetes service name, or with its `:80`) ->
    `iris-predictor.default.<domain>:<port>`; a component's service named alone (`iris-predictor`) is
    `namespace`'s, as Kubernetes' DNS search path finds it from a pod there; a component's service at
    another port (`iris-predictor.default:8081`) is the gateway's port too; anything else (another
    host:port, a URL, a single name that is not a component's) stays as it is."""
    if _BARE_COMPONENT.match(value):
        return f"{value.removesuffix(':80')}.{namespace}.{domain}:{gateway_port}"
    component = _COMPONENT_PORT.match(value)
    if component:
        return f"{component['service']}.{component['namespace'] or namespace}.{domain}:{gateway_port}"
    if not _SERVICE_NAME.match(value):
        return value
    service, namespace = value.removesuffix(":80").split(".")[:2]
    return f"{service}.{namespace}.{domain}:{gateway_port}"


def _with_mounts(value: str, mounts: Sequence[ModelMount]) -> str:
    """`value` with each path into a mount (the longest mount path first, in one pass) pointing into its
    folder here. A path that names a file of this machine outside the mount's folder (a mount at
    `/work` and a program at `/work/app/main.py`) is left as it is."""
    found = sorted((m for m in mounts if m.path in value), key=lambda m: len(m.path), reverse=True)
    if not found:
        return value
    folders = {m.path: str(m.folder) for m in found}
    pattern = "|".join(re.escape(m.path) for m in found)

    def replaced(match: re.Match) -> str:
        path, rest = match.group(1), match.group(2) or ""
        local = folders[path] + rest
        if rest and os.path.exists(path + rest) and not os.path.exists(local):
            return match.group(0)
        return local

    return re.sub(f"({pattern})(/[^\\s:;,=\"']*)?(?![\\w.-])", replaced, value)


def _with_ports(part: str, container_ports: dict[str, str]) -> str:
    if part in container_ports:
        return container_ports[part]
    for separator in ("=", ":"):
        head, sep, tail = part.rpartition(separator)
        if sep and tail in container_ports and head.startswith("-"):
            return f"{head}{sep}{container_ports[tail]}"
    return part


def _local_program(argv: list[str], cwd: str | None) -> tuple[list[str], tuple[str, ...]]:
    """`modelplane ...` runs with the platform's own interpreter, so a replica uses the same installation
    as `modelplane up` whatever the PATH says; so does a bare `python`/`python3[.x]`, and an image's
    interpreter path this machine does not have. An interpreter path that is here (a virtualenv's)
    runs as written. The notes say when an interpreter was replaced."""
    if not argv:
        return argv, ()
    program = argv[0]
    if Path(program).name == "modelplane":
        return [sys.executable, "-m", "modelplane", *argv[1:]], ()
    if not _PYTHON.fullmatch(Path(program).name):
        return argv, ()
    if "/" not in program:
        note = f"{program} runs as the platform's interpreter, {sys.executable}"
    elif os.path.exists(os.path.join(cwd or os.getcwd(), program)):
        return argv, ()
    else:
        note = f"{program} is not on this machine: running the platform's interpreter, {sys.executable}"
    return [sys.executable, *argv[1:]], (note,)


def _told_its_ports(
    argv: list[str], cwd: str | None, ports: ReplicaPorts, notes: tuple[str, ...]
) -> tuple[list[str], tuple[str, ...]]:
    """A program written with KServe's SDK (or modelplane's `modelplane.server`, whose `ModelServer()`
    reads the same flags) listens on 8080 and 8081 unless told `--http_port` and
    `--grpc_port`, which KServe's controller does not pass a custom predictor (its pod's ports are its
    own). Told the replica's ports, each it was not told already, it listens where the platform looks
    for it; the SDK reads its flags with `parse_known_args`, so they trouble no flags of the program's
    own. (Its gRPC server binds with SO_REUSEPORT: left on 8081, every such program would share it.)"""
    if not _runs_python(argv) or speaks_modelplane_serve(argv):
        return argv, notes
    added = [
        f"{flag}={port}"
        for flag, spellings, port in (
            ("--http_port", _HTTP_FLAGS, ports.http),
            ("--grpc_port", _GRPC_FLAGS, ports.grpc),
        )
        if not any(part.startswith(spellings) for part in argv)
    ]
    if not added:
        return argv, notes
    script = _script_of(argv[1:], Path(cwd or os.getcwd()))
    if script is None or not _SDK_IMPORT.search(_head_of(script)):
        return argv, notes
    note = f"{script.name} uses KServe's SDK (or modelplane's): told the replica's ports ({' '.join(added)})"
    return [*argv, *added], (*notes, note)


def _plain_to_the_gateway(argv: list[str], notes: tuple[str, ...]) -> tuple[list[str], tuple[str, ...]]:
    """A transformer told `--predictor_use_ssl=true` would speak TLS to the gateway's plain loopback
    port, where its `--predictor_host` now points (in a cluster, TLS protects the hop between pods):
    it is told false, and its log says so."""
    argv = list(argv)
    for position, part in enumerate(argv):
        head, equals, value = part.partition("=")
        if head != _USE_SSL_FLAG:
            continue
        value_at = position if equals else position + 1
        if not equals:
            if value_at >= len(argv) or argv[value_at].startswith("-"):
                continue
            value = argv[value_at]
        if Flag(head, value, part).truth() is not True:
            continue
        argv[value_at] = f"{_USE_SSL_FLAG}=false" if equals else "false"
        notes = (
            *notes,
            f"{_USE_SSL_FLAG} {value}: the predictor is reached through the gateway on a plain loopback "
            f"port, so the program is told {_USE_SSL_FLAG}=false",
        )
    return argv, notes


def _script_of(args: list[str], cwd: Path) -> Path | None:
    """The file a Python command line runs: its script, or its `-m` module's file under `cwd`."""
    for index, part in enumerate(args):
        if part == "-c":  # a program given as text, no file
            return None
        if part == "-m" and index + 1 < len(args):
            module = cwd / args[index + 1].replace(".", "/")
            return next((p for p in (module.with_suffix(".py"), module / "__main__.py") if _is_file(p)), None)
        if not part.startswith("-"):
            path = cwd / part
            return path if _is_file(path) else None
    return None


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # a name too long to be a file's
        return False


def _head_of(script: Path) -> bytes:
    try:
        with open(script, "rb") as file:
            return file.read(256 * 1024)
    except OSError:
        return b""


def speaks_modelplane_serve(argv: list[str]) -> bool:
    """Whether a replica runs `modelplane serve` (which has a V2 readiness endpoint and a repository index)."""
    return "serve" in argv[:4] and any(part in ("modelplane", "-m") for part in argv[:3])


def runs_modelplane_server(argv: list[str]) -> bool:
    """Whether a replica runs one of modelplane's own servers (`serve`, `router`), which log no request
    of their readiness probe."""
    return any(name in argv[:4] for name in ("serve", "router")) and any(
        part in ("modelplane", "-m") for part in argv[:3]
    )


def fetch_environment(source: Source, credentials: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a `modelplane storage fetch <source.uri>` child: this process's, with the
    resolved config as `STORAGE_CONFIG` (overrides already applied), and the variables of the
    component's ServiceAccount credentials on top."""
    environment = {name: value for name, value in os.environ.items() if name != "STORAGE_OVERRIDE_CONFIG"}
    environment.update(credentials or {})
    environment["STORAGE_CONFIG"] = json.dumps(dict(source.config))
    return environment
