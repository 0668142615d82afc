"""The predictive tasks (sequence_classification, token_classification, fill_mask, text_embedding) over
V1 and V2, in KServe's formats.

A request's texts (V1 `instances`, or the first V2 input, a BYTES tensor) are tokenized together,
padded to the longest and truncated to the context length, as KServe does, and run in one forward
pass on a worker thread. A text far longer than the context is cut first to a prefix already over it
(modelplane.server.long_prompts.within_context), so a text of megabytes costs what that prefix does
and is truncated to the same tokens. With `--predictor-host` the model runs elsewhere: the tokens go
to that predictor as a V2 request (`--tensor_input_names` chooses which tokenizer outputs), and its
first output is read as the logits.

Answers, by task and by what `--return_probabilities` / `--return_raw_logits` ask:

| task | V1 prediction per text | V2 output-0 |
|---|---|---|
| sequence_classification | the label id; or `{"<label id>": probability (4 decimals) or logit}` | INT64 `[n]`; FP32 `[n, labels]` |
| token_classification | `[[label id per token]]`; or `[{"<label id>": value} per token]` | INT64 `[n, 1, tokens]`; FP32 `[n, tokens, labels]` |
| fill_mask | the likeliest text at the mask token(s); or per mask `[{"<token id>": value} per token]` | BYTES `[n]`; FP32 `[n, masks, vocabulary]` |
| text_embedding | the mean of the token vectors, L2-normalised | FP32 `[n, hidden]` |

A text_embedding model also answers `/openai/v1/embeddings` (`TextEmbedder`), and a
sequence_classification model with one label, a cross-encoder, `/openai/v1/rerank` (`TextReranker`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import torch

from modelplane.protocol.errors import InferenceError, InvalidInput
from modelplane.protocol.v2 import InferInput, InferRequest, InferResponse, output_from_array
from modelplane.runtimes.base import v1_instance_list
from modelplane.runtimes.huggingface import padding
from modelplane.runtimes.huggingface.loading import Loaded
from modelplane.runtimes.huggingface.options import HuggingFaceSettings
from modelplane.runtimes.huggingface.prompts import most_characters_per_token
from modelplane.runtimes.huggingface.tasks import Task
from modelplane.server import long_prompts
from modelplane.server.generation import Relevance

logger = logging.getLogger("modelplane.server")

Forward = Callable[[InferRequest], Awaitable[InferResponse]]

# The most texts run through the model at once: a request of many texts runs in slices of this many, so
# that its activations take the memory of one slice, not of the whole request.
ROWS_AT_ONCE = 32


class EncoderTask:
    """A predictive task of one loaded model."""

    def __init__(self, name: str, loaded: Loaded, settings: HuggingFaceSettings):
        self.name = name
        self.task = loaded.task
        self.tokenizer = loaded.tokenizer
        self.model = loaded.model
        self.device = loaded.device
        self.max_model_len = loaded.max_model_len
        self.settings = settings
        # Held by every call of the tokenizer, some of which run on worker threads: a fast tokenizer fails
        # ("Already borrowed") when one call changes its truncation or padding while another uses it.
        self.tokenizing = threading.Lock()
        own_pad = self.tokenizer.pad_token
        padding.settle(self.tokenizer, loaded.config, self.model, self.task is Task.sequence_classification)
        if self.tokenizer.pad_token != own_pad:
            logger.info(
                "model %s pads texts with %s (its tokenizer's pad token: %s)",
                name,
                self.tokenizer.pad_token,
                own_pad,
            )
        self.max_chars_per_token = most_characters_per_token(self.tokenizer)
        self._piece = long_prompts.piece_length(self.max_chars_per_token, self.max_model_len)
        special = self.tokenizer.num_special_tokens_to_add() if settings.special_tokens else 0
        if self.max_model_len <= special:
            # Within fewer tokens than its special tokens, a tokenizer does not truncate at all.
            raise ValueError(
                f"--max_model_len {self.max_model_len} leaves no room for text beside the tokenizer's "
                f"{special} special tokens"
            )
        if self.task is Task.fill_mask and self.tokenizer.mask_token_id is None:
            raise ValueError("a fill_mask model needs a tokenizer with a mask token; this one has none")
        if settings.return_offsets_mapping and self.task is not Task.token_classification:
            raise ValueError("--return_offsets_mapping applies to token_classification only")
        if settings.return_offsets_mapping and not getattr(self.tokenizer, "is_fast", False):
            raise ValueError("--return_offsets_mapping needs a fast (tokenizers) tokenizer")
        if settings.output != "labels" and self.task is Task.text_embedding:
            raise ValueError("--return_probabilities and --return_raw_logits apply to classification tasks")
        if settings.tensor_input_names:
            self._check_tensor_input_names(settings.tensor_input_names)

    def _check_tensor_input_names(self, names: tuple[str, ...]) -> None:
        made = [key for key in self._tokenize(["a"]) if key != "offset_mapping"]
        unknown = [name for name in names if name not in made]
        if unknown:
            hint = (
                " (it makes token_type_ids with --return_token_type_ids)"
                if "token_type_ids" in unknown and not self.settings.return_token_type_ids
                else ""
            )
            raise ValueError(
                f"--tensor_input_names: {', '.join(unknown)} not among the tokenizer's outputs, "
                f"{', '.join(made)}{hint}"
            )

    async def predict(self, payload: Any, forward_to_predictor: Forward | None = None) -> Any:
        """The answer to a V1 payload or a V2 InferRequest; `forward_to_predictor` sends the tokens
        to the predictor that runs the model, when it runs elsewhere."""
        texts = _texts(payload)
        encoded = await asyncio.to_thread(self._tokenize, texts)
        self._refuse_texts_of_no_tokens(encoded)
        offsets = encoded.pop("offset_mapping", None)
        if forward_to_predictor is not None:
            scores = await self._remote(encoded, forward_to_predictor)
        else:
            scores = await asyncio.to_thread(self.run_model, encoded)
        return self._answer(payload, scores, encoded, offsets)

    def _refuse_texts_of_no_tokens(self, encoded: Any) -> None:
        """A text of no tokens cannot be run alone, and in a batch its answer would be read from padding."""
        empty = (encoded["attention_mask"].sum(dim=1) == 0).nonzero().flatten()
        if len(empty):
            why = "" if self.settings.special_tokens else " (--disable_special_tokens: none are added to it)"
            raise InvalidInput(f"text {int(empty[0])} has no tokens{why}")

    def within_context(self, text: str) -> str:
        """`text`, or a prefix of it that truncates to the same tokens (see long_prompts.within_context),
        so that tokenizing a text far over the context costs what the context does. Called holding
        `tokenizing`."""
        special = self.settings.special_tokens

        def encode(piece: str) -> list[int]:
            # verbose=False: a piece over the model's length is counted, never run, so no warning.
            return self.tokenizer(piece, add_special_tokens=special, verbose=False)["input_ids"]

        return long_prompts.within_context(text, encode, self._piece, self.max_model_len)

    def _tokenize(self, texts: list[str]) -> Any:
        with self.tokenizing:
            return self.tokenizer(
                [self.within_context(text) for text in texts],
                max_length=self.max_model_len,
                truncation=True,
                padding=True,
                add_special_tokens=self.settings.special_tokens,
                return_token_type_ids=self.settings.return_token_type_ids,
                return_offsets_mapping=self.settings.return_offsets_mapping,
                return_tensors="pt",
            )

    def run_model(self, encoded: Any) -> torch.Tensor:
        """The model's logits (text_embedding: its token vectors) for tokenized texts, run
        `ROWS_AT_ONCE` texts at a time."""
        rows = len(encoded["input_ids"])
        if rows <= ROWS_AT_ONCE:
            return self._run_rows(encoded)
        return torch.cat(
            [
                self._run_rows({key: tensor[start : start + ROWS_AT_ONCE] for key, tensor in encoded.items()})
                for start in range(0, rows, ROWS_AT_ONCE)
            ]
        )

    def _run_rows(self, encoded: Any) -> torch.Tensor:
        try:
            with torch.inference_mode():
                output = self.model(**{key: tensor.to(self.device) for key, tensor in encoded.items()})
        except Exception as exc:  # noqa: BLE001 - the model's own failure
            raise InferenceError(f"model {self.name} failed: {type(exc).__name__}: {exc}") from None
        if self.task is Task.text_embedding:
            return output.last_hidden_state.float().cpu()
        return output.logits.float().cpu()

    async def _remote(self, encoded: Any, forward: Forward) -> torch.Tensor:
        wanted = self.settings.tensor_input_names
        inputs = [
            InferInput(key, list(tensor.shape), "INT64", tensor.numpy().astype(np.int64))
            for key, tensor in encoded.items()
            if not wanted or key in wanted
        ]
        response = await forward(InferRequest(self.name, inputs))
        if not response.outputs:
            raise InferenceError(f"the predictor of {self.name} answered no outputs")
        return torch.from_numpy(np.asarray(response.outputs[0].as_numpy(), dtype=np.float32))

    def _answer(self, payload: Any, logits: torch.Tensor, encoded: Any, offsets: Any) -> Any:
        v2 = isinstance(payload, InferRequest)
        if self.task is Task.text_embedding:
            result = _embeddings(logits, encoded["attention_mask"])
            return _respond(payload, self.name, result.numpy() if v2 else result.tolist())
        if self.task is Task.sequence_classification:
            result = self._sequences(logits, v2)
        elif self.task is Task.token_classification:
            result = self._tokens(logits, v2)
        else:
            result = self._masks(logits, encoded, v2)
        response = _respond(payload, self.name, result)
        if offsets is not None:
            _add_offsets(response, offsets.numpy().astype(np.int64))
        return response

    def _sequences(self, logits: torch.Tensor, v2: bool) -> Any:
        output = self.settings.output
        if output == "labels":
            labels = logits.argmax(dim=-1)
            return labels.numpy().astype(np.int64) if v2 else labels.tolist()
        values = torch.softmax(logits, dim=-1) if output == "probabilities" else logits
        if v2:
            return values.numpy()
        digits = 4 if output == "probabilities" else None
        return [_by_id(row, digits) for row in values.tolist()]

    def _tokens(self, logits: torch.Tensor, v2: bool) -> Any:
        output = self.settings.output
        if output == "labels":
            labels = logits.argmax(dim=-1)[:, None, :]
            return labels.numpy().astype(np.int64) if v2 else labels.tolist()
        values = torch.softmax(logits, dim=-1) if output == "probabilities" else logits
        if v2:
            return values.numpy()
        digits = 4 if output == "probabilities" else None
        return [[_by_id(token, digits) for token in text] for text in values.tolist()]

    def _masks(self, logits: torch.Tensor, encoded: Any, v2: bool) -> Any:
        mask_id = self.tokenizer.mask_token_id
        per_text = []
        for row, ids in enumerate(encoded["input_ids"]):
            places = (ids == mask_id).nonzero().flatten()
            if not len(places):
                within = (
                    f" in its first {self.max_model_len} tokens (the model's context; it is truncated there)"
                    if int(encoded["attention_mask"][row].sum()) == self.max_model_len
                    else ""
                )
                raise InvalidInput(f"text {row} has no {self.tokenizer.mask_token} token to fill{within}")
            per_text.append(logits[row, places])
        output = self.settings.output
        if output == "labels":
            with self.tokenizing:
                texts = [self.tokenizer.decode(masked.argmax(dim=-1).tolist()) for masked in per_text]
            return np.array(texts, dtype=object) if v2 else texts
        values = [
            torch.softmax(masked, dim=-1) if output == "probabilities" else masked for masked in per_text
        ]
        if v2:
            if len({len(masked) for masked in values}) > 1:
                raise InvalidInput("over V2, every text must hold the same number of mask tokens")
            return torch.stack(values).numpy()
        if output == "probabilities":
            return [[_by_id_text(mask) for mask in masked.tolist()] for masked in values]
        return [
            [[{str(token): logit} for token, logit in enumerate(mask)] for mask in masked.tolist()]
            for masked in values
        ]


class TextEmbedder:
    """The `/openai/v1/embeddings` side of a text_embedding model (modelplane.server.generation.Embedder)."""

    def __init__(self, encoder: EncoderTask):
        self.encoder = encoder
        self.max_model_len = encoder.max_model_len
        self.vocab_size = encoder.model.config.get_text_config().vocab_size
        self.max_chars_per_token = encoder.max_chars_per_token

    def encode(self, text: str) -> list[int]:
        encoder = self.encoder
        with encoder.tokenizing:
            return encoder.tokenizer(text, add_special_tokens=encoder.settings.special_tokens)["input_ids"]

    async def embed(self, inputs: list[list[int]]) -> list[list[float]]:
        """Each input's vector, the inputs run `ROWS_AT_ONCE` at a time, those of like length together
        (each slice padded to its own longest), and each slice's token vectors pooled at once."""
        vectors: list[list[float]] = [[] for _ in inputs]
        by_length = sorted(range(len(inputs)), key=lambda index: len(inputs[index]))
        for start in range(0, len(by_length), ROWS_AT_ONCE):
            rows = by_length[start : start + ROWS_AT_ONCE]
            pooled = await asyncio.to_thread(self._embed_rows, [inputs[index] for index in rows])
            for index, vector in zip(rows, pooled.tolist(), strict=True):
                vectors[index] = vector
        return vectors

    def _embed_rows(self, inputs: list[list[int]]) -> torch.Tensor:
        pad_id = self.encoder.tokenizer.pad_token_id or 0
        width = max(len(ids) for ids in inputs)
        ids = torch.full((len(inputs), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(inputs), width), dtype=torch.long)
        for row, tokens in enumerate(inputs):
            ids[row, : len(tokens)] = torch.tensor(tokens, dtype=torch.long)
            mask[row, : len(tokens)] = 1
        hidden = self.encoder.run_model({"input_ids": ids, "attention_mask": mask})
        return _embeddings(hidden, mask)


