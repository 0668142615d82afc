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


async def steps(generator, params: SamplingParams) -> list:
    return [step async for step in generator.generate(PROMPT, params)]


def test_a_stop_token_ends_the_sequence_without_its_text(generator):
    alone = run(tokens(generator, greedy(8)))
    stop_at = alone[3]
    ended = run(steps(generator, SamplingParams(max_tokens=8, temperature=0, stop_token_ids=(stop_at,))))
    ids = [token for step in ended for token in step.token_ids]
    assert ids == alone[: alone.index(stop_at) + 1]
    assert ended[-1].finish_reason == "stop" and ended[-1].text == ""
    assert ended[-1].stop_reason == stop_at  # vLLM's stop_reason: the stop token, not the EOS's None


def test_min_tokens_holds_the_stop_tokens_back(generator):
    alone = run(tokens(generator, greedy(8)))
    first = alone[0]
    held = SamplingParams(max_tokens=8, temperature=0, stop_token_ids=(first,), min_tokens=3)
    ids = run(tokens(generator, held))
    assert first not in ids[:3]


def test_top_k_1_and_min_p_1_sample_the_likeliest_token(generator):
    alone = run(tokens(generator, greedy(8)))
    for narrowed in ({"top_k": 1}, {"min_p": 1.0}):
        params = SamplingParams(max_tokens=8, temperature=1.5, seed=5, **narrowed)
        assert run(tokens(generator, params)) == alone


def test_a_repetition_penalty_keeps_the_prompt_s_tokens_back(generator):
    """A random model repeats itself greedily; a large penalty on every token seen changes that."""
    alone = run(tokens(generator, greedy(8)))
    penalised = run(tokens(generator, SamplingParams(max_tokens=8, temperature=0, repetition_penalty=1e9)))
    assert penalised != alone
    assert not set(penalised) & set(PROMPT)
    assert len(set(penalised)) == len(penalised)


def test_the_repetition_penalty_divides_positive_logits_and_multiplies_negative_ones():
    from modelplane.runtimes.huggingface.sampling import Sampler

    sampler = Sampler(SamplingParams(max_tokens=1, repetition_penalty=2.0), "cpu", 4, prompt_ids=[0, 1])
    logits = torch.tensor([2.0, -1.0, 3.0, 0.5])
    sampler.penalise(logits)
    assert logits.tolist() == [1.0, -2.0, 3.0, 0.5]


def test_a_repetition_penalty_that_overflows_the_logits_still_samples():
    """Any penalty above 0 is taken (as in vLLM); one far from 1 makes a seen token's logit infinite,
    which must not make the probabilities NaN (a 500 to the client)."""
    from modelplane.runtimes.huggingface.sampling import Sampler

    tiny = SamplingParams(max_tokens=1, temperature=0.5, seed=1, repetition_penalty=1e-300)
    sampler = Sampler(tiny, "cpu", 4, prompt_ids=[1, 2])
    logits = torch.tensor([0.5, 2.0, 3.0, 1.0])
    sampler.penalise(logits)
    assert sampler.sample(logits).item() in (1, 2)  # the seen positive logits, now infinite, win
    huge = SamplingParams(max_tokens=1, seed=1, repetition_penalty=1e300)
    sampler = Sampler(huge, "cpu", 4, prompt_ids=[0, 1, 2, 3])
    logits = torch.tensor([-1.0, -2.0, -3.0, -0.5])
    sampler.penalise(logits)  # every logit -inf: no token is likelier than another
    assert sampler.sample(logits).item() in range(4)


def test_each_row_of_a_batch_gets_as_many_likeliest_tokens_as_it_asks_for():
    """Up to vLLM's 20 a row, worked out for the whole batch at once; never more than the vocabulary."""
    from modelplane.runtimes.huggingface.sampling import Sampler, choose

    asked = [20, 3, None, 0, 7]
    samplers = [Sampler(SamplingParams(max_tokens=1, temperature=0, logprobs=k), "cpu", 50) for k in asked]
    logits = torch.randn(len(asked), 50, generator=torch.Generator().manual_seed(0))
    expected = torch.log_softmax(logits, dim=-1)
    for row, (k, choice) in enumerate(zip(asked, choose(logits, samplers), strict=True)):
        assert choice.token == expected[row].argmax().item()
        if k is None:
            assert (choice.logprob, choice.top) == (None, ())
            continue
        assert choice.logprob == pytest.approx(expected[row, choice.token].item())
        values, indices = expected[row].topk(k)
        assert [token for token, _ in choice.top] == indices.tolist()
        assert [value for _, value in choice.top] == pytest.approx(values.tolist())
    narrow = [Sampler(SamplingParams(max_tokens=1, temperature=0, logprobs=20), "cpu", 8)]
    (choice,) = choose(torch.randn(1, 8), narrow)
    assert sorted(token for token, _ in choice.top) == list(range(8))


def test_logit_bias_steers_the_choice_and_leaves_the_logprobs_the_models(generator):
    alone = run(tokens(generator, greedy(4)))
    token = 9 if alone[0] != 9 else 10  # not what the model would choose first
    forced = SamplingParams(max_tokens=4, temperature=0, logit_bias=((token, 100.0),))
    assert run(tokens(generator, forced)) == [token] * 4
    banned = SamplingParams(max_tokens=4, temperature=0, logit_bias=((alone[0], -100.0),))
    assert run(tokens(generator, banned))[0] != alone[0]
    sampled = SamplingParams(max_tokens=8, temperature=1.0, seed=3, logit_bias=((token, 100.0),))
    assert run(tokens(generator, sampled)) == [token] * 8
    with_logprobs = SamplingParams(max_tokens=1, temperature=0, logprobs=1, logit_bias=((token, 100.0),))
    step = run(steps(generator, with_logprobs))[0]
    plain = run(steps(generator, SamplingParams(max_tokens=1, temperature=0, logprobs=1)))[0]
    assert step.token_ids == [token] and step.logprobs[0].logprob < plain.logprobs[0].logprob
