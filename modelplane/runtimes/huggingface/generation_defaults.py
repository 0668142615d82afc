"""The sampling a model's creator recommends, read from its generation_config.json as vLLM reads it
(`--generation-config auto`, vLLM's default, and so KServe's for text generation).

Its `temperature`, `top_p`, `top_k`, `min_p` and `repetition_penalty` stand for those a request
leaves out, and its `max_new_tokens` for a chat's `max_tokens` (a completion's default stays 16, as in
vLLM). `do_sample` is not read (vLLM does not read it either): a recommended temperature samples.
A value out of its range is left out, with a warning. `--generation_config vllm` reads none.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

logger = logging.getLogger("modelplane.server")

FILE = "generation_config.json"
CHOICES = ("auto", "vllm")


def _valid(name: str, value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return False
    if name in ("top_k", "max_new_tokens") and not float(value).is_integer():
        return False
    return {
        "temperature": value >= 0,
        "top_p": 0 < value <= 1,
        "top_k": value >= -1,
        "min_p": 0 <= value <= 1,
        "repetition_penalty": value > 0,
        "max_new_tokens": value >= 1,
    }[name]


def read(folder: Path) -> dict[str, float]:
    """The defaults in `folder`'s generation_config.json, under the request fields' names."""
    try:
        config = json.loads((folder / FILE).read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        logger.warning("%s: %s is not read (%s); no sampling defaults from it", folder, FILE, exc)
        return {}
    if not isinstance(config, dict):
        return {}
    defaults: dict[str, float] = {}
    for name in ("temperature", "top_p", "top_k", "min_p", "repetition_penalty", "max_new_tokens"):
        value = config.get(name)
        if value is None:
            continue
        if not _valid(name, value):
            logger.warning("%s: %s's %s %r is out of range; it is not used", folder, FILE, name, value)
            continue
        if name == "max_new_tokens":
            defaults["max_tokens"] = int(value)
        elif name == "top_k":
            defaults["top_k"] = max(int(value), 0)  # -1 and 0 both mean every token
        else:
            defaults[name] = float(value)
    if defaults:
        logger.info(
            "%s: sampling defaults from its %s (a request's own values win; "
            "--generation_config vllm leaves them out): %s",
            folder,
            FILE,
            ", ".join(f"{name} {value}" for name, value in defaults.items()),
        )
    return defaults
