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
