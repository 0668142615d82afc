"""The huggingface generation engine in this process, spoken to through its generator as the OpenAI
endpoints speak to it, with sampling parameters the endpoints would never send: one request that the
engine cannot sample must fail alone, whatever runs or waits beside it. The model is a tiny random
GPT-2, built here."""

from __future__ import annotations

import asyncio
import sys

import pytest

from modelplane.protocol.openai import SamplingParams
from tests.server.processes import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "examples"))
from huggingface_models import write_model  # noqa: E402

pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

PROMPT = [5, 6, 7, 8]


@pytest.fixture(scope="module")
def generator(tmp_path_factory):
    from modelplane.runtimes.huggingface.model import HuggingFaceModel

    model = HuggingFaceModel(
        "gpt2", write_model(tmp_path_factory.mktemp("engine") / "gpt2", "gpt2"), nthread=1
    )
    model.load()
    yield model.generator
    model.stop()


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 60))


async def tokens(generator, params: SamplingParams) -> list[int]:
    return [token async for step in generator.generate(PROMPT, params) for token in step.token_ids]


async def failure(generator, params: SamplingParams) -> Exception | None:
    try:
        await tokens(generator, params)
    except Exception as exc:  # noqa: BLE001 - which one is the engine's business
        return exc
    return None


def greedy(max_tokens: int) -> SamplingParams:
    return SamplingParams(max_tokens=max_tokens, temperature=0)


def test_a_request_whose_sampler_cannot_be_made_fails_alone(generator):
    unseedable = SamplingParams(max_tokens=4, temperature=1.0, seed=1 << 64)

    async def main():
        running = generator.generate(PROMPT, greedy(30))
        first = await anext(running)  # it runs before the others arrive
        rest = [token async for step in running for token in step.token_ids]
        return first.token_ids + rest

    async def together():
        return await asyncio.gather(main(), failure(generator, unseedable), tokens(generator, greedy(5)))

    alone = run(tokens(generator, greedy(30)))
    running, refused, beside = run(together())
    assert running == alone
    assert isinstance(refused, Exception)
    assert beside == alone[:5]


def test_a_temperature_too_small_to_divide_by_is_greedy(generator):
    alone = run(tokens(generator, greedy(8)))
    for temperature in (1e-300, 1e-40, 1e-6):
        assert run(tokens(generator, SamplingParams(max_tokens=8, temperature=temperature))) == alone


def test_a_request_that_cannot_be_sampled_fails_alone_in_its_batch(generator):
    unsampleable = SamplingParams(max_tokens=4, temperature=float("nan"))
    seeded = SamplingParams(max_tokens=6, temperature=1.0, seed=3)

    async def together():
        return await asyncio.gather(
            tokens(generator, greedy(6)), failure(generator, unsampleable), tokens(generator, seeded)
        )

    first, refused, sampled = run(together())
    assert first == run(tokens(generator, greedy(6)))
    assert isinstance(refused, Exception)
    assert sampled == run(tokens(generator, seeded))
