"""The OpenAI endpoints of the model server, under `/openai/v1` as KServe serves them:

    POST /openai/v1/completions          POST /openai/v1/chat/completions
    POST /openai/v1/embeddings           POST /openai/v1/rerank
    GET  /openai/v1/models[/{name}]

`KSERVE_OPENAI_ROUTE_PREFIX` moves them, as in KServe: `/openai` is its default, and empty serves them
under `/v1`, where V1's own `/v1/models` keeps its routes (KServe's order too).
A model answers them when it has a `generator` (modelplane.server.generation.TextGenerator), an
`embedder` or a `reranker`. The `model` field of a request names it. Every choice of a request (each prompt, `n`
times) is generated at once, so the engine batches them with whatever else is running. Stop strings
are matched here, on the text; a match ends that sequence's generation. Prompts are tokenized on a
worker thread, so a long one does not hold up the event loop; one far longer than the context is
refused before it is tokenized whole (modelplane.server.long_prompts). `stream: true` answers
Server-Sent Events as the tokens come, then `data: [DONE]`; a client that leaves ends the generation.
A field a request sets that changes nothing here (`modelplane.protocol.openai.Ignored`) is said in the
answer's `warnings` (a `Warning` header each), and once per field in the log.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import struct
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import orjson

from modelplane.protocol.errors import ModelNotFound, ModelNotReady, ModelplaneError
from modelplane.protocol.openai import (
    DEFAULT_MAX_LOGPROBS,
    ChatMessage,
    ChatRequest,
    ChatTemplateOptions,
    CompletionRequest,
    EmbeddingRequest,
    Ignored,
    OpenAIError,
    RerankRequest,
    SamplingParams,
    StreamOptions,
    check_logprobs,
    model_not_found,
    parse_chat,
    parse_completion,
    parse_embedding,
    parse_rerank,
    with_model_defaults,
)
from modelplane.server import generation_metrics, long_prompts
from modelplane.server.generation import Embedder, GenerationStep, TextGenerator, stop_generation
from modelplane.server.repository import ModelRepository

logger = logging.getLogger("modelplane.server")

ROUTE_PREFIX_VARIABLE = "KSERVE_OPENAI_ROUTE_PREFIX"
SSE_CONTENT_TYPE = b"text/event-stream"
_DONE = b"data: [DONE]\n\n"
T = TypeVar("T")
_POST_ROUTES = ("/completions", "/chat/completions", "/embeddings", "/rerank")
# The most sequences (prompts x n) one request may ask for: each holds its state from the start, while
# it waits for its turn, so that an unbounded number would let one small body take the server's memory.
MAX_SEQUENCES = 16384
SEED_RANGE = 1 << 64  # a random generator's seeds are 64-bit: choice i samples with seed + i, wrapped


@dataclass
class OpenAIAnswer:
    """A JSON answer, or a stream of Server-Sent Events."""

    status: int
    document: Any = None
    events: AsyncIterator[bytes] | None = None
    warnings: list[str] = field(default_factory=list)  # each a `Warning` header of the answer
    allow: str | None = None  # a 405's `Allow` header: the method the route takes


@dataclass
class _Choice:
    index: int
    prompt_ids: list[int]
    params: SamplingParams
    text: list[str] = field(default_factory=list)
    token_count: int = 0
    finish_reason: str | None = None
    stop_reason: int | str | None = None  # vLLM's: the stop string or stop token that ended the choice
    logprobs: list = field(default_factory=list)
    echo: str | None = None  # the prompt's text, answered before the generated text
    prompt_logprobs: list = field(default_factory=list)  # with echo and logprobs
    echo_only: bool = False  # max_tokens 0: the answer is the echo, the one token generated is not


def route_prefix(environ: Mapping[str, str] = os.environ) -> str:
    """Where the OpenAI routes begin: `$KSERVE_OPENAI_ROUTE_PREFIX/v1`, `/openai/v1` by default."""
    prefix = environ.get(ROUTE_PREFIX_VARIABLE, "/openai").strip().rstrip("/")
    if prefix and not prefix.startswith("/"):
        prefix = "/" + prefix
    return prefix + "/v1"


class OpenAIEndpoints:
    def __init__(self, repository: ModelRepository, prefix: str = "/openai/v1"):
        self.repository = repository
        self.prefix = prefix

    async def handle(self, method: str, path: str, body: bytes) -> OpenAIAnswer:
        ignored: list[Ignored] = []  # what the request set that changes nothing: every answer says so
        answer = await self._answer(method, path, body, ignored)
        answer.warnings = [item.text for item in ignored]
        _log_once(ignored)
        return answer

    async def _answer(self, method: str, path: str, body: bytes, ignored: list[Ignored]) -> OpenAIAnswer:
        try:
            route = path[len(self.prefix) :].rstrip("/")
            if route == "/models" or route.startswith("/models/"):
                _only(method, "GET")
                return OpenAIAnswer(200, self._models(route[len("/models/") :] if "/" in route[1:] else None))
            if route not in _POST_ROUTES:
                raise OpenAIError(f"Invalid URL ({method} {path})", 404, code="not_found")
            _only(method, "POST")
            document = _json(body)
            if route == "/completions":
                completion = parse_completion(document)
                ignored.extend(completion.ignored)
                return await self._completions(completion)
            if route == "/chat/completions":
                chat = parse_chat(document)
                ignored.extend(chat.ignored)
                return await self._chat(chat)
            if route == "/embeddings":
                embedding = parse_embedding(document)
                ignored.extend(embedding.ignored)
                return await self._embeddings(embedding)
            return await self._rerank(parse_rerank(document))
        except _MethodNotAllowed as error:
            return OpenAIAnswer(405, error.to_json(), allow=error.allowed)
        except OpenAIError as error:
            return OpenAIAnswer(error.status_code, error.to_json())
        except ModelplaneError as error:
            return OpenAIAnswer(error.status_code, OpenAIError(error.message, error.status_code).to_json())
        except Exception as exc:  # noqa: BLE001 - a bug must not take the server down
            logger.exception("unhandled error on %s %s", method, path)
            return OpenAIAnswer(500, OpenAIError(f"{type(exc).__name__}: {exc}", 500).to_json())

    # -- models -----------------------------------------------------------------------------------

    def _models(self, name: str | None) -> dict:
        created = int(time.time())
        entries = [
            {"id": model_name, "object": "model", "created": created, "owned_by": "modelplane"}
            for model_name, served in self.repository.items()
            if _generator(served.model) is not None
            or getattr(served.model, "embedder", None) is not None
            or getattr(served.model, "reranker", None) is not None
        ]
        if name is None:
            return {"object": "list", "data": entries}
        for entry in entries:
            if entry["id"] == name:
                return entry
        self._model(name)  # a model that is loading, or failed to load, is a 503 saying so
        raise model_not_found(name)  # one that is ready serves none of these routes

    def _model(self, name: str) -> Any:
        try:
            return self.repository.get_ready(name).model
        except ModelNotFound:
            raise model_not_found(name) from None
        except ModelNotReady as error:
            raise OpenAIError(error.message, 503) from None

    def _generator(self, name: str) -> TextGenerator:
        generator = _generator(self._model(name))
        if generator is None:
            raise OpenAIError(f"The model `{name}` does not generate text.", 400, param="model")
        return generator

    # -- completions and chat ---------------------------------------------------------------------

    async def _completions(self, request: CompletionRequest) -> OpenAIAnswer:
        generator = self._generator(request.model)
        prompts = await _off_the_loop(
            _text_size(request.prompts), _token_ids, generator, request.prompts, "prompt"
        )
        params = _model_defaults(generator, request.params, request.left_out)
        choices = _choices(generator, prompts, params, request.n, "prompt")
        _check_vocabulary(prompts, generator.vocab_size, "prompt")
        _check_vocabulary(
            [[token for token, _ in request.params.logit_bias]], generator.vocab_size, "logit_bias"
        )
        run = _Run(generator, request.model, "cmpl", "text_completion", choices, chat=False)
        if request.echo:
            echoes = await _off_the_loop(_ids_size(choices), _echoes, generator, choices)
            for choice, echo in zip(choices, echoes, strict=True):
                choice.echo = echo
        if request.stream:
            return OpenAIAnswer(200, events=run.stream(request.stream_options))
        await run.complete()
        return OpenAIAnswer(
            200, run.document(lambda choice: {"text": (choice.echo or "") + "".join(choice.text)})
        )

    async def _chat(self, request: ChatRequest) -> OpenAIAnswer:
        generator = self._generator(request.model)
        size = sum(len(message.content) for message in request.messages)
        prompt = await _off_the_loop(size, _chat_token_ids, generator, request.messages, request.template)
        params = _model_defaults(generator, request.params, request.left_out)
        choices = _choices(generator, [prompt], params, request.n, "messages", request.max_tokens_param)
        _check_vocabulary([prompt], generator.vocab_size, "messages")
        _check_vocabulary(
            [[token for token, _ in request.params.logit_bias]], generator.vocab_size, "logit_bias"
        )
        run = _Run(generator, request.model, "chatcmpl", "chat.completion", choices, chat=True)
        if request.stream:
            return OpenAIAnswer(200, events=run.stream(request.stream_options))
        await run.complete()
        return OpenAIAnswer(
            200,
            run.document(lambda choice: {"message": {"role": "assistant", "content": "".join(choice.text)}}),
        )

    # -- embeddings -------------------------------------------------------------------------------

    async def _embeddings(self, request: EmbeddingRequest) -> OpenAIAnswer:
        model = self._model(request.model)
        embedder = getattr(model, "embedder", None)
        if embedder is None:
            raise OpenAIError(f"The model `{request.model}` does not embed text.", 400, param="model")
        inputs = await _off_the_loop(
            _text_size(request.inputs), _token_ids, embedder, request.inputs, "input"
        )
        for index, ids in enumerate(inputs):
            if not ids:
                raise OpenAIError(f"input[{index}] has no tokens", param="input")
            if len(ids) > embedder.max_model_len:
                raise OpenAIError(
                    f"input[{index}] has {len(ids)} tokens; this model's maximum context length is "
                    f"{embedder.max_model_len} tokens",
                    param="input",
                    code="context_length_exceeded",
                )
        _check_vocabulary(inputs, embedder.vocab_size, "input")
        vectors = await embedder.embed(inputs)
        if request.dimensions is not None and vectors and request.dimensions != len(vectors[0]):
            raise OpenAIError(
                f"this model's embeddings have {len(vectors[0])} dimensions and cannot be shortened",
                param="dimensions",
            )
        tokens = sum(len(ids) for ids in inputs)
        data = [
            {
                "object": "embedding",
                "index": index,
                "embedding": _encode_vector(vector, request.encoding_format),
            }
            for index, vector in enumerate(vectors)
        ]
        return OpenAIAnswer(
            200,
            {
                "object": "list",
                "data": data,
                "model": request.model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )

    # -- rerank -------------------------------------------------------------------------------------

    async def _rerank(self, request: RerankRequest) -> OpenAIAnswer:
        reranker = getattr(self._model(request.model), "reranker", None)
        if reranker is None:
            raise OpenAIError(f"The model `{request.model}` does not rerank documents.", 400, param="model")
        relevance = await reranker.rerank(request.query, request.documents)
        order = sorted(range(len(request.documents)), key=lambda index: -relevance.scores[index])
        results = []
        for index in order[: request.top_n]:
            result: dict[str, Any] = {"index": index, "relevance_score": relevance.scores[index]}
            if request.return_documents:
                result["document"] = {"text": request.documents[index]}
            results.append(result)
        return OpenAIAnswer(
            200,
            {
                "id": f"rerank-{uuid.uuid4().hex}",
                "model": request.model,
                "usage": {"prompt_tokens": relevance.tokens, "total_tokens": relevance.tokens},
                "results": results,
            },
        )


# The fields already said in the log to be ignored: each is logged once, however many requests set it.
_LOGGED_IGNORED: set[str] = set()


def _log_once(ignored: list[Ignored]) -> None:
    for field_ignored in ignored:
        if field_ignored.name not in _LOGGED_IGNORED:
            _LOGGED_IGNORED.add(field_ignored.name)
            logger.warning(
                "%s (each answer to a request that sets it says so in a Warning header; "
                "this is logged once per field)",
                field_ignored.text,
            )


class _Run:
    """The choices of one request, generated together."""

    def __init__(
        self,
        generator: TextGenerator,
        model: str,
        id_prefix: str,
        kind: str,
        choices: list[_Choice],
        *,
        chat: bool,
    ):
        self.generator = generator
        self.model = model
        self.id = f"{id_prefix}-{uuid.uuid4().hex}"
        self.kind = kind
        self.created = int(time.time())
        self.choices = choices
        self.chat = chat
        self.metrics = generation_metrics.for_model(model)

    async def complete(self) -> None:
        """Generates every choice; the first to fail stops the others (no one would read them)."""
        tasks = [asyncio.ensure_future(self._generate(choice, None)) for choice in self.choices]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def document(self, body) -> dict:
        return {
            "id": self.id,
            "object": self.kind,
            "created": self.created,
            "model": self.model,
            "choices": [
                {
                    "index": choice.index,
                    **body(choice),
                    "logprobs": _logprobs(choice, self.chat),
                    "finish_reason": choice.finish_reason,
                    "stop_reason": choice.stop_reason,
                }
                for choice in self.choices
            ],
            "usage": self.usage(),
        }

    def usage(self) -> dict:
        prompt = sum(
            len(ids) for ids in {id(choice.prompt_ids): choice.prompt_ids for choice in self.choices}.values()
        )
        completion = sum(choice.token_count for choice in self.choices)
        return _usage(prompt, completion)

    async def stream(self, options: StreamOptions) -> AsyncIterator[bytes]:
        queue: asyncio.Queue = asyncio.Queue()
        tasks = [asyncio.ensure_future(self._generate(choice, queue)) for choice in self.choices]
        chunk_kind = f"{self.kind}.chunk" if self.chat else self.kind

        def event(
            choice: _Choice, content: dict, logprobs=None, finish_reason=None, stop_reason=None
        ) -> bytes:
            entry = {
                "index": choice.index,
                **content,
                "logprobs": logprobs,
                "finish_reason": finish_reason,
                "stop_reason": stop_reason,
            }
            return self._data(
                {**self._head(chunk_kind), "choices": [entry], **self._chunk_usage(options, choice)}
            )

        try:
            if self.chat:
                for choice in self.choices:
                    yield event(choice, {"delta": {"role": "assistant", "content": ""}})
            running = len(tasks)
            while running:
                item = await queue.get()
                if item is None:
                    running -= 1
                    continue
                if isinstance(item, BaseException):
                    error = item if isinstance(item, OpenAIError) else OpenAIError(str(item), 500)
                    yield b"data: " + orjson.dumps(error.to_json()) + b"\n\n"
                    yield _DONE
                    return
                choice, text, logprobs, finish_reason = item
                content = {"delta": {"content": text}} if self.chat else {"text": text}
                stop_reason = choice.stop_reason if finish_reason else None
                yield event(choice, content, logprobs, finish_reason, stop_reason)
            if options.include_usage:
                yield self._data({**self._head(chunk_kind), "choices": [], "usage": self.usage()})
            yield _DONE
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    @staticmethod
    def _chunk_usage(options: StreamOptions, choice: _Choice) -> dict:
        """What a chunk of a choice says of the usage. OpenAI, of include_usage: "All other chunks
        will also include a usage field, but with a null value"; with continuous_usage_stats, vLLM's,
        the choice's usage so far (its prompt, and its tokens), as vLLM counts it."""
        if not options.include_usage:
            return {}
        if not options.continuous_usage:
            return {"usage": None}
        return {"usage": _usage(len(choice.prompt_ids), choice.token_count)}

    def _head(self, kind: str) -> dict:
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model}

    @staticmethod
    def _data(document: dict) -> bytes:
        return b"data: " + orjson.dumps(document) + b"\n\n"

    async def _generate(self, choice: _Choice, queue: asyncio.Queue | None) -> None:
        """Runs one choice to its end, adding to `choice`, and to `queue` as the text comes."""
        stops = _StopMatcher(choice.params.stop, choice.params.include_stop_str_in_output)
        started = time.perf_counter()
        first_at = None
        self.metrics.started()
        steps = self.generator.generate(choice.prompt_ids, choice.params)
        unsent_logprobs = []  # of tokens whose text is held back: they go with the next text sent
        text_offset = 0  # of the first unsent token's text in the choice's: offsets count from the start
        stopped_here = False  # a stop string ended the sequence before the generator did
        try:
            async for step in steps:
                if first_at is None:
                    first_at = time.perf_counter()
                    self.metrics.first_token(first_at - started)
                    if choice.echo is not None:
                        text_offset = self._echo(choice, step, queue)
                        if choice.echo_only:
                            break
                choice.token_count += len(step.token_ids)
                text, stop_string = stops.feed(
                    step.text,
                    final=step.finish_reason is not None,
                    armed=choice.token_count >= choice.params.min_tokens,
                )
                finish = "stop" if stop_string is not None else step.finish_reason
                stopped_here = stop_string is not None and step.finish_reason is None
                if finish:
                    choice.stop_reason = stop_string if stop_string is not None else step.stop_reason
                choice.text.append(text)
                choice.logprobs.extend(step.logprobs or ())
                unsent_logprobs.extend(step.logprobs or ())
                if queue is not None and (text or finish):
                    logprobs = None
                    if choice.params.logprobs is not None:
                        logprobs = _format_logprobs(unsent_logprobs, self.chat, text_offset)
                    text_offset += sum(len(entry.token) for entry in unsent_logprobs)
                    unsent_logprobs = []
                    queue.put_nowait((choice, text, logprobs, finish))
                if finish:
                    choice.finish_reason = finish
                    break
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the engine's failure, reported on the request
            if queue is None:
                if isinstance(exc, OpenAIError):  # the generator refused the request itself
                    raise
                raise OpenAIError(f"generation failed: {type(exc).__name__}: {exc}", 500) from None
            queue.put_nowait(exc)
        finally:
            if stopped_here:
                await stop_generation(steps)
            await steps.aclose()
            self.metrics.finished(
                len(choice.prompt_ids), choice.token_count, started, first_at, time.perf_counter()
            )
            if queue is not None:
                queue.put_nowait(None)

    def _echo(self, choice: _Choice, first: GenerationStep, queue: asyncio.Queue | None) -> int:
        """Takes the prompt's log probabilities from the first step, and sends the echo as the stream's
        first text of `choice` (with max_tokens 0, its last). Returns the length of those entries' text,
        where the generated tokens' `text_offset`s begin."""
        choice.prompt_logprobs = first.prompt_logprobs or []
        if choice.echo_only:
            choice.finish_reason = "length"
        if queue is not None:
            logprobs = None
            if choice.params.logprobs is not None:
                logprobs = _format_logprobs(choice.prompt_logprobs, chat=False)
            queue.put_nowait((choice, choice.echo, logprobs, choice.finish_reason))
        return sum(len(entry.token) for entry in choice.prompt_logprobs)


