"""The OpenAI API's requests and errors, as KServe's huggingface runtime serves them under `/openai/v1`.

Requests are read into plain values with every field checked: a field modelplane acts on is validated
against OpenAI's ranges, a field it cannot act on is refused with a 400 naming it (unless it carries its
default value), a field that changes no answer (OpenAI's caching, storage and accounting hints) is
accepted and said to be ignored (`Ignored`: the server writes it in a `Warning` header), and an unknown
field is refused as OpenAI refuses it. Errors are OpenAI's error object:
`{"error": {"message", "type", "param", "code"}}`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from typing import Any

from modelplane.protocol.errors import ModelplaneError


class OpenAIError(ModelplaneError):
    """A refused OpenAI request, written as OpenAI's error object."""

    def __init__(
        self,
        message: str,
        status_code: int = 400,
        *,
        param: str | None = None,
        code: str | None = None,
        error_type: str | None = None,
    ):
        super().__init__(message)
        self.status_code = status_code
        self.param = param
        self.code = code
        self.error_type = error_type or _TYPES.get(
            status_code, "server_error" if status_code >= 500 else "invalid_request_error"
        )

    def to_json(self) -> dict:
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }


_TYPES = {
    400: "invalid_request_error",
    404: "invalid_request_error",
    413: "invalid_request_error",
    503: "server_error",
}


def model_not_found(name: object) -> OpenAIError:
    return OpenAIError(f"The model `{name}` does not exist.", 404, param="model", code="model_not_found")


# Temperatures below this are greedy, as in vLLM: dividing logits by a smaller one can overflow them.
GREEDY_BELOW = 1e-5
# The most alternatives a request's logprobs (completions) or top_logprobs (chat) may ask for at each
# place (the likeliest tokens there), unless the model says otherwise: vLLM's default max_logprobs.
DEFAULT_MAX_LOGPROBS = 20
# vLLM's seeds are 64-bit signed integers; -1 asks for an unseeded generation, as in vLLM.
SEED_BOUNDS = (-(1 << 63), (1 << 63) - 1)
UNSEEDED = -1


@dataclass(frozen=True)
class SamplingParams:
    """How one sequence is generated."""

    max_tokens: int | None  # None: as many as the context leaves
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    logprobs: int | None = None  # None: no log probabilities; k: the chosen token's and the k likeliest
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logit_bias: tuple[tuple[int, float], ...] = ()  # (token id, bias added to its logit), by token id
    # vLLM's extensions, as its OpenAI server takes them (and so KServe's, in front of it)
    top_k: int = 0  # 0: every token
    min_p: float = 0.0
    repetition_penalty: float = 1.0  # over the prompt's tokens and the generated ones
    min_tokens: int = 0  # no end-of-sequence token, stop token or stop string before this many
    ignore_eos: bool = False
    stop_token_ids: tuple[int, ...] = ()
    include_stop_str_in_output: bool = False
    # Log probabilities of the prompt's tokens (a completion's echo with logprobs): None, or as logprobs
    prompt_logprobs: int | None = None

    @property
    def greedy(self) -> bool:
        return self.temperature < GREEDY_BELOW


# The sampling parameters a model's generation_config.json may recommend (vLLM reads these): a
# request that leaves one out gets the model's value (`with_model_defaults`).
MODEL_DEFAULTABLE = ("temperature", "top_p", "top_k", "min_p", "repetition_penalty")


def with_model_defaults(
    params: SamplingParams, left_out: frozenset[str], defaults: dict[str, float]
) -> SamplingParams:
    """`params` with the model's recommended values for the fields the request left out."""
    chosen = {name: value for name, value in defaults.items() if name in left_out}
    return replace(params, **chosen) if chosen else params


@dataclass(frozen=True)
class StreamOptions:
    include_usage: bool = False  # a last chunk with the usage
    continuous_usage: bool = False  # with include_usage: the usage so far in every chunk (vLLM's)


