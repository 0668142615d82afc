"""The huggingface runtime's engine against transformers' own ways of generating, in one process on CPU.

    python3 bench/generation_engines.py --write-results     # about 3 minutes

The same random-weight Llama (4 layers, 256 wide, a byte-level tokenizer of 400 tokens; built by the
script, nothing downloaded) generates `--new` greedy tokens for each of N prompts of `--prompt` tokens,
all submitted at once, N from `--concurrency`:

- `generate`: transformers' `model.generate`, one request after another (what KServe's huggingface
  backend does: one background thread, one request at a time);
- `continuous`: transformers' continuous batching (`model.generate_batch`, its paged cache sized for this
  model on CPU: 32-token blocks, 128 of them, 1024 tokens a step);
- `modelplane`: the huggingface runtime's engine (`HuggingFaceModel.generator`), from the OpenAI
  layer's side: every request a `generate` async iterator, text decoded as it comes.

Rounds interleave the three; each row is the median of `--rounds`. End-of-sequence tokens are ignored,
so every request generates exactly `--new` tokens. Output tokens per second, higher is better.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "examples"))
sys.path.insert(0, str(HERE.parent))


def build(folder: Path):
    import torch
    import transformers
    from huggingface_models import _byte_level_tokenizer, _save

    torch.manual_seed(0)
    tokenizer = _byte_level_tokenizer(chat_template=None)
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=256,
        intermediate_size=512,
        num_hidden_layers=4,
        num_attention_heads=8,
        num_key_value_heads=4,
        max_position_embeddings=512,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=2,
    )
    model = transformers.LlamaForCausalLM(config).eval()
    _save(folder, model, tokenizer)
    return model, len(tokenizer)


class Engines:
    def __init__(self, folder: Path, model, new: int):
        from modelplane.runtimes.huggingface.model import HuggingFaceModel

        self.model = model
        self.new = new
        self.served = HuggingFaceModel("bench", str(folder))
        self.served.load()
        self.served.generator.engine.eos_ids = set()  # every request runs to `new` tokens

    def generate(self, prompts: list[list[int]]) -> None:
        import torch

        for prompt in prompts:
            self.model.generate(
                torch.tensor([prompt]),
                max_new_tokens=self.new,
                min_new_tokens=self.new,
                do_sample=False,
                pad_token_id=2,
            )

    def continuous(self, prompts: list[list[int]]) -> None:
        from transformers import GenerationConfig
        from transformers.generation.configuration_utils import ContinuousBatchingConfig

        generation = GenerationConfig(
            max_new_tokens=self.new, do_sample=False, eos_token_id=-1, pad_token_id=2
        )
        paged = ContinuousBatchingConfig(block_size=32, num_blocks=128, max_batch_tokens=1024)
        outputs = self.model.generate_batch(
            prompts, generation_config=generation, continuous_batching_config=paged
        )
        assert all(len(output.generated_tokens) == self.new for output in outputs.values())

    def modelplane(self, prompts: list[list[int]]) -> None:
        from modelplane.protocol.openai import SamplingParams

        params = SamplingParams(max_tokens=self.new, temperature=0)

        async def one(prompt: list[int]) -> int:
            return sum([len(step.token_ids) async for step in self.served.generator.generate(prompt, params)])

        async def all_of_them() -> list[int]:
            return await asyncio.gather(*(one(prompt) for prompt in prompts))

        assert asyncio.run(all_of_them()) == [self.new] * len(prompts)


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", default="1,8,16")
    parser.add_argument("--prompt", type=int, default=32)
    parser.add_argument("--new", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="generation-engines-"))
    model, vocabulary = build(folder)
    engines = Engines(folder, model, args.new)
    names = ("generate", "continuous", "modelplane")
    rows = []
    for concurrency in [int(value) for value in args.concurrency.split(",")]:
        prompts = [torch.randint(3, vocabulary, (args.prompt,)).tolist() for _ in range(concurrency)]
        seconds: dict[str, list[float]] = {name: [] for name in names}
        for name in names:  # warm up
            getattr(engines, name)(prompts)
        for _round in range(args.rounds):
            for name in names:
                started = time.perf_counter()
                getattr(engines, name)(prompts)
                seconds[name].append(time.perf_counter() - started)
        rates = {name: concurrency * args.new / statistics.median(seconds[name]) for name in names}
        rows.append((concurrency, rates))
        print(concurrency, {name: round(rate) for name, rate in rates.items()}, flush=True)
    engines.served.stop()
    table = [
        "| requests at once | `generate`, one at a time | transformers' continuous batching | modelplane's engine | modelplane / continuous |",
        "|---:|---:|---:|---:|---:|",
    ]
    for concurrency, rates in rows:
        table.append(
            f"| {concurrency} | {rates['generate']:.0f} | {rates['continuous']:.0f} | {rates['modelplane']:.0f} "
            f"| {rates['modelplane'] / rates['continuous']:.1f}x |"
        )
    section = "\n".join(
        [
            "## Generation engines",
            "",
            f"`python3 bench/generation_engines.py --rounds {args.rounds}`: output tokens per second (median of "
            f"{args.rounds} interleaved rounds), a random 4-layer 256-wide Llama on CPU, {args.prompt}-token prompts, "
            f"{args.new} greedy tokens each, all requests submitted at once.",
            "",
            *table,
        ]
    )
    print(section)
    if args.write_results:
        from results_file import put_section

        put_section("Generation engines", section + "\n")


if __name__ == "__main__":
    main()