class _StopMatcher:
    """Finds stop strings in generated text, holding back a tail that could be the start of one.
    With `include_stop` (vLLM's include_stop_str_in_output) the text sent ends with the stop string."""

    def __init__(self, stops: tuple[str, ...], include_stop: bool = False):
        self.stops = stops
        self.include_stop = include_stop
        self.longest = max((len(stop) for stop in stops), default=0)
        self.pending = ""

    def feed(self, text: str, *, final: bool, armed: bool = True) -> tuple[str, str | None]:
        """The text that can be sent now, and the stop string that ended the sequence, if one did.
        Until `armed` (min_tokens generated), text is sent as it comes and no stop string ends it, as
        in vLLM."""
        if not self.stops:
            return text, None
        searched = len(self.pending)  # held back unmatched: a match now ends in the new text
        self.pending += text
        if not armed:
            emitted, self.pending = self.pending, ""
            return emitted, None
        found = [
            (index, stop)
            for stop in self.stops
            if (index := self.pending.find(stop, max(searched - len(stop) + 1, 0))) >= 0
        ]
        if found:
            cut, stop = min(found, key=lambda match: match[0])
            emitted, self.pending = self.pending[: cut + len(stop) * self.include_stop], ""
            return emitted, stop
        if final:
            emitted, self.pending = self.pending, ""
            return emitted, None
        keep = self.longest - 1  # the longest tail that could begin a stop string
        emitted = self.pending[: max(len(self.pending) - keep, 0)]
        self.pending = self.pending[len(emitted) :]
        return emitted, None


