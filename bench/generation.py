"""Generation benchmark: a small causal LM on CPU served by modelplane and by MLServer's huggingface
runtime, with a bare transformers `generate` loop as the reference.

The model (built here, saved once as bench/.work/generation/model) is a random-weight Llama of about
4 million parameters: 4 layers, 256 wide, 8 attention heads of 32, a byte-level tokenizer of 400
tokens trained on a few sentences. Its config names an end-of-sequence token outside the vocabulary,
so no sequence ever ends by itself: every request generates exactly `--new` tokens on every server,
and the work is the same everywhere. Served by:

- modelplane   `modelplane serve --model-dir <folder> --model-name gen --backend huggingface`: the
               huggingface engine (step-batched; on a CPU it gives torch every core but one, here 1),
               `POST /openai/v1/completions` with `stream: true` and `stream_options.include_usage`,
               greedy; time to first token is the first text event.
- modelplane-2t  the same with `--nthread 2`: torch on both cores, its default before the engine
               left one core to the server.
- mlserver     MLServer 1.7.1 with `mlserver_huggingface.HuggingFaceRuntime` (task text-generation, a
               transformers pipeline), MLServer's defaults: one inference worker process, no adaptive
               batching, torch's own threads (2 here). From bench/.envs/gen-mlserver, a venv that sees
               the current environment's torch and brings transformers 4.41 (mlserver-huggingface
               1.7.1 imports `transformers.pipelines.Conversation`, gone from 4.42 on), with two
               import-time fixes for torch 2.14 (peers/mlserver_hf_imports.py). V2 `POST
               /v2/models/gen/infer` with the prompt, `max_new_tokens` and `do_sample: false`. It
               does not stream: its time to first token is the whole answer's.
- mlserver-1t  the same with the runtime's `intra_op_threads: 1`: torch on one thread, as modelplane's
               engine on 2 cores.
- generate     the reference, in this process: transformers' `model.generate` on one request at a
               time in arrival order (what KServe's huggingface backend does), on as many torch
               threads as modelplane's engine, its first token timed with a streamer.

Load: C clients (C from `--concurrency`), each sending its next request as soon as its last one is
answered, for `--duration` seconds, after `--warmup` seconds of the same; each request a prompt of
about 30 tokens (one of a few sentences) and `--new` greedy tokens. Output tokens per second is every
token generated over the time from the start until the last answer ended; time to first token is
from sending a request to its first text. Before a server is loaded, its greedy answer to one prompt
must be the reference's own text. The generate loop and the clients run here, on the same 2 cores.

    python3 bench/generation.py                     # 3 rounds (about 15 min), prints the tables
    python3 bench/generation.py --write-results     # ... and rewrites "## Generation" in bench/RESULTS.md
"""

# ruff: noqa: E402 (imports after the sys.path fix below)
from __future__ import annotations

import os
import sys

from harness import free_port, log, modelplane_commit
from results_file import put_section
from server_process import ServerProcess, group_cpu_seconds
from venvs import ensure_venv

# `python3 bench/generation.py` puts bench/ first on sys.path, where a sibling script named like a module
# would shadow it for every library we import; only the modules above come from bench/.
if sys.path and os.path.abspath(sys.path[0] or ".") == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]

import argparse
import asyncio
import datetime
import json
import platform
import shutil
import signal
import statistics
import subprocess
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
WORK = BENCH / ".work" / "generation"
SECTION = "Generation"
MODEL_NAME = "gen"
ALL_SERVERS = ["modelplane", "modelplane-2t", "mlserver", "mlserver-1t", "generate"]
MLSERVER_ENV = "gen-mlserver"
MLSERVER_REQUIREMENTS = ["mlserver==1.7.1", "mlserver-huggingface==1.7.1", "transformers<4.42", "uvloop<0.22"]
PROMPTS = [
    "the cat sat on the mat and looked at the moon. the dog ran in the park with a red ball.",
    "a model serves answers to the questions it is asked. hello world, this is a very small model.",
    "the quick brown fox jumps over the lazy dog. what a wonderful day in the sun it was for us.",
    "we had a great time in the sun and the food was great and the staff were kind to everyone.",
]


