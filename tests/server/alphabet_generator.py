"""A tiny text generator for tests of the OpenAI endpoints: its tokens are the bytes of UTF-8 text, and
it continues a prompt with the letters after the prompt's last letter, one per step, ending after "z".

Served with `modelplane serve --model-class tests/server/alphabet_generator.py:AlphabetModel`. Each
step waits STEP_SECONDS (env ALPHABET_STEP_SECONDS, default 0), so tests can leave a stream half-way; a
prompt that ends with "!" fails after its first letter (an input to embed, at once); a text with "[gate]" in it is tokenized only once
the file `open` appears in the folder ALPHABET_GATE (having written `waiting` there), so tests can hold
a tokenization; a V1 predict answers how many generations are running and how many were stopped before
their end (asked `{"longest_encoded": true}`, the longest text it was asked to tokenize instead).
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from pathlib import Path

from modelplane.protocol.openai import SamplingParams
from modelplane.server.generation import EngineLoad, GenerationStep, TokenLogprob
from modelplane.server.model import Model


class AlphabetGenerator:
    max_model_len = 64
    vocab_size = 256  # its tokens are bytes
    max_chars_per_token = 1

    def __init__(self) -> None:
        self.running = 0
        self.stopped_early = 0
        self.longest_encoded = 0
        self.step_seconds = float(os.environ.get("ALPHABET_STEP_SECONDS", "0"))

    def encode(self, text: str) -> list[int]:
        self.longest_encoded = max(self.longest_encoded, len(text))
        if "[gate]" in text:
            _wait_at_the_gate(Path(os.environ["ALPHABET_GATE"]))
        return list(text.encode())

    def decode(self, token_ids) -> str:
        return bytes(token_ids).decode(errors="replace")

    def chat_prompt(self, messages, template) -> str:
        chat = "".join(f"<{message.role}>{message.content}" for message in messages)
        return chat + "<assistant>" if template.add_generation_prompt else chat

    def unsupported(self, params: SamplingParams) -> str | None:
        if params.presence_penalty:
            return "presence_penalty"
        return None

    def occupancy(self) -> EngineLoad:
        return EngineLoad(running=self.running)

    async def generate(self, prompt_ids: list[int], params: SamplingParams):
        letters = [chr(i) for i in prompt_ids if chr(i).isalpha()]
        current = ord(letters[-1].lower()) if letters else ord("a") - 1
        self.running += 1
        finished = False
        try:
            for produced in range(1, params.max_tokens + 1):
                await asyncio.sleep(self.step_seconds)
                current += 1
                last_letter = current >= ord("z")
                finish = "stop" if last_letter else "length" if produced == params.max_tokens else None
                logprobs = None
                if params.logprobs is not None:
                    alternatives = (chr(current), -0.1), ("?", math.log(0.05))
                    logprobs = [TokenLogprob(chr(current), -0.1, alternatives[: params.logprobs])]
                # Set before the last step goes out: its consumer may close the generator at once.
                finished = finish is not None
                yield GenerationStep([current], chr(current), logprobs, finish)
                if finished:
                    return
                if prompt_ids[-1] == ord("!"):
                    raise RuntimeError("the alphabet broke")
        finally:
            self.running -= 1
            if not finished:
                self.stopped_early += 1

    async def embed(self, inputs: list[list[int]]) -> list[list[float]]:
        if any(ids[-1] == ord("!") for ids in inputs):
            raise RuntimeError("the alphabet broke")
        return [[float(len(ids)), sum(ids) / 1000] for ids in inputs]


def _wait_at_the_gate(folder: Path) -> None:
    (folder / "waiting").touch()
    deadline = time.monotonic() + 30  # a test that never opens it fails on its own
    while not (folder / "open").exists() and time.monotonic() < deadline:
        time.sleep(0.01)


class AlphabetModel(Model):
    def __init__(self, name: str, model_dir: str | None = None):
        super().__init__(name)
        self.generator = AlphabetGenerator()
        self.embedder = self.generator

    def load(self) -> bool:
        self.ready = True
        return True

    async def predict(self, payload, headers=None):
        generator = self.generator
        if isinstance(payload, dict) and payload.get("longest_encoded"):
            return {"longest_encoded": generator.longest_encoded}
        return {"running": generator.running, "stopped_early": generator.stopped_early}
