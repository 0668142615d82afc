"""The V1 model paths: KServe's `/v1/models/{m}[:verb]`, and TF Serving's forms of them, which may name a
version or a version label and ask for the model's metadata:

    /v1/models/{m}[/versions/{v} | /labels/{l}][:predict | :classify | ...]
    /v1/models/{m}[/versions/{v} | /labels/{l}][/metadata]
"""

from __future__ import annotations

from typing import NamedTuple

# TF Serving's verbs that read tf.Example inputs, served by the models that say so (`example_verbs`:
# TensorFlow SavedModels); what the others answer.
EXAMPLE_VERBS = {
    verb: (
        f"model {{}} does not serve TF Serving's :{verb} (it reads tf.Example inputs, which only "
        "TensorFlow SavedModels served by the tensorflow runtime take)"
    )
    for verb in ("classify", "regress")
}


class V1Path(NamedTuple):
    name: str
    version: str | None  # /versions/{v}
    label: str | None  # /labels/{l}
    verb: str | None  # what follows the ":" (predict, explain...); None for the GET routes
    metadata: bool  # /metadata (a GET)


def parse_v1_path(rest: str) -> V1Path | None:
    """The parts of a path after `/v1/models/`; None when it is none of the forms above."""
    head, colon, verb = rest.partition(":")
    if not head or (colon and not verb):
        return None
    if "/" not in head:  # the usual `name:predict`, at once
        return V1Path(head, None, None, verb if colon else None, False)
    name, *parts = head.split("/")
    if not name:
        return None
    version = label = None
    if len(parts) >= 2 and parts[0] in ("versions", "labels") and parts[1]:
        if parts[0] == "versions":
            version = parts[1]
        else:
            label = parts[1]
        parts = parts[2:]
    metadata = parts == ["metadata"] and not colon
    if parts and not metadata:
        return None
    return V1Path(name, version, label, verb if colon else None, metadata)