def _context_exceeded(limit: int, prompt_tokens: int, wanted: int, prompt_param: str) -> str:
    """OpenAI's words for a request longer than the context, for a chat's messages or a prompt."""
    total = prompt_tokens + wanted
    if prompt_param == "messages":
        return (
            f"This model's maximum context length is {limit} tokens. However, you requested {total} tokens "
            f"({prompt_tokens} in the messages, {wanted} in the completion). "
            "Please reduce the length of the messages or completion."
        )
    return (
        f"This model's maximum context length is {limit} tokens, however you requested {total} tokens "
        f"({prompt_tokens} in your prompt; {wanted} for the completion). "
        "Please reduce your prompt; or completion length."
    )


def _usage(prompt: int, completion: int) -> dict:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _choices(
    generator: TextGenerator,
    prompts: list[list[int]],
    params: SamplingParams,
    n: int,
    prompt_param: str,
    max_tokens_param: str = "max_tokens",
) -> list[_Choice]:
    refused = generator.unsupported(params)
    if refused == "prompt_logprobs":
        raise OpenAIError(
            "echo with logprobs (the prompt's own log probabilities) is not supported by this model's backend",
            param="echo",
        )
    if refused is not None:
        raise OpenAIError(f"{refused} is not supported by this model's backend", param=refused)
    cap = getattr(generator, "max_logprobs", DEFAULT_MAX_LOGPROBS)
    check_logprobs(params, cap, generator.vocab_size, chat=prompt_param == "messages")
    if len(prompts) * n > MAX_SEQUENCES:
        raise OpenAIError(
            f"this request asks for {len(prompts) * n} sequences ({len(prompts)} prompts, n={n}): at most "
            f"{MAX_SEQUENCES} are generated for one request; send the prompts in several",
            param="n" if n > 1 else prompt_param,
        )
    limit = generator.max_model_len
    # A chat that names no max_tokens gets what the context leaves, or less where the model's
    # generation_config.json says max_new_tokens (as in vLLM)
    recommended = _defaults(generator).get("max_tokens")
    choices = []
    for prompt_number, ids in enumerate(prompts):
        if not ids:
            raise OpenAIError("the prompt is empty", param="prompt")
        wanted = params.max_tokens
        if wanted is None:
            wanted = min(max(limit - len(ids), 0), int(recommended or limit))
        if params.min_tokens > wanted:
            raise OpenAIError(
                f"min_tokens ({params.min_tokens}) must be at most {max_tokens_param} ({wanted})",
                param="min_tokens",
            )
        if len(ids) + wanted > limit or len(ids) >= limit:
            raise OpenAIError(
                _context_exceeded(limit, len(ids), wanted, prompt_param),
                param=prompt_param if len(ids) >= limit or params.max_tokens is None else max_tokens_param,
                code="context_length_exceeded",
            )
        for copy in range(n):
            seed = None if params.seed is None else (params.seed + copy) % SEED_RANGE
            # max_tokens 0 (echo alone): one token is generated for the prompt's log probabilities
            own = replace(params, max_tokens=wanted or 1, seed=seed)
            choices.append(_Choice(prompt_number * n + copy, ids, own, echo_only=wanted == 0))
    return choices