@dataclass(frozen=True)
class Ignored:
    """A field a request set that this server accepts and does not act on; the answer says so."""

    name: str  # the field's, as the request spells it (`stream_options.continuous_usage_stats`)
    reason: str

    @property
    def text(self) -> str:
        return f'request field "{self.name}" is ignored: {self.reason}'


@dataclass(frozen=True)
class CompletionRequest:
    model: str
    prompts: list[str | list[int]]  # text, or token ids
    params: SamplingParams
    n: int = 1
    stream: bool = False
    stream_options: StreamOptions = StreamOptions()
    echo: bool = False
    ignored: tuple[Ignored, ...] = ()
    left_out: frozenset[str] = frozenset()  # of MODEL_DEFAULTABLE: the model's defaults apply


@dataclass(frozen=True)
class ChatMessage:
    role: str
    content: str
    name: str | None = None
    tool_calls: tuple[dict, ...] = ()  # an assistant's calls, each function's arguments read from JSON
    tool_call_id: str | None = None  # a tool's answer: the call it answers
    extra: dict[str, Any] = field(default_factory=dict)  # fields for the chat template alone


@dataclass(frozen=True)
class ChatTemplateOptions:
    """How the chat template renders the messages: vLLM's request fields for it."""

    add_generation_prompt: bool = True  # the template opens the assistant's answer
    continue_final_message: bool = False  # the answer goes on from the last (assistant) message's text
    kwargs: dict[str, Any] = field(default_factory=dict)  # chat_template_kwargs: more template variables


@dataclass(frozen=True)
class ChatRequest:
    model: str
    messages: list[ChatMessage]
    params: SamplingParams
    n: int = 1
    stream: bool = False
    stream_options: StreamOptions = StreamOptions()
    max_tokens_param: str = "max_tokens"  # or max_completion_tokens: errors name the field it gave
    ignored: tuple[Ignored, ...] = ()
    template: ChatTemplateOptions = ChatTemplateOptions()
    left_out: frozenset[str] = frozenset()  # of MODEL_DEFAULTABLE: the model's defaults apply


@dataclass(frozen=True)
class EmbeddingRequest:
    model: str
    inputs: list[str | list[int]]
    encoding_format: str = "float"
    dimensions: int | None = None
    ignored: tuple[Ignored, ...] = ()


@dataclass(frozen=True)
class RerankRequest:
    """`/rerank`, as vLLM and Cohere take it: the documents to order by their relevance to the query."""

    model: str
    query: str
    documents: list[str]
    top_n: int | None = None  # None: every document
    return_documents: bool = True


@dataclass
class _Fields:
    """The body of a request, read field by field; whatever is left at the end is unknown."""

    body: dict
    seen: set[str] = field(default_factory=set)
    ignored: list[Ignored] = field(default_factory=list)

    def get(self, name: str, default: Any = None) -> Any:
        self.seen.add(name)
        value = self.body.get(name, default)
        return default if value is None else value

    def unknown(self) -> list[str]:
        return sorted(set(self.body) - self.seen)


# Fields whose default is the only value modelplane can honour; any other value is refused.
# (null is every field's default.)
_ONLY_DEFAULT = {
    "best_of": (None, 1),
    "suffix": (None, ""),
    "tools": (None,),  # an empty list is refused first (`_check_tool_usage`), as vLLM refuses it
    "tool_choice": (None, "none"),
    "functions": (None, []),
    "function_call": (None, "none", "auto"),
    "parallel_tool_calls": (None, True, False),
    "response_format": (None, {"type": "text"}),
    "modalities": (None, ["text"]),
    "audio": (None,),
    "reasoning_effort": (None,),
    "verbosity": (None,),
    "web_search_options": (None,),
    "moderation": (None,),  # OpenAI's moderation of the input and output, which may block the answer
}
# Fields that do not change the answer, at OpenAI either: they steer its caching, storage, accounting
# or speed (`prediction`: text the answer is expected to repeat). Accepted on completions, chat and
# embeddings, of their type, and ignored, which the answer says (a Warning header): their type, and why.
_IGNORED = {
    "user": (str, "this server keeps no record of end users (OpenAI's abuse monitoring reads it)"),
    "metadata": (dict, "it tags stored completions, and this server stores none"),
    "store": (bool, "this server stores no completions"),
    "service_tier": (str, "this server has one processing tier"),
    "prompt_cache_key": (str, "this server keeps no prompt cache"),
    "prompt_cache_retention": (str, "this server keeps no prompt cache"),
    "prompt_cache_options": (dict, "this server keeps no prompt cache"),
    "safety_identifier": (
        str,
        "this server keeps no record of end users (OpenAI's abuse monitoring reads it)",
    ),
    "prediction": (
        dict,
        "predicted output only speeds OpenAI's generation up; the answer is the same without it",
    ),
}
# Values of those fields that ask for what the server does anyway: no warning.
_HONOURED = {"store": (False,)}
_TYPE_NAMES = {str: "a string", dict: "an object", bool: "true or false"}


