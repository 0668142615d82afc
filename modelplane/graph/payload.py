"""Request and response bodies as the router passes them between steps.

A body stays bytes end to end; its JSON is parsed at most once, and only when a condition, an Ensemble
or `mapPredictionsToInstances` needs it.
"""

from __future__ import annotations

from typing import Any

import orjson

from modelplane.graph.gjson import parse_document

INVALID_JSON: Any = object()  # what `Payload.doc` is when the bytes are not JSON
_UNPARSED: Any = object()


class Payload:
    __slots__ = ("raw", "_doc", "_condition_doc")

    def __init__(self, raw: bytes, doc: Any = _UNPARSED) -> None:
        self.raw = raw
        self._doc = doc
        self._condition_doc = _UNPARSED

    @classmethod
    def from_doc(cls, doc: Any, *, sort_keys: bool = False) -> Payload:
        payload = cls(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS if sort_keys else 0), doc)
        payload._condition_doc = doc  # written from a dict: no key is there twice
        return payload

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
    def condition_doc(self) -> Any:
        """The parsed JSON as step conditions see it (a key there twice resolves as Go's gjson
        resolves it, where `doc` keeps the last, as Go's encoding/json does), or `INVALID_JSON`."""
        if self._condition_doc is _UNPARSED:
            if self.doc is INVALID_JSON:
                self._condition_doc = INVALID_JSON
            else:
                self._condition_doc = parse_document(self.raw, self.doc)
        return self._condition_doc

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