def _defaults(generator: TextGenerator) -> dict[str, float]:
    return getattr(generator, "sampling_defaults", None) or {}


def _model_defaults(
    generator: TextGenerator, params: SamplingParams, left_out: frozenset[str]
) -> SamplingParams:
    """The request's sampling with the model's recommended values for what it left out."""
    return with_model_defaults(params, left_out, _defaults(generator))


# Tokenizing a long prompt takes seconds: it runs on a worker thread, and the event loop serves the
# other requests meanwhile. A short one (most) is tokenized at once, sparing the hop to the thread.
INLINE_TEXT = 16 * 1024  # characters (or token ids to decode)


async def _off_the_loop(size: int, work: Callable[..., T], *args: Any) -> T:
    return work(*args) if size <= INLINE_TEXT else await asyncio.to_thread(work, *args)


def _text_size(prompts: list[str | list[int]]) -> int:
    return sum(len(prompt) for prompt in prompts if isinstance(prompt, str))


def _ids_size(choices: list[_Choice]) -> int:
    return sum(len(choice.prompt_ids) for choice in choices)


def _token_ids(
    tokenizer: TextGenerator | Embedder, prompts: list[str | list[int]], param: str
) -> list[list[int]]:
    return [
        _encode(tokenizer, prompt, param, _prompt_name(param, index, len(prompts)))
        if isinstance(prompt, str)
        else prompt
        for index, prompt in enumerate(prompts)
    ]


