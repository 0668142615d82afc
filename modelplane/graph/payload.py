"""Request and response bodies as the router passes them between steps.

A body stays bytes end to end; its JSON is parsed at most once, and only when a condition, an Ensemble
or `mapPredictionsToInstances` needs it.
"""

from __future__ import annotations

from typing import Any

import orjson

INVALID_JSON: Any = object()  # what `Payload.doc` is when the bytes are not JSON
_UNPARSED: Any = object()


class Payload:
    __slots__ = ("raw", "_doc")

    def __init__(self, raw: bytes, doc: Any = _UNPARSED) -> None:
        self.raw = raw
        self._doc = doc

    @classmethod
    def from_doc(cls, doc: Any, *, sort_keys: bool = False) -> Payload:
        return cls(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS if sort_keys else 0), doc)

    @property
    def doc(self) -> Any:
        """The parsed JSON, or `INVALID_JSON`."""
        if self._doc is _UNPARSED:
            try:
                self._doc = orjson.loads(self.raw)
            except orjson.JSONDecodeError:
                self._doc = INVALID_JSON
        return self._doc

    @property
    def is_json(self) -> bool:
        return self.doc is not INVALID_JSON


def map_predictions_to_instances(payload: Payload) -> Payload:
    """`{"predictions": [...]}` becomes `{"instances": [...]}`, as KServe's Sequence does it.

    KServe decodes the body into a struct of two lists: keys match case-insensitively, the last one
    wins, and any other field is dropped. When the body is not an object of that shape, or has no
    predictions, it is sent unchanged.
    """
    doc = payload.doc
    if not isinstance(doc, dict):
        return payload
    predictions = None
    for key, value in doc.items():
        folded = key.lower()
        if folded not in ("predictions", "instances"):
            continue
        if value is not None and not isinstance(value, list):
            return payload  # KServe's decode fails, and the body goes on unchanged
        if folded == "predictions":
            predictions = value
    if not predictions:
        return payload
    return Payload.from_doc({"instances": predictions})
