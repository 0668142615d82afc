"""A/B of a replica's memory for large V2 JSON requests between two commits: `modelplane serve` (an iris
model) at each commit, a fresh server per round, each sent `--requests` bodies of `--rows` rows of four
FP64 numbers; the growth of the server's peak resident memory (VmHWM) over what it had once ready, and
the median time of a request, rounds alternating the two servers.

    python3 bench/ab_large_json.py --before 7af59f9 --after HEAD --rows 1000000 --rounds 3

Worktrees and logs go to bench/.work/ab/ (as `ab_model_server.py`'s).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import orjson
from ab_model_server import WORK, server, worktree
from harness import log
from server_process import http_request


def peak_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmHWM for process {pid}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--before", required=True)
    parser.add_argument("--after", default="HEAD")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from model_server import train_model  # here: importing it takes bench/ off sys.path

    WORK.mkdir(parents=True, exist_ok=True)
    model = train_model()
    rows = np.random.default_rng(0).random((args.rows, 4)).round(6)
    body = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "input-0",
                    "shape": list(rows.shape),
                    "datatype": "FP64",
                    "data": rows.ravel().tolist(),
                }
            ]
        }
    )
    log(f"body: {len(body) / 2**20:.1f} MiB, {rows.size:,} numbers")
    sides = {}
    for name, revision in (("before", args.before), ("after", args.after)):
        checkout, commit = worktree(revision)
        sides[name] = (server(name, checkout, model.path.parent), commit)
    growth: dict[str, list[float]] = {"before": [], "after": []}
    seconds: dict[str, list[float]] = {"before": [], "after": []}
    for round_number in range(args.rounds):
        order = ("before", "after") if round_number % 2 == 0 else ("after", "before")
        for name in order:
            process, _ = sides[name]
            process.start()
            try:
                process.wait_ready()
                ready = peak_kib(process.proc.pid)
                for _ in range(args.requests):
                    started = time.perf_counter()
                    status, _ = http_request(process.ports[0], "POST", "/v2/models/iris/infer", body)
                    seconds[name].append(time.perf_counter() - started)
                    assert status == 200, status
                growth[name].append((peak_kib(process.proc.pid) - ready) / 1024)
            finally:
                process.stop()
            log(f"round {round_number + 1} {name}: peak grew {growth[name][-1]:.0f} MiB")
    print(
        f"| code | commit | peak growth MiB (median of {args.rounds}) | per body byte | request s (median) |"
    )
    print("|---|---|---:|---:|---:|")
    for name in ("before", "after"):
        grown = statistics.median(growth[name])
        print(
            f"| {name} | {sides[name][1]} | {grown:.0f} | {grown * 2**20 / len(body):.1f} | "
            f"{statistics.median(seconds[name]):.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