# -- the model ------------------------------------------------------------------------------------


def build_model(folder: Path) -> None:
    """The random Llama, saved with `save_pretrained` (readable by transformers 4.41 and 5)."""
    import torch
    import transformers

    sys.path.insert(0, str(REPO / "examples"))
    from huggingface_models import _byte_level_tokenizer, _save

    torch.manual_seed(0)
    tokenizer = _byte_level_tokenizer(chat_template=None)
    vocabulary = len(tokenizer)
    config = transformers.LlamaConfig(
        vocab_size=vocabulary,
        hidden_size=256,
        intermediate_size=1024,
        num_hidden_layers=4,
        num_attention_heads=8,
        num_key_value_heads=4,
        max_position_embeddings=512,
        bos_token_id=0,
        eos_token_id=vocabulary,  # outside the vocabulary: no sequence ends by itself
        pad_token_id=2,
        tie_word_embeddings=False,
    )
    model = transformers.LlamaForCausalLM(config).eval()
    model.generation_config.eos_token_id = vocabulary
    shutil.rmtree(folder, ignore_errors=True)
    _save(folder, model, tokenizer)
    # Written so that MLServer's older transformers (4.41) and tokenizers (0.19) read it too: the fast
    # tokenizer's class under its older name (transformers 5 calls it TokenizersBackend and still reads
    # the old name), and the BPE merges as "left right" strings (newer tokenizers write pairs, and
    # read both).
    settings = folder / "tokenizer_config.json"
    tokenizer_config = json.loads(settings.read_text())
    tokenizer_config["tokenizer_class"] = "PreTrainedTokenizerFast"
    settings.write_text(json.dumps(tokenizer_config, indent=2))
    tokenizer_file = folder / "tokenizer.json"
    tokenizer_json = json.loads(tokenizer_file.read_text())
    bpe = tokenizer_json["model"]
    bpe["merges"] = [" ".join(pair) if isinstance(pair, list) else pair for pair in bpe["merges"]]
    bpe.pop("ignore_merges", None)
    # No beginning-of-sequence token is added: MLServer's text-generation pipeline (transformers 4.41)
    # tokenizes prompts without special tokens, the others with them; so none are there to add.
    tokenizer_json["post_processor"] = None
    tokenizer_file.write_text(json.dumps(tokenizer_json))
    parameters = sum(p.numel() for p in model.parameters())
    log(f"model: {parameters / 1e6:.1f} M parameters in {folder}")


class Reference:
    """transformers' own greedy `generate`, one request at a time."""

    def __init__(self, folder: Path, new: int, threads: int):
        import torch
        import transformers

        torch.set_num_threads(threads)
        self.torch = torch
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
        self.model = transformers.AutoModelForCausalLM.from_pretrained(folder).eval()
        self.new = new

    def ids(self, prompt: str):
        return self.tokenizer(prompt, return_tensors="pt").input_ids

    def generate(self, prompt: str, streamer=None):
        ids = self.ids(prompt)
        with self.torch.inference_mode():
            output = self.model.generate(
                ids, max_new_tokens=self.new, do_sample=False, pad_token_id=2, streamer=streamer
            )
        return output[0, ids.shape[1] :]

    def text(self, prompt: str) -> str:
        return self.tokenizer.decode(self.generate(prompt), skip_special_tokens=True)


def engine_threads() -> int:
    """The torch threads modelplane's engine takes on this machine by default: every core but one."""
    import torch

    cores = len(os.sched_getaffinity(0))
    return min(torch.get_num_threads(), max(1, cores - 1))


# -- a run ----------------------------------------------------------------------------------------