class TextReranker:
    """The `/openai/v1/rerank` side of a cross-encoder (modelplane.server.generation.Reranker): each
    document is read with the query as a text pair, truncated to the context length as
    sentence-transformers truncates it, and its one logit, through the model's activation, is its
    relevance. A query or document far over the context is cut to a prefix already over it first."""

    def __init__(self, encoder: EncoderTask, activation: Callable[[torch.Tensor], torch.Tensor]):
        self.encoder = encoder
        self.activation = activation

    async def rerank(self, query: str, documents: list[str]) -> Relevance:
        encoded = await asyncio.to_thread(self._tokenize, query, documents)
        logits = await asyncio.to_thread(self.encoder.run_model, encoded)
        return Relevance(self.activation(logits[:, 0]).tolist(), int(encoded["attention_mask"].sum()))

    def _tokenize(self, query: str, documents: list[str]) -> Any:
        encoder = self.encoder
        with encoder.tokenizing:
            query = encoder.within_context(query)
            return encoder.tokenizer(
                [query] * len(documents),
                [encoder.within_context(document) for document in documents],
                max_length=encoder.max_model_len,
                truncation=True,
                padding=True,
                add_special_tokens=encoder.settings.special_tokens,
                return_tensors="pt",
            )


def cross_encoder_activation(config: Any) -> Callable[[torch.Tensor], torch.Tensor] | str:
    """The function that turns a one-label classifier's logit into its relevance, as sentence-transformers
    reads it from the model's config (a sigmoid unless the config names another); or why there is none."""
    if getattr(config, "num_labels", None) != 1:
        return f"it has {config.num_labels} labels, and a cross-encoder has one"
    named = (getattr(config, "sentence_transformers", None) or {}).get("activation_fn") or getattr(
        config, "sbert_ce_default_activation_function", None
    )
    name = (named or "Sigmoid").rsplit(".", 1)[-1]
    functions = {"Sigmoid": torch.sigmoid, "Identity": lambda logits: logits, "Tanh": torch.tanh}
    if name not in functions:
        return f"its activation {named} is not one modelplane applies (Sigmoid, Identity, Tanh)"
    return functions[name]


