"""A model's workers: each a handler instance of its own, loaded once, called on a thread.

TorchServe's stock vision handlers (image_classifier, image_segmenter, object_detector) keep no state of a
batch between their stages, so their workers run as a two-stage pipeline: one batch is read and decoded
(`preprocess`: base64, JPEG decoding, resizing) while the batch before it goes through the network
(`inference`, `postprocess`). Both stages release the GIL in their C code, so one worker keeps two cores
busy where it would keep one. Every other handler, custom ones included, runs its `handle` whole, one batch
at a time, exactly as TorchServe calls it.

The same stock handlers take a row's picture as bytes or as base64 text, which they decode with the standard
library. modelplane hands them the bytes, decoded by its faster decoder (modelplane.protocol.base64_text):
half a millisecond less for each picture of a V1 `{"data": ...}` request. Their batches reach the network
channels-last on a CPU (layout.py), the network runs with its batch norms folded into its convolutions
(folding.py), and the image classifier's resize and centre crop are one resampling (cropping.py).
"""

from __future__ import annotations

import copy
import threading
import time
from functools import partial
from typing import Any

from modelplane.protocol import base64_text
from modelplane.runtimes.torchserve.cropping import resize_crops_in_one
from modelplane.runtimes.torchserve.folding import FoldedNetwork
from modelplane.runtimes.torchserve.layout import BatchLayout

# Stock handlers whose stages are safe to overlap (their classes exactly: a subclass may keep state).
_PIPELINED = (
    ("ts.torch_handler.image_classifier", "ImageClassifier"),
    ("ts.torch_handler.image_segmenter", "ImageSegmenter"),
    ("ts.torch_handler.object_detector", "ObjectDetector"),
)


class Worker:
    """One handler instance. `slots` is how many batches may be in it at once (2 when pipelined)."""

    def __init__(self, service: Any, model_name: str):
        self.service = service
        self.handler = getattr(service._entry_point, "__self__", None)
        self.pipelined = _is_pipelined(self.handler)
        self.slots = 2 if self.pipelined else 1
        self._reading = threading.Lock()
        self._computing = threading.Lock()
        self._layout = BatchLayout(model_name)
        self._network = FoldedNetwork(self.handler, model_name) if self.pipelined else None
        if self.pipelined:
            resize_crops_in_one(self.handler, model_name)

    def new_context(self) -> Any:
        """A context of the worker's own for one batch: batches in flight side by side each keep their
        request ids, headers and response statuses."""
        return copy.copy(self.service.context)

    def run(self, data: list, context: Any, *, whole: bool = False) -> Any:
        """The handler's results for a batch. `whole` runs `handle` in one piece (explanations, which a
        handler decides on from the first row's headers)."""
        if self.pipelined:
            data = [_picture_decoded(row) for row in data]
        if not self.pipelined or whole:
            with self._reading, self._computing:
                return self.service._entry_point(data, context)
        started = time.time()
        handler = self.handler
        with self._reading:
            handler.context = context
            prepared = self._layout.arrange(_preprocessed(handler, data))
        with self._computing:
            handler.context = context
            answers = self._layout.infer(partial(self._network.infer, handler.inference), prepared)
            results = handler.postprocess(answers)
        context.metrics.add_time("HandlerTime", round((time.time() - started) * 1000, 2), None, "ms")
        return results


class InputNotTaken(Exception):
    """A stock handler's `preprocess` failed on a batch (its cause says why): that code is the same for
    every request, so what it could not take is the request's data (a picture of one channel or four for
    a network of three, rows that are not pictures)."""


def _preprocessed(handler: Any, data: list) -> Any:
    import torch

    try:
        return handler.preprocess(data)
    except (MemoryError, torch.OutOfMemoryError):
        raise
    except Exception as exc:
        raise InputNotTaken() from exc


def _picture_decoded(row: Any) -> Any:
    """The row with its base64 `data` as the bytes it encodes; as it was where that is not base64 (the
    handler then fails on it as it would have)."""
    if not isinstance(row, dict) or not isinstance(row.get("data"), str):
        return row
    try:
        return {**row, "data": base64_text.decode(row["data"], strict=False)}
    except (base64_text.Error, ValueError):
        return row


def _is_pipelined(handler: Any) -> bool:
    if handler is None:
        return False
    cls = type(handler)
    return (cls.__module__, cls.__qualname__) in _PIPELINED