@dataclass
class Run:
    tokens_per_s: float
    ttft_p50_ms: float
    ttft_p99_ms: float
    requests: int
    tokens: int
    load: float = 0.0  # 1-minute load average when the run ended
    server_cpu_ms_per_token: float = float("nan")


@dataclass
class Timings:
    started: float = 0.0
    ended: float = 0.0
    tokens: int = 0
    first_token_s: list[float] = field(default_factory=list)


class VoidRun(Exception):
    """A run with a failed or short answer: its numbers mean nothing."""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summarise(timings: Timings) -> Run:
    return Run(
        tokens_per_s=timings.tokens / (timings.ended - timings.started),
        ttft_p50_ms=statistics.median(timings.first_token_s) * 1000,
        ttft_p99_ms=percentile(timings.first_token_s, 0.99) * 1000,
        requests=len(timings.first_token_s),
        tokens=timings.tokens,
    )


class ModelplaneClient:
    def __init__(self, port: int, new: int):
        self.url = f"http://127.0.0.1:{port}/openai/v1/completions"
        self.new = new

    def body(self, prompt: str) -> dict:
        return {
            "model": MODEL_NAME,
            "prompt": prompt,
            "max_tokens": self.new,
            "temperature": 0,
            "stream": True,
            "stream_options": {"include_usage": True},
        }

    async def request(self, client, prompt: str) -> tuple[float, int, str]:
        """(seconds to the first text, tokens generated, the text)."""
        sent = time.perf_counter()
        first = None
        texts, tokens = [], 0
        async with client.stream("POST", self.url, json=self.body(prompt)) as response:
            if response.status_code != 200:
                raise VoidRun(
                    f"modelplane answered {response.status_code}: {(await response.aread())[:300]!r}"
                )
            async for line in response.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                if "error" in chunk:
                    raise VoidRun(f"modelplane's stream failed: {chunk['error']}")
                if chunk["choices"] and chunk["choices"][0]["text"]:
                    if first is None:
                        first = time.perf_counter() - sent
                    texts.append(chunk["choices"][0]["text"])
                if chunk.get("usage"):
                    tokens = chunk["usage"]["completion_tokens"]
        if first is None or tokens != self.new:
            raise VoidRun(f"modelplane generated {tokens} tokens, not {self.new}")
        return first, tokens, "".join(texts)


class MLServerClient:
    def __init__(self, port: int, new: int):
        self.url = f"http://127.0.0.1:{port}/v2/models/{MODEL_NAME}/infer"
        self.new = new

    def body(self, prompt: str) -> dict:
        raw = {"content_type": "raw"}
        return {
            "inputs": [
                {"name": "args", "shape": [1], "datatype": "BYTES", "data": [prompt]},
                {
                    "name": "max_new_tokens",
                    "shape": [1],
                    "datatype": "INT64",
                    "data": [self.new],
                    "parameters": raw,
                },
                {"name": "do_sample", "shape": [1], "datatype": "BOOL", "data": [False], "parameters": raw},
                {
                    "name": "return_full_text",
                    "shape": [1],
                    "datatype": "BOOL",
                    "data": [False],
                    "parameters": raw,
                },
            ]
        }

    async def request(self, client, prompt: str) -> tuple[float, int, str]:
        sent = time.perf_counter()
        response = await client.post(self.url, json=self.body(prompt))
        elapsed = time.perf_counter() - sent
        if response.status_code != 200:
            raise VoidRun(f"mlserver answered {response.status_code}: {response.text[:300]}")
        output = response.json()["outputs"][0]
        answer = json.loads(output["data"][0])
        while isinstance(answer, list):  # the pipeline answers a list (of lists) of {"generated_text": ...}
            answer = answer[0]
        # No usage in the answer: every sequence runs to max_new_tokens (no end-of-sequence token exists).
        return elapsed, self.new, answer["generated_text"]


