"""Request and response bodies as the router passes them between steps.

A body stays bytes end to end; its JSON is parsed at most once, and only when a condition, an Ensemble
or `mapPredictionsToInstances` needs it: by orjson, and, for what orjson refuses, as Go reads it
(`loads_as_go`), since KServe's router is Go.
"""

from __future__ import annotations

from typing import Any

import orjson

from modelplane.graph.gjson import parse_document
from modelplane.graph.gjson.document import loads_as_go

INVALID_JSON: Any = object()  # what `Payload.doc` is when the bytes are not JSON
_UNPARSED: Any = object()
_REFUSED: Any = object()  # orjson refused the bytes


class Payload:
    __slots__ = ("raw", "_loaded", "_doc", "_condition_doc")

    def __init__(self, raw: bytes, doc: Any = _UNPARSED) -> None:
        self.raw = raw
        self._loaded = doc  # orjson's reading
        self._doc = doc
        self._condition_doc = _UNPARSED

    @classmethod
    def from_doc(cls, doc: Any, *, sort_keys: bool = False) -> Payload:
        payload = cls(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS if sort_keys else 0), doc)
        payload._condition_doc = doc  # written from a dict: no key is there twice
        return payload

    @property
    def doc(self) -> Any:
        """The parsed JSON as Go's encoding/json reads it (KServe's Ensemble and
        mapPredictionsToInstances), or `INVALID_JSON`."""
        if self._doc is _UNPARSED:
            doc = self._orjson()
            if doc is _REFUSED:
                try:
                    doc = loads_as_go(self.raw, huge_numbers=False)
                except ValueError:
                    doc = INVALID_JSON
            self._doc = doc
        return self._doc

    @property
    def condition_doc(self) -> Any:
        """The parsed JSON as step conditions see it, as Go's gjson reads it, or `INVALID_JSON`: a key
        there twice resolves as gjson resolves it (where `doc` keeps the last, as encoding/json does),
        and a number beyond float64 is infinity (where `doc` is `INVALID_JSON`)."""
        if self._condition_doc is _UNPARSED:
            doc = self._orjson()
            try:
                self._condition_doc = parse_document(self.raw, None if doc is _REFUSED else doc)
            except ValueError:
                self._condition_doc = INVALID_JSON
        return self._condition_doc

    @property
    def is_json(self) -> bool:
        """Whether the bytes are JSON as Go's `json.Valid` judges it, by syntax only: a number beyond
        float64 is JSON here, though `doc` cannot hold it."""
        return self.condition_doc is not INVALID_JSON

    def _orjson(self) -> Any:
        if self._loaded is _UNPARSED:
            try:
                self._loaded = orjson.loads(self.raw)
            except orjson.JSONDecodeError:
                self._loaded = _REFUSED
        return self._loaded


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
