"""A ServingRuntime's (or ClusterServingRuntime's) status: whether its container runs on this machine, and how.

KServe leaves a runtime's status empty; modelplane says there what its image becomes here:

    status:
      conditions:
      - type: Ready                 # False: nothing runs here for any of its formats
        status: "True"
        reason: StockImage          # OwnCommand, or ImageNotServed when False
        message: "image kserve-sklearnserver:replace (KServe's sklearnserver): sklearn: modelplane serve --runtime=sklearn"
      - type: ArgumentsTranslated   # for a stock image only
        status: "False"
        reason: ArgumentsDropped
        message: "--enable_docs_url=true (modelplane serve has no Swagger UI at /docs)"

The runtime's container is read as it stands, before an InferenceService fills in its `{{.Name}}`-style
placeholders; each format it supports is tried in turn, as a server that serves several (Triton,
MLServer) runs differently for each.
"""

from __future__ import annotations

from collections.abc import Callable

from modelplane.api.constants import PREDICTOR_CONTAINER
from modelplane.control.images import (
    IMAGE_NOT_SERVED,
    ImageNotServed,
    LocalCommand,
    installed_here,
    local_command,
    stock_server,
)
from modelplane.control.status import with_transition_times

READY = "Ready"
ARGUMENTS_TRANSLATED = "ArgumentsTranslated"
OWN_COMMAND = "OwnCommand"
STOCK_IMAGE = "StockImage"
ARGUMENTS_DROPPED = "ArgumentsDropped"


def serving_runtime_status(
    runtime: dict,
    *,
    now: str,
    previous: dict | None = None,
    installed: Callable[[str], bool] = installed_here,
) -> dict:
    """The whole `status` of a runtime. Conditions that did not change keep their lastTransitionTime."""
    previous = previous or {}
    found = runtime_conditions(runtime, installed=installed)
    return {
        "observedGeneration": (runtime.get("metadata") or {}).get("generation"),
        "conditions": with_transition_times(found, previous.get("conditions") or [], now),
    }


def runtime_conditions(
    runtime: dict, *, installed: Callable[[str], bool] = installed_here
) -> dict[str, dict]:
    spec = runtime.get("spec") or {}
    containers = [c for c in spec.get("containers") or [] if isinstance(c, dict)]
    if not containers:
        return {READY: _condition("False", IMAGE_NOT_SERVED, "the runtime has no container")}
    container = next((c for c in containers if c.get("name") == PREDICTOR_CONTAINER), containers[0])
    formats = _format_names(spec) or [None]
    commands: dict[str | None, LocalCommand | None] = {}
    refusals: dict[str | None, ImageNotServed] = {}
    for model_format in formats:
        try:
            commands[model_format] = local_command(container, model_format, installed=installed)
        except ImageNotServed as exc:
            refusals[model_format] = exc
    if commands and all(command is None for command in commands.values()):
        program = " ".join(
            str(p) for p in [*(container.get("command") or []), *(container.get("args") or [])]
        )
        return {READY: _condition("True", OWN_COMMAND, f"runs its container's command: {program}")}
    server = stock_server(container.get("image"))
    title = f"image {container.get('image')} ({server.title if server else 'not a known one'})"
    not_served = _grouped({fmt: exc.short for fmt, exc in refusals.items()})
    if not commands:
        messages = {str(exc) for exc in refusals.values()}
        message = messages.pop() if len(messages) == 1 else f"{title}: not served: {not_served}"
        return {READY: _condition("False", IMAGE_NOT_SERVED, message)}
    served = {fmt: cmd for fmt, cmd in commands.items() if cmd is not None}
    message = f"{title}: {_grouped({fmt: cmd.server for fmt, cmd in served.items()})}"
    if refusals:
        message += f"; not served: {not_served}"
    notes = sorted({cmd.note for cmd in served.values() if cmd.note})
    if notes:
        message += f" ({'; '.join(notes)})"
    dropped = sorted({part for cmd in served.values() for part in cmd.dropped})
    return {
        READY: _condition("True", STOCK_IMAGE, message),
        ARGUMENTS_TRANSLATED: (
            _condition("False", ARGUMENTS_DROPPED, "; ".join(dropped))
            if dropped
            else _condition("True", "Translated", "every argument has a local counterpart")
        ),
    }


def _format_names(spec: dict) -> list[str]:
    names: list[str] = []
    for model_format in spec.get("supportedModelFormats") or []:
        name = model_format.get("name") if isinstance(model_format, dict) else None
        if name and name not in names:
            names.append(name)
    return names


def _grouped(by_format: dict[str | None, str]) -> str:
    """`sklearn, xgboost: modelplane serve ...; onnx: ...`: formats that run the same way together."""
    groups: dict[str, list[str]] = {}
    for model_format, text in by_format.items():
        groups.setdefault(text, []).append(model_format or "any format")
    return "; ".join(f"{', '.join(formats)}: {text}" for text, formats in groups.items())


def _condition(status: str, reason: str, message: str) -> dict:
    return {"status": status, "reason": reason, "message": message}
