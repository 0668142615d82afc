"""KServe's `kserve.logging`, for programs written with it: `logger` and `configure_logging`."""

from __future__ import annotations

import json
import logging
import logging.config
from typing import Any

logger = logging.getLogger("modelplane.server")


def configure_logging(log_config: dict[str, Any] | str | None = None) -> None:
    """Without a config, the server's own log format; else a `logging.config` dict, or the path of one
    written as JSON or YAML, or of a `fileConfig` file, as KServe's takes it."""
    if log_config is None:
        from modelplane.server.model_server import configure_logging as configure_server_logging

        configure_server_logging()
    elif isinstance(log_config, dict):
        logging.config.dictConfig(log_config)
    elif log_config.endswith(".json"):
        with open(log_config) as file:
            logging.config.dictConfig(json.load(file))
    elif log_config.endswith((".yaml", ".yml")):
        import yaml

        with open(log_config) as file:
            logging.config.dictConfig(yaml.safe_load(file))
    else:
        logging.config.fileConfig(log_config, disable_existing_loggers=False)
