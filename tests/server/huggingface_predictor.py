"""A predictor for the huggingface runtime's `--predictor-host` mode, as Triton would be one: it runs a
transformers classifier on token tensors (V2 inputs named as the tokenizer names them) and answers
its logits. It takes exactly `input_ids` and `attention_mask`, and refuses any other input.

Served with `modelplane serve --model-class tests/server/huggingface_predictor.py:LogitsPredictor
--model-dir <transformers folder>`.
"""

from __future__ import annotations

import numpy as np
import torch
import transformers

from modelplane.protocol.errors import InvalidInput
from modelplane.server import InferOutput, InferRequest, InferResponse, Model


class LogitsPredictor(Model):
    def __init__(self, name: str, model_dir: str):
        super().__init__(name)
        self.model_dir = model_dir

    def load(self) -> bool:
        self.model = transformers.AutoModelForSequenceClassification.from_pretrained(self.model_dir).eval()
        self.ready = True
        return True

    def predict(self, payload: InferRequest, headers=None) -> InferResponse:
        names = sorted(item.name for item in payload.inputs)
        if names != ["attention_mask", "input_ids"]:
            raise InvalidInput(f"this predictor takes input_ids and attention_mask, got {', '.join(names)}")
        tensors = {
            item.name: torch.from_numpy(np.asarray(item.as_numpy(), dtype=np.int64))
            for item in payload.inputs
        }
        with torch.no_grad():
            logits = self.model(**tensors).logits.numpy()
        return InferResponse(
            payload.id, self.name, [InferOutput("logits", list(logits.shape), "FP32", logits)]
        )