async def load_server(client_kind, concurrency: int, duration: float) -> Timings:
    """C clients sending back to back for `duration` seconds; the last answers are waited for."""
    import httpx

    timings = Timings()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:
        timings.started = time.perf_counter()
        deadline = timings.started + duration

        async def worker(number: int) -> None:
            sent = number
            while time.perf_counter() < deadline:
                first, tokens, _text = await client_kind.request(client, PROMPTS[sent % len(PROMPTS)])
                timings.first_token_s.append(first)
                timings.tokens += tokens
                sent += concurrency

        await asyncio.gather(*(worker(number) for number in range(concurrency)))
        timings.ended = time.perf_counter()
    return timings


def load_reference(reference: Reference, concurrency: int, duration: float) -> Timings:
    """A server of one request at a time, in arrival order, under C clients that resubmit at once."""
    from transformers.generation.streamers import BaseStreamer

    class FirstToken(BaseStreamer):
        def __init__(self):
            self.calls, self.at = 0, None

        def put(self, value):
            self.calls += 1
            if self.calls == 2:  # the first call hands over the prompt
                self.at = time.perf_counter()

        def end(self):
            pass

    timings = Timings()
    timings.started = time.perf_counter()
    deadline = timings.started + duration
    waiting = deque((timings.started, number) for number in range(concurrency))
    while waiting:
        submitted, number = waiting.popleft()
        streamer = FirstToken()
        generated = reference.generate(PROMPTS[number % len(PROMPTS)], streamer)
        timings.first_token_s.append(streamer.at - submitted)
        timings.tokens += len(generated)
        now = time.perf_counter()
        if now < deadline:
            waiting.append((now, number + concurrency))
    timings.ended = time.perf_counter()
    return timings


# -- servers --------------------------------------------------------------------------------------


def build_server(name: str, folder: Path, mlserver_python: Path | None, tag: str) -> ServerProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIRTUAL_ENV")}
    env["HF_HUB_OFFLINE"] = "1"
    http_port = free_port()
    if name.startswith("modelplane"):
        argv = [shutil.which("modelplane") or "modelplane", "serve", "--model-dir", str(folder)]
        argv += ["--model-name", MODEL_NAME, "--backend", "huggingface", "--host", "127.0.0.1"]
        argv += ["--nthread", "2"] if name == "modelplane-2t" else []
        argv += ["--http-port", str(http_port), "--grpc-port", "-1"]
        return ServerProcess(
            name,
            argv,
            env,
            WORK,
            WORK / "logs" / f"{name}-{tag}.log",
            ready=[(http_port, f"/v2/models/{MODEL_NAME}/ready")],
            ports=[http_port],
        )
    grpc_port, metrics_port = free_port(), free_port()
    home = WORK / "mlserver"
    shutil.rmtree(home, ignore_errors=True)
    (home / MODEL_NAME).mkdir(parents=True)
    settings = {"http_port": http_port, "grpc_port": grpc_port, "metrics_port": metrics_port}
    (home / "settings.json").write_text(json.dumps({**settings, "host": "127.0.0.1", "debug": False}))
    model_settings = {
        "name": MODEL_NAME,
        "implementation": "mlserver_huggingface.HuggingFaceRuntime",
        "parameters": {
            "uri": str(folder),
            "extra": {
                "task": "text-generation",
                "pretrained_model": str(folder),
                "framework": "pt",
                **({"intra_op_threads": 1} if name == "mlserver-1t" else {}),
            },
        },
    }
    (home / MODEL_NAME / "model-settings.json").write_text(json.dumps(model_settings))
    mlserver = mlserver_python.parent / "mlserver"
    return ServerProcess(
        name,
        [str(mlserver), "start", str(home)],
        env,
        home,
        WORK / "logs" / f"{name}-{tag}.log",
        ready=[(http_port, f"/v2/models/{MODEL_NAME}/ready")],
        ports=[http_port, grpc_port, metrics_port],
        stop_signal=signal.SIGINT,  # MLServer hangs on SIGTERM
    )