def _prompt_name(param: str, index: int, count: int) -> str:
    if param == "prompt" and count == 1:
        return "your prompt"
    return f"{param}[{index}]"


def _chat_token_ids(
    generator: TextGenerator, messages: list[ChatMessage], template: ChatTemplateOptions
) -> list[int]:
    chat = generator.chat_prompt(messages, template)
    return _encode(generator, chat, "messages", "the chat (the messages as its template writes them)")


def _encode(tokenizer: TextGenerator | Embedder, text: str, param: str, name: str) -> list[int]:
    """The tokens of `text`; a text far longer than the context is refused before it is tokenized whole."""
    limit = tokenizer.max_model_len
    piece = long_prompts.piece_length(getattr(tokenizer, "max_chars_per_token", None), limit)
    overflow = long_prompts.overflow(text, tokenizer.encode, piece, limit)
    if overflow is not None:
        raise OpenAIError(
            f"This model's maximum context length is {limit} tokens, however {name} is longer than that: its first "
            f"{overflow.characters} characters alone are {overflow.tokens} tokens or more. "
            "Please reduce its length.",
            param=param,
            code="context_length_exceeded",
        )
    return tokenizer.encode(text)


def _echoes(generator: TextGenerator, choices: list[_Choice]) -> list[str]:
    return [generator.decode(choice.prompt_ids) for choice in choices]