def parse_completion(body: object) -> CompletionRequest:
    fields = _fields(body)
    model = _model(fields)
    prompts = _prompts(fields.get("prompt"), "prompt", required=True)
    echo = _bool(fields.get("echo", False), "echo")
    logprobs = _completion_logprobs(fields)
    # With echo, as in vLLM, logprobs covers the prompt's tokens too, and max_tokens 0 answers the
    # prompt alone: how a prompt is scored (lm-evaluation-harness's loglikelihood, say).
    params = _sampling(fields, max_tokens_default=16, logprobs=logprobs, least_max_tokens=0 if echo else 1)
    request = CompletionRequest(
        model=model,
        prompts=prompts,
        params=replace(params, prompt_logprobs=logprobs if echo else None),
        n=_int(fields.get("n", 1), "n", 1, 128),
        stream=_bool(fields.get("stream", False), "stream"),
        stream_options=_stream_options(fields),
        echo=echo,
        left_out=_left_out(fields),
    )
    _refuse_the_rest(fields)
    return replace(request, ignored=tuple(fields.ignored))


def parse_chat(body: object) -> ChatRequest:
    fields = _fields(body)
    model = _model(fields)
    messages = _messages(fields.get("messages"), fields.ignored)
    max_tokens_param = _max_tokens_param(fields)
    request = ChatRequest(
        model=model,
        messages=messages,
        params=_sampling(
            fields,
            max_tokens_default=None,
            max_tokens_param=max_tokens_param,
            logprobs=_chat_logprobs(fields),
        ),
        n=_int(fields.get("n", 1), "n", 1, 128),
        stream=_bool(fields.get("stream", False), "stream"),
        stream_options=_stream_options(fields),
        max_tokens_param=max_tokens_param,
        template=_template_options(fields, messages),
        left_out=_left_out(fields),
    )
    _refuse_the_rest(fields)
    return replace(request, ignored=tuple(fields.ignored))


# Arguments of transformers' apply_chat_template that chat_template_kwargs may not set: modelplane sets
# them, or reads its answer as text.
_TEMPLATE_ARGUMENTS = frozenset(
    {
        "conversation", "messages", "tools", "documents", "chat_template", "add_generation_prompt",
        "continue_final_message", "tokenize", "padding", "truncation", "max_length", "return_tensors",
        "return_dict", "return_assistant_tokens_mask", "tokenizer_kwargs",
    }
)  # fmt: skip


def _left_out(fields: _Fields) -> frozenset[str]:
    return frozenset(name for name in MODEL_DEFAULTABLE if fields.body.get(name) is None)


