"""A/B of a replica's memory for large JSON requests between two commits: `modelplane serve` (an iris
model) at each commit, a fresh server per round, each sent `--requests` bodies of `--rows` rows of four
FP64 numbers (a V2 tensor's flat `data`, or with `--protocol v1` V1 `instances`, a list per row); the
growth of the server's peak resident memory (VmHWM) over what it had once ready, and the median time of
a request, rounds alternating the two servers.

    python3 bench/ab_large_json.py --before 7af59f9 --after HEAD --rows 1000000 --rounds 3 [--kserve]
    python3 bench/ab_large_json.py --before 89df5be --after HEAD --protocol v1 --kserve

With `--kserve`, KServe 0.21's ModelServer serving the same model (bench/peers/kserve_iris.py, from
bench/.envs/ms-kserve as `model_server.py` makes it) is measured beside them.
Worktrees and logs go to bench/.work/ab/ (as `ab_model_server.py`'s).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import orjson
from ab_model_server import WORK, server, worktree
from harness import free_port, log
from server_process import ServerProcess, http_request
from venvs import ensure_venv


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
    parser.add_argument("--kserve", action="store_true", help="measure KServe 0.21's ModelServer too")
    parser.add_argument("--protocol", choices=("v2", "v1"), default="v2")
    args = parser.parse_args()

    from model_server import KSERVE_ENV, PEERS, train_model  # here: importing it takes bench/ off sys.path

    WORK.mkdir(parents=True, exist_ok=True)
    model = train_model()
    rows = np.random.default_rng(0).random((args.rows, 4)).round(6)
    if args.protocol == "v1":
        body = orjson.dumps({"instances": rows.tolist()})
        path = "/v1/models/iris:predict"
    else:
        tensor = {
            "name": "input-0",
            "shape": list(rows.shape),
            "datatype": "FP64",
            "data": rows.ravel().tolist(),
        }
        body = orjson.dumps({"inputs": [tensor]})
        path = "/v2/models/iris/infer"
    log(f"body: {len(body) / 2**20:.1f} MiB, {rows.size:,} numbers")
    sides = {}
    for name, revision in (("before", args.before), ("after", args.after)):
        checkout, commit = worktree(revision)
        sides[name] = (server(name, checkout, model.path.parent), commit)
    if args.kserve:
        import sklearn

        python = ensure_venv(KSERVE_ENV, ["kserve==0.21.0", f"scikit-learn=={sklearn.__version__}", "joblib"])
        port = free_port()
        argv = [str(python), str(PEERS / "kserve_iris.py"), "--model_dir", str(model.path.parent)]
        argv += ["--model_name", "iris", "--http_port", str(port), "--grpc_port", str(free_port())]
        argv += ["--workers", "1", "--configure_logging", "false", "--enable_latency_logging", "false"]
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        peer = ServerProcess(
            "kserve", argv, env, WORK, WORK / "kserve.log", [(port, "/v2/models/iris/ready")], [port]
        )
        sides["kserve"] = (peer, "0.21.0")
    names = list(sides)
    growth: dict[str, list[float]] = {name: [] for name in names}
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for round_number in range(args.rounds):
        order = names[round_number % len(names) :] + names[: round_number % len(names)]
        for name in order:
            process, _ = sides[name]
            process.start()
            try:
                process.wait_ready()
                ready = peak_kib(process.proc.pid)
                for _ in range(args.requests):
                    started = time.perf_counter()
                    status, _ = http_request(process.ports[0], "POST", path, body)
                    seconds[name].append(time.perf_counter() - started)
                    assert status == 200, status
                growth[name].append((peak_kib(process.proc.pid) - ready) / 1024)
            finally:
                process.stop()
            log(f"round {round_number + 1} {name}: peak grew {growth[name][-1]:.0f} MiB")
    print(
        f"| server | commit or version | peak growth MiB (median of {args.rounds}) | per body byte | request s (median) |"
    )
    print("|---|---|---:|---:|---:|")
    for name in names:
        grown = statistics.median(growth[name])
        print(
            f"| {name} | {sides[name][1]} | {grown:.0f} | {grown * 2**20 / len(body):.1f} | "
            f"{statistics.median(seconds[name]):.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