def _texts(payload: Any) -> list[str]:
    if isinstance(payload, InferRequest):
        if not payload.inputs:
            raise InvalidInput("the request has no inputs")
        first = payload.inputs[0]
        if first.datatype != "BYTES":
            raise InvalidInput(f"input {first.name!r} must be a BYTES tensor of texts, got {first.datatype}")
        try:
            texts = first.as_string()
        except UnicodeDecodeError:
            raise InvalidInput(f"input {first.name!r} must hold UTF-8 texts") from None
    else:
        texts = v1_instance_list(payload)
        if not all(isinstance(text, str) for text in texts):
            raise InvalidInput('"instances" must be a list of texts')
    if not texts:
        raise InvalidInput("the request holds no texts")
    return texts


def _embeddings(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Each text's token vectors averaged over its real tokens, then scaled to length 1 (KServe's pooling)."""
    weights = mask.to(hidden.dtype).unsqueeze(-1)
    pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, p=2, dim=1)


def _by_id(values: list[float], digits: int | None) -> dict[str, float]:
    return {str(index): round(value, digits) if digits else value for index, value in enumerate(values)}


def _by_id_text(values: list[float]) -> list[dict[str, str]]:
    return [{str(index): f"{value:.4f}"} for index, value in enumerate(values)]


def _respond(payload: Any, name: str, result: Any) -> Any:
    if isinstance(payload, InferRequest):
        return InferResponse(payload.id, name, [output_from_array("output-0", result)])
    return {"predictions": result}


def _add_offsets(response: Any, offsets: np.ndarray) -> None:
    """KServe's `offset_mapping` output: each token's [start, end) characters in its text."""
    if isinstance(response, InferResponse):
        response.outputs.append(output_from_array("offset_mapping", offsets))
    else:
        response["outputs"] = [
            {
                "name": "offset_mapping",
                "datatype": "INT64",
                "shape": list(offsets.shape),
                "data": offsets.flatten().tolist(),
            }
        ]
