"""The folder `mlserver start` serves, for the benchmarks that run MLServer as the peer: its
settings.json (ports, in-process or one inference worker) and one model's model-settings.json."""

from __future__ import annotations

import json
from pathlib import Path

from harness import free_port


def write_mlserver_home(
    home: Path, model: str, implementation: str, uri: str, http_port: int, grpc_port: int, *, workers: int
) -> int:
    """Writes `home` (emptied first by the caller) for one model; returns the metrics port it gave
    MLServer. `workers` is MLServer's parallel_workers: 0 serves in the server's own process."""
    (home / model).mkdir(parents=True)
    metrics_port = free_port()
    settings = {
        "http_port": http_port,
        "grpc_port": grpc_port,
        "metrics_port": metrics_port,
        "host": "127.0.0.1",
        "debug": False,
        "parallel_workers": workers,
        "metrics_dir": str(home / ".metrics"),
        "environments_dir": str(home / ".envs"),
    }
    (home / "settings.json").write_text(json.dumps(settings, indent=1))
    model_settings = {"name": model, "implementation": implementation, "parameters": {"uri": uri}}
    (home / model / "model-settings.json").write_text(json.dumps(model_settings, indent=1))
    return metrics_port
