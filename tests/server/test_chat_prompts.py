"""Chat messages as the OpenAI endpoints read them (modelplane.protocol.openai.parse_chat) and as the
huggingface runtime hands them to a chat template (TokenizerPrompts.chat_prompt), tool calls included."""

from __future__ import annotations

import sys

import pytest

from modelplane.protocol.openai import OpenAIError, parse_chat
from tests.server.processes import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "examples"))
from huggingface_models import write_model  # noqa: E402

# Writes each message's name, tool calls (their arguments must be an object) and the call it answers.
TOOLS_TEMPLATE = (
    "{% for m in messages %}<{{ m.role }}{% if m.name %} {{ m.name }}{% endif %}>"
    "{% for c in m.tool_calls or [] %}{{ c.id }}:{{ c.function.name }}("
    "{% for key, value in c.function.arguments.items() %}{{ key }}={{ value }}{% endfor %}){% endfor %}"
    "{% if m.tool_call_id %}[{{ m.tool_call_id }}]{% endif %}{{ m.content }}{% endfor %}"
    "{% if add_generation_prompt %}<assistant>{% endif %}"
)
LOOKUP = {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": '{"q": 1}'}}


@pytest.fixture(scope="module")
def prompts(tmp_path_factory):
    transformers = pytest.importorskip("transformers")
    from modelplane.runtimes.huggingface.prompts import TokenizerPrompts

    folder = write_model(tmp_path_factory.mktemp("chat-prompts") / "gpt2", "gpt2")
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    tokenizer.chat_template = TOOLS_TEMPLATE
    return TokenizerPrompts(tokenizer)


def messages(*items: dict):
    return parse_chat({"model": "m", "messages": list(items)}).messages


def test_tool_calls_their_answers_and_names_reach_the_template(prompts):
    conversation = messages(
        {"role": "user", "content": "hi", "name": "ann"},
        {"role": "assistant", "content": None, "tool_calls": [LOOKUP]},
        {"role": "tool", "tool_call_id": "c1", "content": "ok"},
    )
    assert prompts.chat_prompt(conversation) == "<user ann>hi<assistant>c1:lookup(q=1)<tool>[c1]ok<assistant>"


def test_fields_modelplane_does_not_read_reach_the_template_as_they_are(prompts):
    """A reasoning model's replayed answer keeps its `reasoning_content`, which its template may write."""
    template = prompts.tokenizer.chat_template
    prompts.tokenizer.chat_template = (
        "{% for m in messages %}<{{ m.role }}>{% if m.reasoning_content %}({{ m.reasoning_content }})"
        "{% endif %}{% if m.colour %}[{{ m.colour.name }}]{% endif %}{{ m.content }}{% endfor %}"
    )
    try:
        conversation = messages(
            {"role": "user", "content": "hi", "colour": {"name": "blue"}},
            {"role": "assistant", "content": "yes", "reasoning_content": "think", "role_hint": 1},
        )
        assert prompts.chat_prompt(conversation) == "<user>[blue]hi<assistant>(think)yes"
    finally:
        prompts.tokenizer.chat_template = template


def test_a_field_cannot_stand_in_for_the_role_or_the_content():
    (message,) = messages({"role": "user", "content": "hi", "extra": "x"})
    assert (message.role, message.content, message.extra) == ("user", "hi", {"extra": "x"})


@pytest.mark.parametrize(
    ("message", "param"),
    [
        ({"role": "assistant", "tool_calls": {"id": "c1"}}, "messages[0].tool_calls"),
        ({"role": "assistant", "tool_calls": [{"id": "c1"}]}, "messages[0].tool_calls[0]"),
        (
            {"role": "assistant", "tool_calls": [{**LOOKUP, "function": {"name": "f", "arguments": "{"}}]},
            "messages[0].tool_calls[0].function.arguments",
        ),
        (
            {
                "role": "assistant",
                "tool_calls": [{**LOOKUP, "function": {"name": "f", "arguments": "[" * 5000}}],
            },
            "messages[0].tool_calls[0].function.arguments",
        ),
        ({"role": "tool", "tool_call_id": 1, "content": "ok"}, "messages[0].tool_call_id"),
        ({"role": "user", "name": 1, "content": "hi"}, "messages[0].name"),
    ],
)
def test_malformed_tool_calls_are_refused_naming_them(message, param):
    with pytest.raises(OpenAIError) as refused:
        messages(message)
    assert (refused.value.status_code, refused.value.param) == (400, param)


def test_a_message_s_text_parts_are_joined_by_newlines_as_kserve_joins_them():
    parts = [{"type": "text", "text": "tell me about"}, {"type": "text", "text": "the cat"}]
    (message,) = messages({"role": "user", "content": parts})
    assert message.content == "tell me about\nthe cat"


def chat_request(*items: dict, **fields):
    return parse_chat({"model": "m", "messages": list(items), **fields})


def test_vllm_s_template_fields_reach_the_template(prompts):
    template = prompts.tokenizer.chat_template
    prompts.tokenizer.chat_template = (
        "{% if enable_thinking is defined and not enable_thinking %}/no_think {% endif %}"
        "{% for m in messages %}<{{ m.role }}>{{ m.content }}</end>{% endfor %}"
        "{% if add_generation_prompt %}<assistant>{% endif %}"
    )
    user, answer = {"role": "user", "content": "hi"}, {"role": "assistant", "content": "The answer is"}
    try:
        request = chat_request(user)
        assert prompts.chat_prompt(request.messages, request.template) == "<user>hi</end><assistant>"
        request = chat_request(user, add_generation_prompt=False)
        assert prompts.chat_prompt(request.messages, request.template) == "<user>hi</end>"
        request = chat_request(user, answer, add_generation_prompt=False, continue_final_message=True)
        assert (
            prompts.chat_prompt(request.messages, request.template)
            == "<user>hi</end><assistant>The answer is"
        )
        request = chat_request(user, chat_template_kwargs={"enable_thinking": False})
        assert (
            prompts.chat_prompt(request.messages, request.template) == "/no_think <user>hi</end><assistant>"
        )
    finally:
        prompts.tokenizer.chat_template = template


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"continue_final_message": True}, "continue_final_message"),  # add_generation_prompt is true
        (
            {"continue_final_message": True, "add_generation_prompt": False},
            "continue_final_message",
        ),  # a user's
        ({"add_generation_prompt": "no"}, "add_generation_prompt"),
        ({"chat_template_kwargs": ["x"]}, "chat_template_kwargs"),
        ({"chat_template_kwargs": {"tokenize": True}}, "chat_template_kwargs.tokenize"),
    ],
)
def test_template_fields_that_cannot_be_honoured_are_refused(fields, param):
    with pytest.raises(OpenAIError) as refused:
        chat_request({"role": "user", "content": "hi"}, **fields)
    assert refused.value.param == param