def _template_options(fields: _Fields, messages: list[ChatMessage]) -> ChatTemplateOptions:
    generation_prompt = _bool(fields.get("add_generation_prompt", True), "add_generation_prompt")
    continue_final = _bool(fields.get("continue_final_message", False), "continue_final_message")
    if continue_final and generation_prompt:
        raise OpenAIError(
            "continue_final_message needs add_generation_prompt: false (the answer goes on from the "
            "last message instead of opening a new one)",
            param="continue_final_message",
        )
    if continue_final and messages[-1].role != "assistant":
        raise OpenAIError(
            "continue_final_message needs the last message to be the assistant's",
            param="continue_final_message",
        )
    kwargs = fields.get("chat_template_kwargs", {})
    if not isinstance(kwargs, dict):
        raise OpenAIError("chat_template_kwargs must be an object", param="chat_template_kwargs")
    reserved = sorted(set(kwargs) & _TEMPLATE_ARGUMENTS)
    if reserved:
        raise OpenAIError(
            f"chat_template_kwargs may not set {', '.join(reserved)}",
            param=f"chat_template_kwargs.{reserved[0]}",
        )
    return ChatTemplateOptions(generation_prompt, continue_final, kwargs)


MAX_EMBEDDING_INPUTS = 2048  # OpenAI's limit of one request


def parse_embedding(body: object) -> EmbeddingRequest:
    fields = _fields(body)
    model = _model(fields)
    inputs = _prompts(fields.get("input"), "input", required=True)
    if len(inputs) > MAX_EMBEDDING_INPUTS:
        raise OpenAIError(
            f"'input' holds {len(inputs)} inputs: at most {MAX_EMBEDDING_INPUTS} are embedded in one request",
            param="input",
        )
    if "" in inputs:
        raise OpenAIError(
            f"input[{inputs.index('')}] is an empty string, which has nothing to embed", param="input"
        )
    encoding = fields.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        raise OpenAIError("encoding_format must be 'float' or 'base64'", param="encoding_format")
    dimensions = fields.get("dimensions")
    if dimensions is not None:
        dimensions = _int(dimensions, "dimensions", 1, 1 << 20)
    request = EmbeddingRequest(model=model, inputs=inputs, encoding_format=encoding, dimensions=dimensions)
    _refuse_the_rest(fields)
    return replace(request, ignored=tuple(fields.ignored))


def parse_rerank(body: object) -> RerankRequest:
    # Neither Cohere's rerank nor vLLM's has OpenAI's caching and accounting fields: they are unknown here.
    fields = _fields(body, ignorable=False)
    model = _model(fields)
    query = fields.get("query")
    if not isinstance(query, str) or not query:
        raise OpenAIError("'query' must be a non-empty string", param="query")
    top_n = fields.get("top_n", 0)
    request = RerankRequest(
        model=model,
        query=query,
        documents=_documents(fields.get("documents")),
        top_n=_int(top_n, "top_n", 0, 1 << 31) or None,  # 0: every document, as vLLM reads it
        return_documents=_bool(fields.get("return_documents", True), "return_documents"),
    )
    _refuse_the_rest(fields)
    return request


def _documents(value: object) -> list[str]:
    """Texts, or Cohere's and vLLM's `{"text": ...}` objects (`"type": "text"` allowed)."""
    if isinstance(value, list) and value:
        texts = [
            item.get("text")
            if isinstance(item, dict) and set(item) <= {"text", "type"} and item.get("type", "text") == "text"
            else item
            for item in value
        ]
        if all(isinstance(text, str) for text in texts):
            return texts
    raise OpenAIError(
        "'documents' must be a non-empty list of strings or of {\"text\": string} objects", param="documents"
    )


def _fields(body: object, *, ignorable: bool = True) -> _Fields:
    """The request's fields; with `ignorable`, OpenAI's fields that change no answer are read, checked
    for their type and noted as ignored (else they are unknown)."""
    if not isinstance(body, dict):
        raise OpenAIError("The request body must be a JSON object.")
    fields = _Fields(body)
    if not ignorable:
        return fields
    for name, (kind, reason) in _IGNORED.items():
        value = fields.get(name)
        if value is None:
            continue
        if not isinstance(value, kind):
            raise OpenAIError(f"{name} must be {_TYPE_NAMES[kind]}, got {value!r}", param=name)
        if value not in _HONOURED.get(name, ()):
            fields.ignored.append(Ignored(name, reason))
    return fields


def _model(fields: _Fields) -> str:
    model = fields.get("model")
    if not isinstance(model, str) or not model:
        raise OpenAIError("you must provide a model parameter", param="model")
    return model