def install_import_fixes(python: Path) -> None:
    """peers/mlserver_hf_imports.py into the venv, imported at every start by a .pth line."""
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    for stale in site.glob("optimum_torch_onnx_names.*"):
        stale.unlink()
    shutil.copy(BENCH / "peers" / "mlserver_hf_imports.py", site / "mlserver_hf_imports.py")
    (site / "mlserver_hf_imports.pth").write_text("import mlserver_hf_imports\n")


def client_for(name: str, server: ServerProcess, new: int):
    port = server.ready[0][0]
    return ModelplaneClient(port, new) if name.startswith("modelplane") else MLServerClient(port, new)


def verify(name: str, client_kind, expected: str) -> None:
    import httpx

    async def one() -> str:
        async with httpx.AsyncClient(timeout=600) as client:
            return (await client_kind.request(client, PROMPTS[0]))[2]

    text = asyncio.run(one())
    if text != expected:
        raise RuntimeError(f"{name} answered {text!r}, the reference {expected!r}")


# -- main -----------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="interleaved rounds; medians reported (default 3)"
    )
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of load per row (default 15)")
    parser.add_argument(
        "--warmup", type=float, default=3.0, help="seconds of load before each row (default 3)"
    )
    parser.add_argument("--concurrency", default="1,8,32", help="comma-separated (default 1,8,32)")
    parser.add_argument("--new", type=int, default=64, help="tokens generated per request (default 64)")
    parser.add_argument("--servers", default=",".join(ALL_SERVERS), help=f"default {','.join(ALL_SERVERS)}")
    parser.add_argument("--check", action="store_true", help="start each server and check its answer only")
    parser.add_argument(
        "--write-results", action="store_true", help="rewrite our section of bench/RESULTS.md"
    )
    args = parser.parse_args()
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    servers = [s for s in args.servers.split(",") if s]
    for s in servers:
        if s not in ALL_SERVERS:
            parser.error(f"unknown server {s!r}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a SIGTERM still stops the server under test

    started = datetime.datetime.now(datetime.UTC)
    load_before = os.getloadavg()
    WORK.mkdir(parents=True, exist_ok=True)
    folder = WORK / "model"
    build_model(folder)
    threads = engine_threads()
    reference = Reference(folder, args.new, threads)
    expected = reference.text(PROMPTS[0])
    mlserver_python = None
    if any(name.startswith("mlserver") for name in servers):
        mlserver_python = ensure_venv(MLSERVER_ENV, MLSERVER_REQUIREMENTS, system_site_packages=True)
        install_import_fixes(mlserver_python)

    results: dict[tuple[str, int], list[Run]] = {}
    void: dict[str, str] = {}
    commits: dict[str, list[int]] = {}
    for rnd in range(1 if args.check else args.rounds):
        shift = rnd % len(servers)
        for name in servers[shift:] + servers[:shift]:
            if name in void:
                continue
            log(f"round {rnd + 1}/{args.rounds}: {name}")
            if name == "generate":
                for c in concurrencies:
                    if args.check:
                        break
                    load_reference(reference, c, args.warmup)
                    run = summarise(load_reference(reference, c, args.duration))
                    run.load = os.getloadavg()[0]
                    results.setdefault((name, c), []).append(run)
                    report(name, c, run)
                continue
            if name.startswith("modelplane"):
                rounds = commits.setdefault(modelplane_commit(), [])
                rounds += [] if rnd + 1 in rounds else [rnd + 1]
            server = build_server(name, folder, mlserver_python, f"r{rnd + 1}")
            try:
                server.start()
                server.wait_ready()
                client_kind = client_for(name, server, args.new)
                verify(name, client_kind, expected)
                log(f"{name}: answers the reference's text")
                for c in [] if args.check else concurrencies:
                    asyncio.run(load_server(client_kind, c, args.warmup))
                    cpu_before = group_cpu_seconds(server.pgid)
                    timings = asyncio.run(load_server(client_kind, c, args.duration))
                    run = summarise(timings)
                    run.server_cpu_ms_per_token = (
                        (group_cpu_seconds(server.pgid) - cpu_before) / run.tokens * 1e3
                    )
                    run.load = os.getloadavg()[0]
                    results.setdefault((name, c), []).append(run)
                    report(name, c, run)
            except (RuntimeError, VoidRun, OSError) as exc:
                log(f"{name}: VOID: {exc}")
                void[name] = str(exc)
            finally:
                server.stop()
    if args.check:
        return 1 if void else 0
    for key in [key for key in results if key[0] in void]:
        del results[key]
    markdown = render(
        results, void, args, concurrencies, started, load_before, commits, mlserver_python, threads
    )
    print(markdown)
    if args.write_results:
        put_section(SECTION, f"## {SECTION}\n\n{markdown.rstrip()}\n")
        log(f"wrote the '## {SECTION}' section of bench/RESULTS.md")
    return 0


def report(name: str, c: int, run: Run) -> None:
    log(
        f"{name:10s} c={c:<3d} {run.tokens_per_s:8.0f} tokens/s  TTFT p50 {run.ttft_p50_ms:7.1f} ms"
        f"  p99 {run.ttft_p99_ms:7.1f} ms  {run.requests} requests  (load {run.load:.2f})"
    )


def render(
    results, void, args, concurrencies, started, load_before, commits, mlserver_python, threads
) -> str:
    med = {
        key: (
            statistics.median(r.tokens_per_s for r in runs),
            statistics.median(r.ttft_p50_ms for r in runs),
            statistics.median(r.ttft_p99_ms for r in runs),
            min(r.tokens_per_s for r in runs),
            max(r.tokens_per_s for r in runs),
            statistics.median(r.server_cpu_ms_per_token for r in runs),
        )
        for key, runs in results.items()
    }
    loads = [r.load for runs in results.values() for r in runs]
    md = [
        f"Run {started.strftime('%Y-%m-%d %H:%M UTC')} on {os.cpu_count()} cores ({cpu_model()}), shared with"
        f" other work: 1-minute load average {load_before[0]:.2f} at the start,"
        f" {min(loads, default=0):.2f}–{max(loads, default=0):.2f} during the runs; read ratios and medians.",
        "",
        "    python3 bench/generation.py " + " ".join(sys.argv[1:]),
        "",
        "A random-weight Llama of about 4 M parameters (4 layers, 256 wide, 8 heads of 32, a 400-token"
        " byte-level tokenizer; its end-of-sequence token is outside the vocabulary, so every request"
        f" generates exactly {args.new} tokens), prompts of about 30 tokens, greedy. modelplane: `modelplane"
        " serve --backend huggingface`, OpenAI completions streamed (time to first token: the first text"
        f" event); on a CPU its engine gives torch every core but one ({threads} here). mlserver: MLServer"
        " 1.7.1 + mlserver-huggingface 1.7.1 (a transformers 4.41 text-generation pipeline) with MLServer's"
        " defaults (one inference worker, no adaptive batching, torch's own threads); mlserver-1t: the same"
        " with `intra_op_threads: 1`; both V2 infer, which does not stream, so their"
        " time to first token is the whole answer's. generate: transformers' `model.generate`, one request"
        f" at a time in arrival order, in the benchmark's own process, on {threads} torch thread(s)."
        " modelplane-2t: modelplane with `--nthread 2` (torch on both cores, the engine's default before it"
        " left a core to the server). C clients send back to back for"
        f" {args.duration:g} s after {args.warmup:g} s of warm-up; output tokens/s = all tokens generated over"
        " the time until the last answer ended; medians of"
        f" {args.rounds} interleaved rounds (tokens/s range in brackets). Each server's greedy answer was"
        " checked against the reference's text first. Server CPU ms/token: user+system CPU of the server's"
        " processes per generated token.",
        "",
        "| server | concurrency | output tokens/s | TTFT p50 ms | TTFT p99 ms | server CPU ms/token"
        " | modelplane ÷ this: tokens/s | ÷ this: TTFT p50 | ÷ this: TTFT p99 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in concurrencies:
        mp = med.get(("modelplane", c))
        for name in ALL_SERVERS:
            row = med.get((name, c))
            if row is None:
                if name in void:
                    md.append(f"| {name} | {c} | void: {void[name]} | | | | | | |")
                continue
            rate, p50, p99, lo, hi, cpu = row
            ratios = ["-", "-", "-"]
            if mp and name != "modelplane":
                ratios = [f"{mp[0] / rate:.2f}×", f"{mp[1] / p50:.2f}×", f"{mp[2] / p99:.2f}×"]
            cpu_text = "-" if cpu != cpu else f"{cpu:.2f}"
            md.append(
                f"| {name} | {c} | {rate:,.0f} [{lo:,.0f}–{hi:,.0f}] | {p50:,.1f} | {p99:,.1f} | {cpu_text}"
                f" | {' | '.join(ratios)} |"
            )
    md += ["", "### Targets", ""]
    for peer in ("mlserver", "mlserver-1t"):
        for c in concurrencies:
            mp, ml = med.get(("modelplane", c)), med.get((peer, c))
            if mp and ml:
                ahead = mp[0] > ml[0] and mp[1] < ml[1] and mp[2] < ml[2]
                md.append(
                    f"- c={c}: modelplane {mp[0] / ml[0]:.2f}× {peer}'s tokens/s, TTFT p50 {mp[1] / ml[1]:.2f}×,"
                    f" p99 {mp[2] / ml[2]:.2f}× (target: more tokens/s, lower TTFT): {'met' if ahead else 'MISSED'}"
                )
            else:
                md.append(f"- c={c}: against {peer} not evaluated (a side was not measured)")
    one, eight = med.get(("modelplane", 1)), med.get(("modelplane", 8))
    if one and eight:
        md.append(
            f"- modelplane at c=8 makes {eight[0] / one[0]:.2f}× its tokens/s at c=1 (target ≥ 3×):"
            f" {'met' if eight[0] >= 3 * one[0] else 'MISSED'}"
        )
    md.append("")
    if void:
        md += ["Void:", ""] + [f"- {name}: {why}" for name, why in void.items()] + [""]
    versions = collect_versions(mlserver_python)
    if commits:
        versions["modelplane code measured"] = ", ".join(
            f"{rev} (rounds {','.join(map(str, r))})" for rev, r in commits.items()
        )
    md.append("Versions: " + "; ".join(f"{k} {v}" for k, v in versions.items()) + ".")
    return "\n".join(md) + "\n"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def collect_versions(mlserver_python: Path | None) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {}\n"
        "for n in sys.argv[1:]:\n"
        "    try: out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: out[n] = '-'\n"
        "print(json.dumps(out))\n"
    )
    versions = {"python": platform.python_version()}
    here = subprocess.run(
        [sys.executable, "-c", code, "torch", "transformers", "httpx"],
        capture_output=True,
        text=True,
        check=True,
    )
    versions.update({f"{k} (current env)": v for k, v in json.loads(here.stdout).items()})
    if mlserver_python:
        names = ["mlserver", "mlserver-huggingface", "transformers", "torch"]
        peer = subprocess.run(
            [str(mlserver_python), "-c", code, *names], capture_output=True, text=True, check=True
        )
        versions.update({f"{k} (mlserver env)": v for k, v in json.loads(peer.stdout).items()})
    return versions


if __name__ == "__main__":
    sys.exit(main())
