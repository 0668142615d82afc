"""KServe's model server flags, for programs written with KServe's SDK.

Such a program builds its parser on KServe's (`argparse.ArgumentParser(parents=[model_server.parser])`)
and calls `ModelServer()` with no arguments, which then listens where the command line says
(`--http_port`, `--grpc_port`, `--workers`...), as KServe's does. KServe's platform, and modelplane's,
start a custom predictor or transformer with these flags.
"""

from __future__ import annotations

import argparse

from modelplane.server.predictor_config import PredictorConfig


def _strtobool(value: str) -> bool:
    lowered = value.lower()
    if lowered in ("y", "yes", "t", "true", "on", "1"):
        return True
    if lowered in ("n", "no", "f", "false", "off", "0"):
        return False
    raise argparse.ArgumentTypeError(f"invalid truth value {value!r}")


# allow_abbrev=False: the flags are read from any program's command line (`modelplane serve`'s among
# them), where a flag of the program's own must not be taken for the start of one of these.
parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
parser.add_argument("--http_port", default=8080, type=int)
parser.add_argument("--grpc_port", default=8081, type=int)
parser.add_argument("--workers", default=1, type=int)
parser.add_argument("--max_threads", default=4, type=int, help="accepted; gRPC runs on the event loop")
parser.add_argument("--max_asyncio_workers", default=None, type=int)
parser.add_argument("--enable_grpc", default=True, type=_strtobool)
parser.add_argument("--enable_docs_url", default=False, type=_strtobool, help="accepted; there is no /docs")
parser.add_argument("--enable_latency_logging", default=True, type=_strtobool, help="accepted; see /metrics")
parser.add_argument("--configure_logging", default=True, type=_strtobool)
parser.add_argument("--log_config_file", default=None, type=str)
parser.add_argument("--access_log_format", default=None, type=str, help="accepted; not used")
parser.add_argument("--event-loop", dest="event_loop", default="auto", choices=["auto", "asyncio", "uvloop"])
parser.add_argument("--timeout-keep-alive", dest="timeout_keep_alive", default=65, type=int)
parser.add_argument("--model_name", default="model", type=str)
parser.add_argument("--predictor_host", default=None, type=str)
parser.add_argument("--protocol", default="v1", choices=["v1", "v2", "grpc-v2"])
parser.add_argument("--predictor_protocol", default="v1", choices=["v1", "v2", "grpc-v2"])
parser.add_argument("--predictor_use_ssl", default=False, type=_strtobool)
parser.add_argument("--predictor_request_timeout_seconds", default=600, type=int)
parser.add_argument("--predictor_request_retries", default=0, type=int)
parser.add_argument("--enable_predictor_health_check", action="store_true")
# Unset: ModelServer's limit (64 MiB; KServe's is 8 MiB).
parser.add_argument("--grpc_max_send_message_length", default=None, type=int)
parser.add_argument("--grpc_max_receive_message_length", default=None, type=int)
parser.add_argument("--ssl_certfile", default=None, type=str)
parser.add_argument("--ssl_keyfile", default=None, type=str)


def command_line(argv: list[str] | None = None) -> argparse.Namespace:
    """KServe's flags as the command line gives them (the rest of it is left to the program)."""
    return parser.parse_known_args(argv)[0]


def defaults() -> argparse.Namespace:
    return command_line([])


def predictor_config_of(flags: argparse.Namespace) -> PredictorConfig | None:
    if not flags.predictor_host:
        return None
    return PredictorConfig(
        flags.predictor_host,
        # `--protocol` is KServe's older spelling, which its transformer samples still pass.
        flags.predictor_protocol if flags.predictor_protocol != "v1" else flags.protocol,
        flags.predictor_use_ssl,
        flags.predictor_request_timeout_seconds,
        flags.predictor_request_retries,
        flags.enable_predictor_health_check,
    )
