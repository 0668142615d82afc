"""`modelplane up`: run the embedded platform in the foreground (API, reconciler, replicas, gateway)."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import NoReturn

from modelplane.cli.documents import DEFAULT_NAMESPACE
from modelplane.cli.main import CommandError
from modelplane.local.api.settings import DEFAULT_API_PORT, modelplane_home

HANDOVER_ENV = "MODELPLANE_HANDOVER"  # the file a restart in place (SIGHUP) left for the program it runs


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "up",
        help="run the platform in the foreground: control-plane API, reconciler, replicas and gateway",
        description="Run modelplane on this machine until Ctrl-C: the control-plane API, the reconciler "
        "that runs each InferenceService's replicas as local processes, and the gateway in front of them. "
        "State lives in MODELPLANE_HOME (default ~/.modelplane); every service comes back on the next start. "
        "SIGHUP restarts the control plane in place while the gateway and the replicas serve on.",
    )
    parser.add_argument(
        "-f", "--filename", action="append", default=[], help="apply FILE or DIR once up (repeatable)"
    )
    parser.add_argument("-R", "--recursive", action="store_true", help="with -f DIR: also its subfolders")
    parser.add_argument("--home", type=Path, default=None, help="state folder (default: MODELPLANE_HOME)")
    parser.add_argument(
        "--api-port", type=int, default=DEFAULT_API_PORT, help="control-plane API port (0: any)"
    )
    parser.add_argument("--gateway-port", type=int, default=8080, help="gateway port (0: any)")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address the API and the gateway listen on (default 127.0.0.1); any other needs "
        "--auth-token-file, or --insecure",
    )
    parser.add_argument(
        "--auth-token-file",
        metavar="FILE",
        default=None,
        help="require Authorization: Bearer <the token in FILE> on the control-plane API "
        "(clients send it with --token or MODELPLANE_TOKEN)",
    )
    parser.add_argument(
        "--gateway-auth",
        action="store_true",
        help="require the --auth-token-file token on the gateway too (REST: 401 without it; gRPC: "
        "UNAUTHENTICATED)",
    )
    parser.add_argument(
        "--tls-cert",
        metavar="FILE",
        type=Path,
        default=None,
        help="serve the control-plane API and the gateway over TLS (the gateway: HTTP/1.1, and HTTP/2 "
        "by ALPN for gRPC): the certificate (PEM)",
    )
    parser.add_argument(
        "--tls-key", metavar="FILE", type=Path, default=None, help="... and its private key (PEM)"
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="listen on a --host other than loopback with no token: anyone who reaches the API can run "
        "commands on this machine",
    )
    parser.add_argument("--domain", default="localhost", help="services are <name>.<namespace>.<domain>")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR (default: INFO)")
    parser.add_argument(
        "--no-warm-starts",
        dest="warm_starts",
        action="store_false",
        help="start every replica as a fresh process, instead of forking replicas of modelplane serve "
        "from a warm process that has imported the server and the runtimes",
    )
    parser.add_argument(
        "--gpus",
        default=os.environ.get("MODELPLANE_GPUS"),
        metavar="LIST",
        help="the GPUs replicas may be given, as CUDA_VISIBLE_DEVICES names them (0,1 or GPU-<uuid>,...), "
        "or none (default: $MODELPLANE_GPUS, else CUDA_VISIBLE_DEVICES, else what nvidia-smi lists)",
    )
    parser.add_argument(
        "--log-max-size",
        type=_size,
        default="64Mi",
        metavar="SIZE",
        help="a replica's log above this size (e.g. 64Mi, 1G) is copied to <log>.1 and emptied "
        "(default 64Mi)",
    )
    parser.add_argument(
        "--log-backups", type=int, default=3, metavar="N", help="rotated copies kept per log (default 3)"
    )
    parser.add_argument(
        "--gateway-workers",
        type=int,
        default=None,
        metavar="N",
        help="processes serving the gateway's port (default: half the cores, 1 to 8)",
    )
    scaling = parser.add_argument_group(
        "autoscaling (the platform-wide defaults of Knative's config-autoscaler)"
    )
    scaling.add_argument(
        "--scale-to-zero-grace-period",
        type=_duration,
        default="30s",
        metavar="DURATION",
        help="how long an idle revision with minReplicas 0 keeps its last replica (default 30s)",
    )
    scaling.add_argument(
        "--default-max-replicas",
        type=int,
        default=4,
        metavar="N",
        help="the maxReplicas of a component that sets none (default 4; 0: no bound, as Knative's default)",
    )
    scaling.add_argument(
        "--activator-timeout",
        type=_duration,
        default="60s",
        metavar="DURATION",
        help="how long a request waits in the gateway for a replica before a 503 (default 60s)",
    )
    scaling.add_argument(
        "--modelmesh-copy-grace-period",
        type=_duration,
        default="60s",
        metavar="DURATION",
        help="how long a ModelMesh model's load stays low before an extra copy of it is unloaded "
        "(default 60s)",
    )
    scaling.add_argument(
        "--modelmesh-scale-to-zero-grace-period",
        type=_duration,
        default="60s",
        metavar="DURATION",
        help="how long a ModelMesh runtime's pool keeps its replicas once no service uses it, as "
        "ModelMesh Serving's scaleToZero.gracePeriodSeconds (default 60s)",
    )
    scaling.add_argument(
        "--autoscaler-tick",
        type=_duration,
        default="2s",
        metavar="DURATION",
        help="how often the autoscaler decides (default 2s)",
    )
    scaling.add_argument(
        "--hpa-sync-period",
        type=_duration,
        default="15s",
        metavar="DURATION",
        help="how often replicas scaled on cpu or memory are measured and scaled, as the HPA "
        "controller's sync period (default 15s)",
    )
    parser.set_defaults(func=run)


def _duration(text: str) -> float:
    from modelplane.control.autoscaling_settings import parse_duration

    seconds = parse_duration(text)
    if seconds is None or seconds < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 30s, 2m or 1m30s")
    return seconds


def _size(text: str) -> int:
    from modelplane.api.quantity import parse_quantity

    size = parse_quantity(text)
    if size is None or size < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size such as 64Mi, 500M or 1G")
    return int(size)


def run(args: argparse.Namespace) -> int:
    import uvloop

    from modelplane.local.gateway.workers import default_workers
    from modelplane.local.platform import Platform, PlatformConfig, PlatformError

    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per readiness probe is noise
    if args.log_backups < 0:
        raise CommandError("--log-backups must be 0 or more")
    if args.gateway_workers is not None and args.gateway_workers < 1:
        raise CommandError(f"--gateway-workers must be at least 1, got {args.gateway_workers}")
    if args.default_max_replicas < 0:
        raise CommandError("--default-max-replicas must be 0 or more")
    token, tls = _security_settings(args)
    for secret, what in ((args.auth_token_file, "--auth-token-file"), (args.tls_key, "--tls-key")):
        _warn_if_others_can_read(secret, what)
    documents = _load(args.filename, args.recursive)
    home = (args.home or modelplane_home()).expanduser().resolve()
    # The storage initializer (model cache, pvc claims, credentials) and the replicas find the home here.
    os.environ["MODELPLANE_HOME"] = str(home)
    # The CLI's token, exported in the shell that runs `up` too, would reach every replica's environment
    # (and the logs of those that print it); replicas reach the gateway on a port that needs no token.
    os.environ.pop("MODELPLANE_TOKEN", None)
    config = PlatformConfig(
        home=home,
        api_port=args.api_port,
        gateway_port=args.gateway_port,
        domain=args.domain,
        scale_to_zero_grace_period=args.scale_to_zero_grace_period,
        default_max_replicas=args.default_max_replicas,
        modelmesh_copy_grace_period=args.modelmesh_copy_grace_period,
        modelmesh_scale_to_zero_grace_period=args.modelmesh_scale_to_zero_grace_period,
        gateway_workers=args.gateway_workers or default_workers(),
        activator_timeout=args.activator_timeout,
        autoscaler_tick=args.autoscaler_tick,
        hpa_sync_period=args.hpa_sync_period,
        warm_starts=args.warm_starts,
        log_max_bytes=args.log_max_size,
        log_backups=args.log_backups,
        gpus=args.gpus,
        host=args.host,
        auth_token=token,
        tls=tls,
        gateway_auth=args.gateway_auth,
    )

    def on_ready(addresses, store) -> None:
        print(f"modelplane is up: API {addresses.api_url}, gateway {addresses.gateway_url}", flush=True)
        if documents:
            _apply(store, documents)

    platform = Platform(config, _inherited(), restart_problem=lambda: _restart_problem(args))
    try:
        uvloop.run(platform.run(on_ready))
    except PlatformError as exc:
        raise CommandError(str(exc)) from None
    except OSError as exc:
        raise CommandError(f"cannot start: {exc}") from None
    if platform.handover is not None:
        _run_again(home, platform.handover)
    return 0


def _inherited() -> dict | None:
    """What `modelplane up`'s previous program handed over before it ran this one (SIGHUP)."""
    path = os.environ.pop(HANDOVER_ENV, None)
    if path is None:
        return None
    try:
        with open(path) as file:
            return json.load(file)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _run_again(home: Path, handover: dict) -> NoReturn:
    """Runs `modelplane up` again in this process, with the same arguments, taking the data plane
    back from `handover`."""
    path = home / "handover.json"
    path.write_text(json.dumps(handover))
    os.environ[HANDOVER_ENV] = str(path)
    sys.stdout.flush()
    sys.stderr.flush()
    # Ignored across exec until the program run again handles it: another SIGHUP meanwhile must not end
    # the process, which would take the data plane with it.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    os.execv(sys.executable, [sys.executable, "-m", "modelplane", *sys.argv[1:]])