def _check_vocabulary(prompts: list[list[int]], vocab_size: int, param: str) -> None:
    """Refuses a prompt with a token id the model has no embedding for."""
    for ids in prompts:
        outside = next((token for token in ids if not 0 <= token < vocab_size), None)
        if outside is not None:
            raise OpenAIError(
                f"token id {outside} is not in this model's vocabulary of {vocab_size} tokens", param=param
            )


def _generator(model: Any) -> TextGenerator | None:
    return getattr(model, "generator", None)


def _logprobs(choice: _Choice, chat: bool) -> dict | None:
    if choice.params.logprobs is None:
        return None
    return _format_logprobs(choice.prompt_logprobs + choice.logprobs, chat)


def _format_logprobs(entries: list, chat: bool, text_offset: int = 0) -> dict:
    """OpenAI's logprobs of `entries`; a completion's `text_offset`s count on from `text_offset`."""
    if chat:
        return {
            "content": [
                {
                    "token": entry.token,
                    "logprob": entry.logprob,
                    "bytes": list(entry.own_bytes()),
                    "top_logprobs": [
                        {"token": token, "logprob": logprob, "bytes": list(own)}
                        for token, logprob, own in entry.alternatives()
                    ],
                }
                for entry in entries
            ]
        }
    offsets, offset = [], text_offset
    for entry in entries:
        offsets.append(offset)
        offset += len(entry.token)
    return {
        "tokens": [entry.token for entry in entries],
        "token_logprobs": [entry.logprob for entry in entries],
        # OpenAI: "the API will always return the logprob of the sampled token, so there may be up to
        # logprobs+1 elements". An echoed prompt's first token has none, nor alternatives (null).
        "top_logprobs": [
            None if entry.logprob is None else {**dict(entry.top), entry.token: entry.logprob}
            for entry in entries
        ],
        "text_offset": offsets,
    }


def _encode_vector(vector: list[float], encoding: str) -> list[float] | str:
    if encoding == "base64":
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
    return [float(value) for value in vector]


def _json(body: bytes) -> Any:
    if not body:
        raise OpenAIError("The request body is empty; it must be a JSON object.")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise OpenAIError(f"We could not parse the JSON body of your request: {exc}") from None


class _MethodNotAllowed(OpenAIError):
    def __init__(self, method: str, allowed: str) -> None:
        super().__init__(f"Method {method} is not allowed here; use {allowed}", 405)
        self.allowed = allowed


def _only(method: str, allowed: str) -> None:
    if method != allowed:
        raise _MethodNotAllowed(method, allowed)