def _prompts(value: object, param: str, *, required: bool) -> list[str | list[int]]:
    if value is None:
        if required:
            raise OpenAIError(f"'{param}' is a required property", param=param)
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value:
        if all(isinstance(item, str) for item in value):
            return list(value)
        if all(_is_token(item) for item in value):
            return [list(value)]
        if all(isinstance(item, list) and item and all(_is_token(t) for t in item) for item in value):
            return [list(item) for item in value]
    raise OpenAIError(
        f"'{param}' must be a string, a list of strings, a list of token ids or a list of lists of token ids",
        param=param,
    )


def _is_token(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


# What a message may hold, and which roles each field belongs to (None: every role). A chat template is
# given each of them; a field of another role would reach none, and is refused. Any other field goes to
# the template as it is, which reads it or not (as transformers' `apply_chat_template` hands a template
# whatever a message holds: `reasoning_content` of a replayed answer, say).
_MESSAGE_FIELDS = {
    "role": None,
    "content": None,
    "name": None,
    "tool_calls": ("assistant",),
    "tool_call_id": ("tool",),
}
# OpenAI's message fields no template is given: accepted when null (as a replayed answer holds them),
# else refused.
_MESSAGE_NULL_ONLY = ("refusal", "audio", "function_call", "annotations")


def _messages(value: object, ignored: list[Ignored]) -> list[ChatMessage]:
    if not isinstance(value, list) or not value:
        raise OpenAIError("'messages' must be a non-empty list of messages", param="messages")
    messages = []
    for index, item in enumerate(value):
        where = f"messages[{index}]"
        if not isinstance(item, dict):
            raise OpenAIError(f"{where} must be an object with 'role' and 'content'", param=where)
        role = item.get("role")
        if role not in ("system", "developer", "user", "assistant", "tool"):
            raise OpenAIError(
                f"{where}.role must be one of system, developer, user, assistant, tool; got {role!r}",
                param=f"{where}.role",
            )
        extra = _template_fields(item, role, where)
        messages.append(
            ChatMessage(
                role,
                _content(item.get("content"), where, ignored),
                name=_optional_string(item.get("name"), f"{where}.name"),
                tool_calls=_tool_calls(item.get("tool_calls"), where) if role == "assistant" else (),
                tool_call_id=(
                    _optional_string(item.get("tool_call_id"), f"{where}.tool_call_id")
                    if role == "tool"
                    else None
                ),
                extra=extra,
            )
        )
    return messages


def _template_fields(item: dict, role: str, where: str) -> dict[str, Any]:
    """The fields of a message beyond those modelplane reads, for its chat template; refuses a field of
    another role's, or one of OpenAI's that no template is given."""
    extra = {}
    for name, value in item.items():
        roles = _MESSAGE_FIELDS.get(name)
        if name in _MESSAGE_FIELDS and (roles is None or role in roles or value in (None, [])):
            continue
        param = f"{where}.{name}"
        if name in _MESSAGE_FIELDS:
            raise OpenAIError(
                f"{param}: only {' and '.join(roles)} messages have {name}; this is a {role} message",
                param=param,
            )
        if name in _MESSAGE_NULL_ONLY:
            if value is None:
                continue
            raise OpenAIError(
                f"{param} is not supported by this server (only null)",
                param=param,
                code="unsupported_parameter",
            )
        extra[name] = value
    return extra


def _optional_string(value: object, param: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise OpenAIError(f"{param} must be a string", param=param)


def _tool_calls(value: object, where: str) -> tuple[dict, ...]:
    """An assistant's tool calls, as chat templates take them: each function's `arguments` (JSON text,
    as OpenAI sends them) read."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise OpenAIError(f"{where}.tool_calls must be a list of tool calls", param=f"{where}.tool_calls")
    return tuple(_tool_call(call, f"{where}.tool_calls[{index}]") for index, call in enumerate(value))


def _tool_call(call: object, where: str) -> dict:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise OpenAIError(
            f"{where} must be an object with a 'function' that has a 'name' and 'arguments'", param=where
        )
    return {**call, "function": {**function, "arguments": _arguments(function.get("arguments"), where)}}


def _arguments(arguments: object, where: str) -> object:
    """A call's arguments, as vLLM gives them to templates: JSON text read, none an empty object."""
    if not arguments:
        return {}
    if not isinstance(arguments, str):
        return arguments
    try:
        return json.loads(arguments)
    except (json.JSONDecodeError, RecursionError) as exc:  # RecursionError: nested too deep
        param = f"{where}.function.arguments"
        raise OpenAIError(f"{param} is not valid JSON: {exc}", param=param) from None


# A text part's field that only steers OpenAI's prompt cache: accepted, of its type, and said to be ignored.
_CACHE_BREAKPOINT = "prompt_cache_breakpoint"
_BREAKPOINT_IGNORED = Ignored(
    f"messages[*].content[*].{_CACHE_BREAKPOINT}", "this server keeps no prompt cache"
)


def _content(content: object, where: str, ignored: list[Ignored]) -> str:
    if isinstance(content, str):
        return content
    if content is None:
        return ""
    if isinstance(content, list):
        texts = []
        for index, part in enumerate(content):
            if (
                not isinstance(part, dict)
                or part.get("type") != "text"
                or not isinstance(part.get("text"), str)
                or set(part) - {"type", "text", _CACHE_BREAKPOINT}
            ):
                raise OpenAIError(
                    f"{where}.content: only text parts ({{'type': 'text', 'text': ...}}) are supported",
                    param=f"{where}.content",
                )
            cache_breakpoint = part.get(_CACHE_BREAKPOINT)
            if cache_breakpoint is not None:
                if not isinstance(cache_breakpoint, dict):
                    param = f"{where}.content[{index}].{_CACHE_BREAKPOINT}"
                    raise OpenAIError(f"{param} must be an object", param=param)
                if _BREAKPOINT_IGNORED not in ignored:
                    ignored.append(_BREAKPOINT_IGNORED)
            texts.append(part["text"])
        return "\n".join(texts)
    raise OpenAIError(f"{where}.content must be a string or a list of text parts", param=f"{where}.content")


def _max_tokens_param(fields: _Fields) -> str:
    """The name a chat request gives its max_tokens by: `max_completion_tokens` (OpenAI's current name,
    which wins when both are given, as in vLLM; a different `max_tokens` beside it is said to be
    ignored) or `max_tokens`."""
    newer, older = fields.get("max_completion_tokens"), fields.get("max_tokens")
    if newer is None:
        return "max_tokens"
    if older is not None and older != newer:
        fields.ignored.append(Ignored("max_tokens", "max_completion_tokens, given too, wins"))
    return "max_completion_tokens"


def _sampling(
    fields: _Fields,
    *,
    max_tokens_default: int | None,
    logprobs: int | None,
    max_tokens_param: str = "max_tokens",
    least_max_tokens: int = 1,
) -> SamplingParams:
    max_tokens = fields.get(max_tokens_param, max_tokens_default)
    if max_tokens is not None:
        max_tokens = _int(max_tokens, max_tokens_param, least_max_tokens, 1 << 31)
    seed = fields.get("seed")
    if seed is not None:
        seed = _int(seed, "seed", *SEED_BOUNDS)
        if seed == UNSEEDED:
            seed = None
    return SamplingParams(
        max_tokens=max_tokens,
        temperature=_number(fields.get("temperature", 1.0), "temperature", 0, 2),
        top_p=_number(fields.get("top_p", 1.0), "top_p", 0, 1, open_low=True),
        seed=seed,
        stop=_stop(fields.get("stop")),
        logprobs=logprobs,
        presence_penalty=_number(fields.get("presence_penalty", 0.0), "presence_penalty", -2, 2),
        frequency_penalty=_number(fields.get("frequency_penalty", 0.0), "frequency_penalty", -2, 2),
        logit_bias=_logit_bias(fields.get("logit_bias")),
        **_vllm_sampling(fields),
    )


def _logit_bias(value: object) -> tuple[tuple[int, float], ...]:
    """OpenAI's `logit_bias`: token ids (as strings, JSON's keys) to a bias from -100 to 100."""
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise OpenAIError("logit_bias must be an object of token ids to biases", param="logit_bias")
    biases = []
    for key, bias in value.items():
        if not (key.isascii() and key.isdigit()):
            raise OpenAIError(f"logit_bias keys are token ids, not {key!r}", param="logit_bias")
        if isinstance(bias, bool) or not isinstance(bias, int | float) or not -100 <= bias <= 100:
            raise OpenAIError(
                f"logit_bias values are numbers from -100 to 100, not {bias!r} (token {key})",
                param="logit_bias",
            )
        biases.append((int(key), float(bias)))
    return tuple(sorted(biases))


def _vllm_sampling(fields: _Fields) -> dict[str, Any]:
    """vLLM's sampling extensions (its `extra_body` fields), checked as vLLM checks them."""
    top_k = _int(fields.get("top_k", 0), "top_k", -1, 1 << 31)
    stop_token_ids = fields.get("stop_token_ids", [])
    if not isinstance(stop_token_ids, list) or not all(_is_token(token) for token in stop_token_ids):
        raise OpenAIError("stop_token_ids must be a list of token ids", param="stop_token_ids")
    return {
        "top_k": max(top_k, 0),  # -1, vLLM's older "every token", is 0
        "min_p": _number(fields.get("min_p", 0.0), "min_p", 0, 1),
        "repetition_penalty": _number(
            fields.get("repetition_penalty", 1.0), "repetition_penalty", 0, math.inf, open_low=True
        ),
        "min_tokens": _int(fields.get("min_tokens", 0), "min_tokens", 0, 1 << 31),
        "ignore_eos": _bool(fields.get("ignore_eos", False), "ignore_eos"),
        "stop_token_ids": tuple(stop_token_ids),
        "include_stop_str_in_output": _bool(
            fields.get("include_stop_str_in_output", False), "include_stop_str_in_output"
        ),
    }


def _completion_logprobs(fields: _Fields) -> int | None:
    value = fields.get("logprobs")
    return None if value is None else _logprobs_count(value, "logprobs")


def _chat_logprobs(fields: _Fields) -> int | None:
    wanted = _bool(fields.get("logprobs", False), "logprobs")
    top = fields.get("top_logprobs")
    if top is not None:
        top = _logprobs_count(top, "top_logprobs")
        if not wanted:
            raise OpenAIError("top_logprobs needs logprobs: true", param="top_logprobs")
    return (top or 0) if wanted else None


def _logprobs_count(value: object, param: str) -> int:
    """How many likeliest tokens a request asks for (the model's cap is checked where it is known:
    `check_logprobs`)."""
    return _int(value, param, 0, 1 << 31)


def check_logprobs(params: SamplingParams, cap: int, vocab_size: int, *, chat: bool) -> None:
    """Refuses, in vLLM's words, more likeliest tokens at each place than the model's `cap` (its
    max_logprobs; -1: the whole vocabulary)."""
    allowed = vocab_size if cap == -1 else cap
    if params.logprobs is not None and params.logprobs > allowed:
        raise OpenAIError(
            f"Requested sample logprobs of {params.logprobs}, which is greater than max allowed: {allowed}",
            param="top_logprobs" if chat else "logprobs",
        )


_STREAM_OPTIONS = frozenset({"include_usage", "include_obfuscation", "continuous_usage_stats"})


def _stream_options(fields: _Fields) -> StreamOptions:
    options = fields.get("stream_options")
    if options is None:
        return StreamOptions()
    if not isinstance(options, dict) or set(options) - _STREAM_OPTIONS:
        raise OpenAIError(
            "stream_options takes include_usage, include_obfuscation and continuous_usage_stats",
            param="stream_options",
        )
    if not fields.get("stream", False):
        raise OpenAIError("stream_options is only allowed when stream is true", param="stream_options")
    include_usage = _optional_bool(options.get("include_usage"), "stream_options.include_usage")
    continuous = _optional_bool(
        options.get("continuous_usage_stats"), "stream_options.continuous_usage_stats"
    )
    if continuous and not include_usage:
        # vLLM ignores it as silently; modelplane says so.
        fields.ignored.append(
            Ignored("stream_options.continuous_usage_stats", "it applies with include_usage: true")
        )
    # OpenAI pads chunks with an `obfuscation` field unless told false; this server never does.
    if _optional_bool(options.get("include_obfuscation"), "stream_options.include_obfuscation"):
        fields.ignored.append(
            Ignored("stream_options.include_obfuscation", "this server adds no obfuscation field to chunks")
        )
    return StreamOptions(include_usage, include_usage and continuous)


def _stop(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    # OpenAI takes up to 4; vLLM, and so KServe's huggingfaceserver, any number.
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise OpenAIError("stop must be a non-empty string or a list of them", param="stop")
    return tuple(dict.fromkeys(value))


def _check_tool_usage(fields: _Fields) -> None:
    """`tools` and `tool_choice` checked as vLLM's protocol checks them, before either is refused as
    unsupported: a `tool_choice` that asks for a tool (anything but "none") needs `tools`."""
    if fields.get("tools") == []:
        raise OpenAIError(
            "`tools` must not be an empty array. Either provide at least one tool or omit the field entirely.",
            param="tools",
            code="empty_array",
        )
    if fields.get("tool_choice", "none") != "none" and fields.get("tools") is None:
        raise OpenAIError("When using `tool_choice`, `tools` must be set.", param="tool_choice")


def _note_function_call(fields: _Fields) -> None:
    """OpenAI's deprecated `function_call`: "auto" lets the model call one of `functions`, and there are
    none (any is refused), so it changes nothing, which the answer says. vLLM reads neither field."""
    if fields.get("function_call") == "auto":
        fields.ignored.append(
            Ignored("function_call", "there are no functions to call (this server calls no functions)")
        )


def _refuse_the_rest(fields: _Fields) -> None:
    _check_tool_usage(fields)
    _note_function_call(fields)
    for name, allowed in _ONLY_DEFAULT.items():
        value = fields.get(name)
        if value not in allowed:
            raise OpenAIError(
                f"{name} is not supported by this server{_only(allowed)}",
                param=name,
                code="unsupported_parameter",
            )
    unknown = fields.unknown()
    if unknown:
        raise OpenAIError(
            f"Unrecognized request argument supplied: {', '.join(unknown)}",
            param=unknown[0],
            code="unknown_parameter",
        )


def _only(allowed: tuple) -> str:
    values = [json.dumps(value) for value in allowed if value is not None]
    return f" (only {' or '.join(values)}, or null)" if values else " (only null)"


def _int(value: object, param: str, low: int, high: int) -> int:
    if isinstance(value, float) and value.is_integer():  # 16.0, as vLLM's validation takes it
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise OpenAIError(f"{param} must be an integer, got {value!r}", param=param)
    if not low <= value <= high:
        raise OpenAIError(f"{value} is less than the minimum of {low} - '{param}'" if value < low else
                          f"{value} is greater than the maximum of {high} - '{param}'", param=param)  # fmt: skip
    return value


def _number(value: object, param: str, low: float, high: float, *, open_low: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise OpenAIError(f"{param} must be a number, got {value!r}", param=param)
    if value < low or value > high or (open_low and value == low):
        bound = f"above {low}" if open_low else f"at least {low}"
        if math.isfinite(high):
            bound += f" and at most {high}"
        raise OpenAIError(f"{param} must be {bound}, got {value}", param=param)
    return float(value)


def _bool(value: object, param: str) -> bool:
    if not isinstance(value, bool):
        raise OpenAIError(f"{param} must be true or false, got {value!r}", param=param)
    return value


def _optional_bool(value: object, param: str) -> bool:
    return False if value is None else _bool(value, param)
