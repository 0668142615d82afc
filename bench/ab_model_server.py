"""A/B of modelplane's own request path between two commits: the same iris model served by
`modelplane serve` at each commit (a git worktree of each on PYTHONPATH), wrk at concurrency 16 over V2
REST (`--protocol v1`: V1), rounds alternating the two servers; medians and the round-by-round ratios (after / before).

    python3 bench/ab_model_server.py --before 4a8a771 --after HEAD --rounds 10

Worktrees and logs go to bench/.work/ab/. The peers' comparison is `model_server.py`; this script answers
whether a change made modelplane itself faster or slower.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from harness import free_port, log
from server_process import ServerProcess
from wrk_load import measured_wrk, run_wrk

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / ".work" / "ab"


def worktree(revision: str) -> tuple[Path, str]:
    """A checkout of `revision` under bench/.work/ab (made once per commit), and its short commit."""
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", revision], capture_output=True, text=True, check=True
    ).stdout.strip()
    folder = WORK / commit
    if not folder.exists():
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(folder), commit],
            check=True,
            capture_output=True,
        )
    return folder, commit


def server(name: str, checkout: Path, model_dir: Path) -> ServerProcess:
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "modelplane",
        "serve",
        "--model-dir",
        str(model_dir),
        "--model-name",
        "iris",
    ]
    argv += ["--runtime", "sklearn", "--http-port", str(port), "--grpc-port", "-1", "--workers", "1"]
    argv += ["--host", "127.0.0.1"]
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    return ServerProcess(
        name, argv, env, checkout, WORK / f"{name}.log", [(port, "/v2/models/iris/ready")], [port]
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--before", required=True)
    parser.add_argument("--after", default="HEAD")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--protocol", choices=("v2", "v1"), default="v2", help="REST predict of either")
    args = parser.parse_args()

    from model_server import train_model  # here: importing it takes bench/ off sys.path

    WORK.mkdir(parents=True, exist_ok=True)
    model = train_model()
    body = WORK / f"{args.protocol}.json"
    if args.protocol == "v2":
        document = {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": [model.row]}]}
        path = "/v2/models/iris/infer"
    else:
        document = {"instances": [model.row]}
        path = "/v1/models/iris:predict"
    body.write_text(json.dumps(document))
    sides = {}
    for name, revision in (("before", args.before), ("after", args.after)):
        checkout, commit = worktree(revision)
        sides[name] = (server(name, checkout, model.path.parent), commit)
    results: dict[str, list] = {"before": [], "after": []}
    for round_number in range(args.rounds):
        order = ("before", "after") if round_number % 2 == 0 else ("after", "before")
        for name in order:
            process, _ = sides[name]
            process.start()
            try:
                process.wait_ready()
                url = f"http://127.0.0.1:{process.ports[0]}{path}"
                run_wrk(url, args.concurrency, args.warmup, body, "application/json")
                run = measured_wrk(
                    process.pgid, url, args.concurrency, args.duration, body, "application/json"
                )
                results[name].append(run)
            finally:
                process.stop()
            run = results[name][-1]
            log(
                f"round {round_number + 1} {name}: {run.rps:,.0f} req/s, {run.server_cpu_ms * 1e3:.1f} µs CPU/request"
            )
    ratios = [a.rps / b.rps for a, b in zip(results["after"], results["before"], strict=True)]
    cpu_ratios = [
        a.server_cpu_ms / b.server_cpu_ms for a, b in zip(results["after"], results["before"], strict=True)
    ]
    print(f"| code | commit | req/s | p99 ms | server CPU µs/request |  (medians of {args.rounds} rounds)")
    print("|---|---|---:|---:|---:|")
    for name in ("before", "after"):
        runs = results[name]
        rps = statistics.median(run.rps for run in runs)
        p99 = statistics.median(run.p99_ms for run in runs)
        cpu = statistics.median(run.server_cpu_ms for run in runs) * 1e3
        print(f"| {name} | {sides[name][1]} | {rps:,.0f} | {p99:.2f} | {cpu:.1f} |")
    print(
        f"\npaired ratios (after / before): median {statistics.median(ratios):.2f}, "
        f"range {min(ratios):.2f} to {max(ratios):.2f}; server CPU per request: median "
        f"{statistics.median(cpu_ratios):.2f}, range {min(cpu_ratios):.2f} to {max(cpu_ratios):.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