def _security_settings(args: argparse.Namespace):
    """(token, TLS files) from the files the arguments name; CommandError if one cannot be used."""
    token = _token(args.auth_token_file)
    if args.gateway_auth and token is None:
        raise CommandError("--gateway-auth needs --auth-token-file FILE: the token the gateway asks for")
    tls = _tls(args.tls_cert, args.tls_key)
    _check_exposure(args.host, token, args.insecure)
    return token, tls


def _warn_if_others_can_read(path: str | Path | None, flag: str) -> None:
    """A secret's file that other users of the machine may read is said, as ssh says it of a key."""
    if path is None:
        return
    with contextlib.suppress(OSError):
        if os.stat(path).st_mode & 0o077:
            print(f"Warning: {flag} {path} may be read by other users: chmod 600 {path}", file=sys.stderr)


def _restart_problem(args: argparse.Namespace) -> str | None:
    """Why `modelplane up`, run again with the same arguments (SIGHUP), would stop at once, or None."""
    try:
        _security_settings(args)
        _documents(args.filename, args.recursive)  # applied again by the program run again
    except CommandError as exc:
        return str(exc)
    return None


def _token(path: str | None) -> str | None:
    from modelplane.local.api.auth import TokenFileError, read_token_file

    if path is None:
        return None
    try:
        return read_token_file(path)
    except TokenFileError as exc:
        raise CommandError(str(exc)) from None


