"""The template of a ModelMesh pool's replicas, which serve every model format of their runtime.

A pool's replicas are rendered as a multi-model predictor of the runtime (`modelmesh.pool_service`),
for one of its formats: the first its image can serve. A stock image (MLServer, Triton, ...) that is
not installed here runs as `modelplane serve --runtime=<that format>`, which would load every model
with that format's runtime; so, for a runtime of several formats, the pool's `modelplane serve` finds
each model's framework from its files instead, as the built-in runtimes' pools do.
"""

from __future__ import annotations

from collections.abc import Sequence

from modelplane.api.runtime_selection import RuntimeSelectionError
from modelplane.control.modelmesh import PoolSpec, pool_service
from modelplane.control.revision_templates import revision_templates

_SERVE = ["modelplane", "serve"]
_RUNTIME_FLAG = "--runtime="


def pool_template(pool: PoolSpec, namespaced: Sequence[dict], cluster: Sequence[dict]) -> dict:
    """The predictor template of `pool`'s replicas. Raises the RuntimeSelectionError of its first
    format when none of its formats can be served."""
    first_error: RuntimeSelectionError | None = None
    for model_format in pool.formats or ("",):
        try:
            template = revision_templates(pool_service(pool, model_format), namespaced, cluster)["predictor"]
        except RuntimeSelectionError as exc:
            first_error = first_error or exc
            continue
        return _serving_every_format(template) if len(pool.formats) > 1 else template
    assert first_error is not None
    raise first_error


def _serving_every_format(template: dict) -> dict:
    command = template.get("command") or []
    if "image" not in template or command[:2] != _SERVE:
        return template  # the runtime's own command, or a server installed here: it runs as written
    every_format = [part for part in command if not part.startswith(_RUNTIME_FLAG)]
    if every_format == command:
        return template
    image = {**template["image"], "runs": "modelplane serve (each model's framework from its files)"}
    return {**template, "command": every_format, "image": image}
