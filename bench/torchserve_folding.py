"""What folding batch norms into convolutions saves a stock vision handler's worker, in one process.

Two workers of the TorchServe benchmark's `classifier.mar` (mobilenet_v3_small behind the stock
`image_classifier` handler, batchSize 8), loaded side by side in this process: one as modelplane serves it,
its network folded, the other kept to the network as loaded. Rounds alternate between them; each round runs
five batches of eight `china.jpg` pictures through the whole worker (preprocess, network, postprocess) and
then the network alone on one prepared batch. Reports the medians: CPU ms per picture for the whole
worker, and wall ms per batch for the network. One thread (OMP_NUM_THREADS=1), as the benchmark runs it.

    python3 bench/torchserve.py --batch 8 --concurrency 16 --rounds 1   # builds bench/.work/torchserve/store-b8
    python3 bench/torchserve_folding.py
"""

# ruff: noqa: E402 (imports after the environment and sys.path are set)
from __future__ import annotations

import os
import sys

os.environ["OMP_NUM_THREADS"] = "1"
# bench/ is first on sys.path, where the sibling torchserve.py would shadow a module of that name.
if sys.path and os.path.abspath(sys.path[0] or ".") == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]

import statistics
import time
from pathlib import Path

import sklearn.datasets
import torch
from ts.context import RequestProcessor

from modelplane.runtimes.torchserve.handler_model import TorchServeModel
from modelplane.runtimes.torchserve.store import read_store

STORE = Path(__file__).resolve().parent / ".work" / "torchserve" / "store-b8"
PICTURE = (Path(sklearn.datasets.__file__).parent / "images" / "china.jpg").read_bytes()
BATCH = 8
ROUNDS = 7


def worker(folded: bool):
    store = read_store(STORE)
    model = TorchServeModel(store.models[0], store)
    model.load()
    loaded = model._workers[0]
    if not folded:
        loaded._network._candidate = None
    return loaded


def run_batch(loaded) -> None:
    context = loaded.new_context()
    context.request_ids = {index: str(index) for index in range(BATCH)}
    context.request_processor = [RequestProcessor({}) for _ in range(BATCH)]
    context.metrics.request_ids = context.request_ids
    loaded.run([{"body": PICTURE}] * BATCH, context)


def measure(loaded) -> tuple[float, float]:
    started = time.process_time()
    for _ in range(5):
        run_batch(loaded)
    cpu_ms_per_picture = (time.process_time() - started) / (5 * BATCH) * 1000
    handler = loaded.handler
    prepared = loaded._layout.arrange(handler.preprocess([{"body": PICTURE}] * BATCH))
    started = time.perf_counter()
    for _ in range(5):
        handler.inference(prepared)
    return cpu_ms_per_picture, (time.perf_counter() - started) / 5 * 1000


def main() -> None:
    if not STORE.is_dir():
        sys.exit(f"no {STORE}: run bench/torchserve.py --batch 8 first")
    torch.set_num_threads(1)
    workers = {"as loaded": worker(folded=False), "folded": worker(folded=True)}
    for loaded in workers.values():
        run_batch(loaded)  # the folded worker checks and keeps its network here
        run_batch(loaded)
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in workers}
    for _ in range(ROUNDS):
        for name, loaded in workers.items():
            results[name].append(measure(loaded))
    print("| network | worker CPU ms/picture | network ms/batch of 8 | network's type |")
    print("|---|---:|---:|---|")
    for name, rows in results.items():
        cpu = statistics.median(row[0] for row in rows)
        network = statistics.median(row[1] for row in rows)
        print(f"| {name} | {cpu:.2f} | {network:.1f} | {type(workers[name].handler.model).__name__} |")


if __name__ == "__main__":
    main()