def _tls(cert: Path | None, key: Path | None):
    from modelplane.local.tls import TLSConfigError, TLSFiles

    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise CommandError("give both --tls-cert and --tls-key")
    files = TLSFiles(cert, key)
    try:
        files.check()  # read now, so a bad file is one line here rather than a traceback later
    except TLSConfigError as exc:
        raise CommandError(str(exc)) from None
    return files


def _check_exposure(host: str, token: str | None, insecure: bool) -> None:
    """A ServingRuntime runs commands: the API is not offered beyond this machine without a token."""
    from modelplane.protocol.loopback import is_loopback

    if not is_loopback(host) and token is None and not insecure:
        raise CommandError(
            f"--host {host} would let anyone who reaches this machine use the control-plane API, which runs "
            "commands (a ServingRuntime's): give --auth-token-file FILE, or --insecure to do it anyway"
        )
    if insecure and (is_loopback(host) or token is not None):
        why = (
            "the API asks for the token" if token is not None else f"{host} is reached from this machine only"
        )
        print(f"Warning: --insecure changes nothing: {why}", file=sys.stderr)


def _load(paths: list[str], recursive: bool) -> list:
    from modelplane.cli.resources import print_apply_warnings, print_unhonored_warnings

    documents = _documents(paths, recursive)
    print_apply_warnings(documents)
    print_unhonored_warnings(documents)
    return documents


def _documents(paths: list[str], recursive: bool) -> list:
    """The documents of the `-f` files, placed in the default namespace where they name none;
    CommandError if one cannot be read or is not a kind modelplane serves."""
    from modelplane.api import LoadError, kind_of, load_path
    from modelplane.cli.documents import require_name

    found = []
    for path in paths:
        try:
            documents = load_path(path, recursive=recursive)
        except LoadError as exc:
            raise CommandError(str(exc)) from None
        for document in documents:
            require_name(document, "up -f")
            kind = kind_of(document.resource)
            if kind is None:
                raise CommandError(f"{document.where()}: modelplane does not serve this kind")
            if kind.namespaced:
                document.resource.setdefault("metadata", {}).setdefault("namespace", DEFAULT_NAMESPACE)
        found += documents
    return found


def _apply(store, documents: list) -> None:
    """Applies the `-f` documents, all or none, and says so as `modelplane apply` does."""
    from modelplane.cli.resources import object_name, refusal_place
    from modelplane.local.api.errors import ApiError

    try:
        applied = store.apply([document.resource for document in documents])
    except ApiError as exc:
        raise CommandError(f"{refusal_place(exc, documents)}{exc} (nothing was applied)") from None
    for item in applied:
        print(f"{object_name(item.object)} {item.action}", flush=True)
