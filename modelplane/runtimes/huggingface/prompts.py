"""From text to tokens and back, for the OpenAI endpoints: the `encode`, `decode` and `chat_prompt`
of `modelplane.server.generation.TextGenerator` over a transformers tokenizer (vLLM's tokenizer is
one too), so both engines read prompts and render chats alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from modelplane.protocol.openai import ChatMessage, ChatTemplateOptions, OpenAIError


class TokenizerPrompts:
    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer
        # Threads encode and decode with the tokenizer at once, which is safe as long as none changes its
        # settings: a fast tokenizer fails ("Already borrowed") when one call changes them while another
        # uses it. The first encode sets truncation and padding (which tokenizer.json may hold) to none
        # for good, so it is done here, before any other thread has the tokenizer.
        tokenizer("", add_special_tokens=False)
        self.max_chars_per_token = most_characters_per_token(tokenizer)

    def encode(self, text: str) -> list[int]:
        # A chat template usually writes the beginning-of-sequence token itself.
        bos = self.tokenizer.bos_token
        special = not (bos and text.startswith(bos))
        return self.tokenizer(text, add_special_tokens=special)["input_ids"]

    def decode(self, token_ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(token_ids), skip_special_tokens=True)

    def chat_prompt(
        self, messages: list[ChatMessage], template: ChatTemplateOptions = ChatTemplateOptions()
    ) -> str:
        if not getattr(self.tokenizer, "chat_template", None):
            raise OpenAIError(
                "this model's tokenizer has no chat template, so it cannot chat; "
                "use /openai/v1/completions with a prompt instead",
                param="messages",
            )
        conversation = [_template_message(message) for message in messages]
        try:
            return self.tokenizer.apply_chat_template(
                conversation,
                tokenize=False,
                add_generation_prompt=template.add_generation_prompt,
                continue_final_message=template.continue_final_message,
                **template.kwargs,
            )
        except Exception as exc:  # noqa: BLE001 - a template raises what its author chose (jinja2's TemplateError mostly)
            raise OpenAIError(
                f"the model's chat template refused these messages: {exc}", param="messages"
            ) from None


def _template_message(message: ChatMessage) -> dict:
    """A message as chat templates read it (KServe's and vLLM's conversation format)."""
    rendered: dict[str, Any] = {**message.extra, "role": message.role, "content": message.content}
    if message.name is not None:
        rendered["name"] = message.name
    if message.tool_calls:
        rendered["tool_calls"] = list(message.tool_calls)
    if message.tool_call_id is not None:
        rendered["tool_call_id"] = message.tool_call_id
    return rendered


def most_characters_per_token(tokenizer: Any) -> int:
    """The most characters of text one token of `tokenizer` stands for: its longest vocabulary entry
    (special tokens included: a text may spell them), decoded, and the leading space a SentencePiece
    decoder leaves off a token on its own."""
    entries = tokenizer.batch_decode([[token] for token in range(len(tokenizer))])
    return max(map(len, entries), default=0) + 1
