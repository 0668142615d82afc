"""GPU TorchServe benchmark (issue 11): the same `.mar` image classifier served by modelplane on a GPU, with
batching off (batchSize 1) and on (batchSize 8), in images/s, p50 and p99.

It runs in two steps, because the accelerator machine has no network and only some sessions get one:

    python3 bench/gpu_torchserve.py --prepare               # here: the store, the wheels, the `run` call
    python3 bench/gpu_torchserve.py                         # there: the measurement (--device cuda)
    python3 bench/gpu_torchserve.py --device cpu --duration 3  # a dry run on any machine (CPU)

`--prepare` packs bench/torchserve.py's archive (torchvision's mobilenet_v3_small behind TorchServe's stock
`image_classifier` handler, built by that script's own functions) into bench/.device/, with the picture and
the V1 request body, and downloads into .whl/ the wheels (Python 3.12, manylinux x86_64) of the packages
`modelplane serve` with the torchserve runtime needs that the device image lacks. Both folders are ignored by
git, so they travel to the device machine only when the `run` call names them in `carry`; the call printed
at the end does, installs the wheels into /tmp/site, and runs this script.

The measurement starts `python3 -m modelplane serve --model-dir <store> --workers 1` from the checkout for
each batch size (one model worker, `maxBatchDelay` 20 ms, OMP_NUM_THREADS=1 as in bench/torchserve.py),
checks its answer against the network run in this process on the same device, checks that the server holds
memory on the GPU (nvidia-smi), and loads it with V1 `POST /v1/models/classifier:predict`
`{"instances": [{"data": "<base64 JPEG>"}]}` from client processes of its own: asyncio, raw HTTP/1.1
keep-alive connections, one request in flight each, at concurrency 16 and 64, for `--duration` seconds after
`--warmup` seconds of the same load. It prints a markdown table (and writes it to $OUT/gpu_torchserve.md when
OUT is set, after every row) to paste under "## TorchServe" in bench/RESULTS.md.
"""

# ruff: noqa: E402 (imports after the sys.path fix below)
from __future__ import annotations

import importlib.util
import os
import sys

from harness import free_port, log
from server_process import ServerProcess, group_cpu_seconds, http_request

BENCH = os.path.dirname(os.path.abspath(__file__))


def _load_torchserve_bench():
    """bench/torchserve.py, whose builders this script reuses, as module `bench_torchserve` (the name
    `torchserve` would shadow the TorchServe package). Loading it also takes bench/ off sys.path."""
    spec = importlib.util.spec_from_file_location("bench_torchserve", os.path.join(BENCH, "torchserve.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


tsb = _load_torchserve_bench()
if sys.path and os.path.abspath(sys.path[0] or ".") == BENCH:
    del sys.path[0]

import argparse
import asyncio
import datetime
import importlib.metadata
import json
import multiprocessing
import platform
import shutil
import signal
import statistics
import subprocess
import tarfile
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(BENCH).parent
DEVICE_DIR = REPO / "bench" / ".device"  # what the device run reads: carried, so kept small
WHEELS = REPO / ".whl"
WORK = REPO / "bench" / ".work" / "gpu_torchserve"  # stores and server logs of a run: not carried
ARCHIVE = DEVICE_DIR / "model-store" / f"{tsb.MODEL_NAME}.mar"
PICTURE = DEVICE_DIR / "china.jpg"
V1_BODY = DEVICE_DIR / "v1_request.json"
PREPARED = DEVICE_DIR / "prepared.json"
V1_PATH = f"/v1/models/{tsb.MODEL_NAME}:predict"
CARRY = [".whl", "bench/.device"]
TRAVEL_LIMIT = 64 * 2**20  # what the device tool sends at most: tree, untracked files and carried paths

# The device image's Python packages, as /work/.library/device/KINDS.md lists them (read 2026-11-17; the
# image has Python 3.12, torch 2.11, torchvision 0.26). A requirement named here is not carried.
DEVICE_PACKAGES = """
    absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch
    build certifi charset-normalizer chex click cloudpickle cmake colorama contourpy coverage
    cuda-bindings cuda-core cuda-pathfinder cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn einops
    equinox etils execnet filelock flatbuffers flax fonttools formulaic frozenlist fsspec gpytorch
    grpcio h11 h5py hf-xet httpcore httpx huggingface-hub humanize hypothesis idna imageio iniconfig
    interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin jaxlib jaxtyping jinja2 joblib kiwisolver
    lazy-loader lightning lightning-utilities linear-operator lineax llvmlite lxml markdown
    markdown-it-py markupsafe matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack multidict
    multipledispatch mypy-extensions nanobind narwhals networkx ninja numba numba-cuda numpy numpyro
    nvidia-cublas nvidia-cuda-cupti nvidia-cuda-nvrtc nvidia-cuda-runtime nvidia-cudnn-cu13 nvidia-cufft
    nvidia-cufile nvidia-curand nvidia-cusolver nvidia-cusparse nvidia-cusparselt-cu13 nvidia-ml-py
    nvidia-nccl-cu13 nvidia-nvjitlink nvidia-nvshmem-cu13 nvidia-nvtx onnx onnx-ir onnxruntime
    onnxscript opencv-python-headless optax opt-einsum opt-einsum-fx optimistix orbax-checkpoint
    packaging pandas pathspec patsy peft pillow pip pluggy portalocker prometheus-client propcache
    protobuf psutil pyarrow pybind11 py-cpuinfo pygments pyparsing pyproject-hooks pyre-extensions
    pytest pytest-benchmark pytest-cov pytest-mock pytest-timeout pytest-xdist python-dateutil
    pytorch-lightning pyyaml regex requests rich sacrebleu safetensors scikit-build-core scikit-image
    scikit-learn scipy seaborn sentencepiece sentence-transformers setuptools shellingham simplejson six
    sortedcontainers statsmodels sympy tabulate tensorboard tensorboard-data-server tensorstore
    threadpoolctl tifffile tiktoken timm tokenizers toolz torch torchaudio torchdiffeq torch-geometric
    torchmetrics torchvision tqdm transformers treescope triton typer typing-extensions typing-inspect
    urllib3 uvloop wadler-lindig werkzeug wheel wrapt xarray xxhash yarl zipp
"""
DEVICE_HAS = set(DEVICE_PACKAGES.split())
NOT_SERVED = {"torch-model-archiver"}  # packs .mar archives; the store arrives packed
DEVICE_PYTHON = {  # the device's interpreter, for requirement markers
    "python_version": "3.12",
    "python_full_version": "3.12.3",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "platform_system": "Linux",
    "sys_platform": "linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
    "extra": "",
}
PIP_DOWNLOAD = [
    *("-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", "--python-version", "3.12"),
    *("--implementation", "cp", "--abi", "cp312", "--abi", "abi3", "--abi", "none"),
    *("--platform", "manylinux_2_28_x86_64", "--platform", "manylinux_2_27_x86_64"),
    *("--platform", "manylinux_2_17_x86_64", "--platform", "manylinux2014_x86_64"),
    *("--platform", "manylinux1_x86_64", "--platform", "any"),
]
INSTALL = (
    "python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site"
    " .whl/*.whl && export PYTHONPATH=/tmp/site || exit"
)


# --------------------------------------------------------------------------------------------- prepare


def prepare(skip_wheels: bool) -> int:
    shutil.rmtree(DEVICE_DIR, ignore_errors=True)
    DEVICE_DIR.mkdir(parents=True)
    tsb.WORK = DEVICE_DIR  # build_archive and prepare_picture write under their module's WORK
    log(f"packing {tsb.ARCH} into {ARCHIVE.relative_to(REPO)} with torch-model-archiver")
    archive, net = tsb.build_archive()
    assert archive == ARCHIVE
    picture = tsb.prepare_picture(net)  # writes v1_request.json
    shutil.rmtree(DEVICE_DIR / "source")  # model file and weights: the archive holds both
    shutil.copyfile(picture.jpeg, PICTURE)
    PREPARED.write_text(
        json.dumps(
            {
                "prepared": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
                "modelplane_commit": tsb.modelplane_commit(),
                "top_class_cpu": picture.top_class,
            },
            indent=1,
        )
    )
    if not skip_wheels:
        download_wheels()
    size = travel_size()
    for path in CARRY:
        log(f"{path}: {tree_size(REPO / path) / 2**20:.1f} MiB")
    log(f"what the run call sends: {size / 2**20:.1f} MiB of {TRAVEL_LIMIT / 2**20:.0f} MiB")
    if size >= TRAVEL_LIMIT:
        raise SystemExit("too large to travel: carry less")
    command = (
        f"{INSTALL}; set -o pipefail; PYTHONUNBUFFERED=1 timeout 420 python3 bench/gpu_torchserve.py"
        " 2>&1 | tee $OUT/gpu_torchserve.log"
    )
    print("\nThe device run (about 5 minutes), as one call of the tool `run`:\n")
    print(json.dumps({"command": command, "carry": CARRY, "timeout_s": 480}, indent=1))
    print("\nThen paste $OUT/gpu_torchserve.md under '## TorchServe' in bench/RESULTS.md.")
    return 0


def served_requirements() -> list:
    """modelplane's core dependencies and its torchserve extra (with the extras it names), as Requirements."""
    import tomllib

    from packaging.requirements import Requirement

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(text) for text in project["dependencies"]]
    extras, seen = ["torchserve"], set()
    while extras:
        extra = extras.pop()
        seen.add(extra)
        for requirement in map(Requirement, project["optional-dependencies"][extra]):
            if requirement.name == "modelplane":
                extras += [name for name in requirement.extras if name not in seen]
            else:
                requirements.append(requirement)
    return requirements


def download_wheels() -> None:
    """Wheels for every requirement the device lacks, and theirs in turn (Requires-Dist without extras),
    at the version installed here where that satisfies the requirement: the code the tests ran."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name, parse_wheel_filename

    shutil.rmtree(WHEELS, ignore_errors=True)
    WHEELS.mkdir()
    wanted, done = served_requirements(), set()
    while wanted:
        batch = {}
        for requirement in wanted:
            name = canonicalize_name(requirement.name)
            if name in DEVICE_HAS or name in NOT_SERVED or name in done or name in batch:
                continue
            if requirement.marker and not requirement.marker.evaluate(DEVICE_PYTHON):
                continue
            batch[name] = pinned(requirement)
        if not batch:
            break
        log(f"downloading {' '.join(batch.values())}")
        subprocess.run([sys.executable, *PIP_DOWNLOAD, "-d", str(WHEELS), *batch.values()], check=True)
        done |= set(batch)
        wanted = []
        for wheel in WHEELS.glob("*.whl"):
            if canonicalize_name(parse_wheel_filename(wheel.name)[0]) in batch:
                wanted += [Requirement(line) for line in requires_dist(wheel)]
    for wheel in WHEELS.glob("torchserve-*.whl"):
        drop_from_wheel(wheel, "ts/frontend/model-server.jar")
    for wheel in sorted(WHEELS.glob("*.whl")):
        log(f"  {wheel.name} ({wheel.stat().st_size / 2**20:.2f} MiB)")


def drop_from_wheel(wheel: Path, member: str) -> None:
    """The wheel rewritten without `member` and its RECORD line. TorchServe's wheel is 40 MiB of Java
    frontend (model-server.jar) that modelplane never starts: its Python handler API is all it uses."""
    slim = wheel.with_suffix(".slim")
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(slim, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            if item.filename == member:
                continue
            data = source.read(item)
            if item.filename.endswith(".dist-info/RECORD"):
                lines = data.decode().splitlines(keepends=True)
                data = "".join(line for line in lines if not line.startswith(member + ",")).encode()
            target.writestr(item, data)
    slim.replace(wheel)


def pinned(requirement) -> str:
    """`name==<version installed here>` where that version satisfies the requirement, else as written."""
    try:
        version = importlib.metadata.version(requirement.name)
    except importlib.metadata.PackageNotFoundError:
        version = None
    if version and requirement.specifier.contains(version, prereleases=True):
        return f"{requirement.name}=={version}"
    return f"{requirement.name}{requirement.specifier}"


def requires_dist(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(name for name in archive.namelist() if name.endswith(".dist-info/METADATA"))
        lines = archive.read(metadata).decode().splitlines()
    return [line.split(":", 1)[1].strip() for line in lines if line.startswith("Requires-Dist:")]


def tree_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def travel_size() -> int:
    """Bytes the device tool sends: tracked files, untracked files git does not ignore, carried paths."""
    listed = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
    ).stdout
    files = {REPO / name for name in listed.decode().split("\0") if name}
    tracked = sum(f.stat().st_size for f in files if f.is_file() and not f.is_symlink())
    return tracked + sum(tree_size(REPO / path) for path in CARRY)


# --------------------------------------------------------------------------------------------- load


@dataclass
class Part:
    """What one client process saw in the measured window."""

    latencies: list[float]  # seconds, of the requests answered in the window
    errors: int
    first_error: str
    cpu_seconds: float  # the process's CPU time over the window


def client_process(port: int, body: bytes, connections: int, t0: float, t1: float) -> Part:
    """One client process: `connections` keep-alive connections, each sending the next request as soon as
    the last is answered, until t1 (wall clock); requests answered between t0 and t1 are counted."""
    try:
        import uvloop

        runner = getattr(uvloop, "run", asyncio.run)  # uvloop.run: 0.18 and later
    except ImportError:
        runner = asyncio.run
    return runner(_clients(port, body, connections, t0, t1))


async def _clients(port: int, body: bytes, connections: int, t0: float, t1: float) -> Part:
    request = (
        f"POST {V1_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode() + body
    part = Part([], 0, "", 0.0)

    async def connection() -> None:
        writer = None
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            while time.time() < t1:
                sent = time.perf_counter()
                writer.write(request)
                status, answer = await read_response(reader)
                latency = time.perf_counter() - sent
                if status != 200:
                    part.errors += 1
                    part.first_error = part.first_error or f"HTTP {status}: {answer[:200]!r}"
                elif t0 <= time.time() <= t1:
                    part.latencies.append(latency)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            part.errors += 1
            part.first_error = part.first_error or f"{type(exc).__name__}: {exc}"
        finally:
            if writer is not None:
                writer.close()

    async def cpu_window() -> None:
        await asyncio.sleep(max(0.0, t0 - time.time()))
        start = time.process_time()
        await asyncio.sleep(max(0.0, t1 - time.time()))
        part.cpu_seconds = time.process_time() - start

    await asyncio.gather(cpu_window(), *(connection() for _ in range(connections)))
    return part


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = None
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length is None:
        raise ValueError(f"an answer without content-length: {head[:300]!r}")
    return status, await reader.readexactly(length)


@dataclass
class Row:
    batch: int
    concurrency: int
    rps: float
    p50_ms: float
    p99_ms: float
    server_cpu_ms: float  # the server's process group, per image
    client_cpu_ms: float  # the client processes together, per request
    gpu_util: float | None  # nvidia-smi's utilization.gpu, mean over the window


def measure(pool, server: ServerProcess, args, concurrency: int, batch: int, device: str) -> Row:
    port = server.ready[0][0]
    body = V1_BODY.read_bytes()
    clients = min(args.clients, concurrency)
    shares = [concurrency // clients + (i < concurrency % clients) for i in range(clients)]
    t0 = time.time() + 1.0 + args.warmup  # a second for the clients to open their connections
    t1 = t0 + args.duration
    pending = pool.starmap_async(client_process, [(port, body, n, t0, t1) for n in shares])
    time.sleep(max(0.0, t0 - time.time()))
    cpu0 = group_cpu_seconds(server.pgid)
    samples = []
    while time.time() < t1:
        if device == "cuda":
            samples += [gpu_utilization()]
        time.sleep(min(0.5, max(0.0, t1 - time.time())))
    cpu1 = group_cpu_seconds(server.pgid)
    try:
        parts = pending.get(timeout=120)  # the requests in flight at t1, answered
    except Exception as exc:  # noqa: BLE001 - a client that failed or hangs voids the row
        raise RuntimeError(f"the clients failed: {type(exc).__name__}: {exc}") from exc
    errors = sum(p.errors for p in parts)
    if errors:
        raise RuntimeError(
            f"{errors} failed requests; the first: {next(p.first_error for p in parts if p.errors)}"
        )
    latencies = sorted(x for p in parts for x in p.latencies)
    if not latencies:
        raise RuntimeError("no request was answered in the measured window")
    samples = [s for s in samples if s is not None]
    return Row(
        batch=batch,
        concurrency=concurrency,
        rps=len(latencies) / args.duration,
        p50_ms=percentile(latencies, 50) * 1e3,
        p99_ms=percentile(latencies, 99) * 1e3,
        server_cpu_ms=(cpu1 - cpu0) / len(latencies) * 1e3,
        client_cpu_ms=sum(p.cpu_seconds for p in parts) / len(latencies) * 1e3,
        gpu_util=statistics.mean(samples) if samples else None,
    )


def percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * q / 100))]


# --------------------------------------------------------------------------------------------- GPU


def nvidia_smi(*query: str) -> list[list[str]] | None:
    """nvidia-smi's CSV answer to a query, as rows of fields; None where it cannot answer."""
    try:
        out = subprocess.run(
            ["nvidia-smi", *query, "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return [[field.strip() for field in line.split(",")] for line in out.stdout.splitlines() if line.strip()]


def gpu_utilization() -> float | None:
    rows = nvidia_smi("--query-gpu=utilization.gpu")
    try:
        return float(rows[0][0]) if rows else None
    except ValueError:
        return None


def gpu_memory_used_mib() -> float | None:
    import torch

    free, total = torch.cuda.mem_get_info()
    return (total - free) / 2**20


def on_gpu(server: ServerProcess, memory_before: float | None) -> tuple[bool, str]:
    """Whether the server holds memory on the GPU: a process of its group among nvidia-smi's compute
    processes, or else (where nvidia-smi cannot see processes) the device's used memory grown since the
    server started."""
    apps = nvidia_smi("--query-compute-apps=pid,used_memory") or []
    for pid, used in (row[:2] for row in apps if len(row) >= 2):
        if pid.isdigit() and process_group(int(pid)) == server.pgid:
            return True, f"nvidia-smi: the server's process {pid} holds {used} MiB"
    memory_after = gpu_memory_used_mib()
    if memory_before is not None and memory_after is not None:
        grown = memory_after - memory_before
        seen = f"nvidia-smi lists {len(apps)} compute processes, none of the server's;"
        return grown > 100, f"{seen} the GPU's used memory grew {grown:.0f} MiB since the server started"
    return False, "nvidia-smi lists no process of the server's"


def process_group(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2 :].split()[2])


# --------------------------------------------------------------------------------------------- checks


def reference_answer(device: str) -> dict[str, float]:
    """The archived network run in this process on `device` over the picture, through the stock handler's
    own transforms: the top 5 {label: probability}, as the handler answers."""
    import torch
    from PIL import Image
    from ts.torch_handler.image_classifier import ImageClassifier

    with tempfile.TemporaryDirectory() as folder, zipfile.ZipFile(ARCHIVE) as archive:
        archive.extractall(folder)
        spec = importlib.util.spec_from_file_location("classifier_model", Path(folder) / "model.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        net = module.ImageClassifier()
        net.load_state_dict(torch.load(Path(folder) / "weights.pt", map_location="cpu"))
        labels = json.loads((Path(folder) / "index_to_name.json").read_text())
    net = net.eval().to(device)
    picture = ImageClassifier.image_processing(Image.open(PICTURE).convert("RGB"))[None].to(device)
    with torch.inference_mode():
        probabilities, classes = torch.softmax(net(picture), dim=1).topk(5)
    return {labels[str(c)]: p for c, p in zip(classes[0].tolist(), probabilities[0].tolist(), strict=True)}


def check_answer(server: ServerProcess, reference: dict[str, float]) -> str:
    """The server's answer must name the reference's top class; the largest difference of the top-5
    probabilities is reported (modelplane folds batch norms and resizes and crops in one resampling, so
    the two may differ in rounding)."""
    port = server.ready[0][0]
    for _ in range(240):
        status, body = http_request(port, "POST", V1_PATH, V1_BODY.read_bytes())
        if status != 503:  # a worker may still be starting
            break
        time.sleep(0.5)
    if status != 200:
        raise RuntimeError(f"HTTP {status}: {body[:300]!r}")
    answer = json.loads(body)["predictions"][0]
    top, expected = max(answer, key=answer.get), max(reference, key=reference.get)
    if top != expected:
        raise RuntimeError(f"top class {top}, expected {expected}: {answer} against {reference}")
    diff = max(abs(answer[k] - p) for k, p in reference.items() if k in answer)
    return f"top class {top} as in-process; top-5 probabilities within {diff:.1e}"


def check_requirements() -> list[str]:
    """Installed packages that do not satisfy modelplane's requirements (the device image's own
    versions are not known ahead): warnings, since the server may still run."""
    problems = []
    for requirement in served_requirements():
        if requirement.name in NOT_SERVED or (
            requirement.marker and not requirement.marker.evaluate(DEVICE_PYTHON)
        ):
            continue
        try:
            version = importlib.metadata.version(requirement.name)
        except importlib.metadata.PackageNotFoundError:
            problems.append(f"{requirement.name} is missing")
            continue
        if not requirement.specifier.contains(version, prereleases=True):
            problems.append(f"{requirement.name} {version} does not satisfy {requirement}")
    return problems


# --------------------------------------------------------------------------------------------- run


def build_server(batch: int, device: str, tag: str) -> ServerProcess:
    tsb.WORK = WORK  # write_store writes the store under its module's WORK
    store = tsb.write_store(ARCHIVE, batch)
    http_port, grpc_port = free_port(), free_port()
    env = tsb.base_env()
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(REPO), env.get("PYTHONPATH", "")] if p)
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""  # a dry run stays on the CPU also where there is a GPU
    argv = [sys.executable, "-m", "modelplane", "serve", "--model-dir", str(store), "--workers", "1"]
    argv += ["--http-port", str(http_port), "--grpc-port", str(grpc_port), "--host", "127.0.0.1"]
    return ServerProcess(
        f"modelplane-b{batch}",
        argv,
        env,
        WORK,
        WORK / "logs" / f"modelplane-b{batch}-{tag}.log",
        ready=[(http_port, f"/v2/models/{tsb.MODEL_NAME}/ready")],
        ports=[http_port, grpc_port],
    )


def run(args) -> int:
    if not ARCHIVE.exists() or not PREPARED.exists():
        raise SystemExit(
            f"{ARCHIVE.relative_to(REPO)} is missing: run `python3 bench/gpu_torchserve.py --prepare`"
        )
    # The client processes are forked now, before torch starts any thread or touches the GPU.
    pool = multiprocessing.get_context("fork").Pool(args.clients)
    started = datetime.datetime.now(datetime.UTC)
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("torch sees no GPU (use --device cpu for a dry run)")
    info = run_info(args.device)
    for line in info["warnings"]:
        log(f"WARNING: {line}")
    log(f"device: {info['device']}")
    reference = reference_answer(args.device)
    log(f"in-process answer on {args.device}: {reference}")
    rows: list[Row] = []
    checks: dict[int, list[str]] = {}
    void: dict[int, str] = {}
    try:
        for rnd in range(args.rounds):
            batches = args.batch if rnd % 2 == 0 else args.batch[::-1]
            for batch in batches:
                if batch in void:
                    continue
                server = build_server(batch, args.device, f"r{rnd + 1}")
                log(f"round {rnd + 1}/{args.rounds}: batchSize {batch}")
                memory_before = gpu_memory_used_mib() if args.device == "cuda" else None
                try:
                    server.start()
                    server.wait_ready()
                    found = [check_answer(server, reference)]
                    if args.device == "cuda":
                        held, how = on_gpu(server, memory_before)
                        found.append(("on the GPU: " if held else "NOT ON THE GPU: ") + how)
                    for line in found:
                        log(f"batchSize {batch}: {line}")
                    checks.setdefault(batch, found)
                    for c in args.concurrency:
                        row = measure(pool, server, args, c, batch, args.device)
                        rows.append(row)
                        util = "-" if row.gpu_util is None else f"{row.gpu_util:.0f}%"
                        log(
                            f"b={batch} c={c:<3d} {row.rps:7.1f} img/s  p50 {row.p50_ms:7.1f} ms"
                            f"  p99 {row.p99_ms:7.1f} ms  server CPU {row.server_cpu_ms:5.1f} ms/img"
                            f"  clients {row.client_cpu_ms:4.2f} ms/req  GPU {util}"
                        )
                        write_out(render(rows, checks, void, info, args, started))
                except RuntimeError as exc:
                    log(f"batchSize {batch}: VOID: {exc}")
                    void[batch] = str(exc)
                    rows = [r for r in rows if r.batch != batch]
                finally:
                    server.stop()
    finally:
        pool.terminate()
        save_logs()
    markdown = render(rows, checks, void, info, args, started)
    write_out(markdown)
    print(markdown)
    return 1 if void else 0


def write_out(markdown: str) -> None:
    if os.environ.get("OUT"):
        Path(os.environ["OUT"]).mkdir(parents=True, exist_ok=True)
        Path(os.environ["OUT"], "gpu_torchserve.md").write_text(markdown)


def save_logs() -> None:
    """The servers' logs, as one file under $OUT (the device tool brings back at most 8 files)."""
    if os.environ.get("OUT") and (WORK / "logs").is_dir():
        Path(os.environ["OUT"]).mkdir(parents=True, exist_ok=True)
        with tarfile.open(Path(os.environ["OUT"], "gpu_torchserve_logs.tar.gz"), "w:gz") as tar:
            tar.add(WORK / "logs", arcname="logs")


def run_info(device: str) -> dict:
    import torch

    prepared = json.loads(PREPARED.read_text())
    versions = {"python": platform.python_version()}
    for package in ("torch", "torchvision", "torchserve", "pillow", "numpy", "uvloop"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "-"
    try:
        commit = tsb.modelplane_commit()
    except OSError:  # no git there
        commit = "?"
    versions["modelplane"] = (
        commit if not commit.startswith("?") else f"{prepared['modelplane_commit']} (prepared)"
    )
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        driver = (nvidia_smi("--query-gpu=driver_version") or [["?"]])[0][0]
        what = (
            f"{props.name}, {props.total_memory / 2**30:.0f} GiB, driver {driver}, CUDA {torch.version.cuda}"
        )
    else:
        what = "CPU (a dry run)"
    return {
        "device": what,
        "cpu": f"{os.cpu_count()} cores ({tsb.cpu_model()})",
        "versions": versions,
        "warnings": check_requirements(),
    }


# --------------------------------------------------------------------------------------------- report


def render(rows: list[Row], checks, void, info, args, started) -> str:
    by_key: dict[tuple[int, int], list[Row]] = {}
    for row in rows:
        by_key.setdefault((row.batch, row.concurrency), []).append(row)
    md = [
        f"Run {started.strftime('%Y-%m-%d %H:%M UTC')} on {info['device']}; {info['cpu']}.",
        "",
        "    python3 bench/gpu_torchserve.py " + " ".join(sys.argv[1:]),
        "",
        f"The same `{tsb.MODEL_NAME}.mar` as above (torchvision's {tsb.ARCH}, eager mode, TorchServe's stock"
        " `image_classifier` handler) served by `python3 -m modelplane serve --model-dir <store> --workers 1`"
        f" on {args.device}: one model worker, OMP_NUM_THREADS={tsb.THREADS}, batchSize 1 or 8"
        f" (maxBatchDelay {tsb.MAX_BATCH_DELAY_MS} ms). V1 `{V1_PATH}` with the base64 `china.jpg`"
        f" (262 KB), from {args.clients} client process(es) of raw HTTP/1.1 keep-alive connections (asyncio),"
        f" one request in flight each; {args.rounds} round(s), batch sizes alternating, {args.duration:g} s"
        f" per row after {args.warmup:g} s of warm-up; medians of the rounds (images/s range in brackets)."
        " Server CPU: user+system of the server's processes per image; clients: the client processes' CPU"
        " per request; GPU: nvidia-smi's utilization.gpu over the window.",
        "",
        "| batchSize | c | images/s | p50 ms | p99 ms | GPU util | server CPU ms/image | client CPU ms/req |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (batch, c), runs in sorted(by_key.items()):
        rps = [r.rps for r in runs]
        p50, p99 = (statistics.median(r.p50_ms for r in runs), statistics.median(r.p99_ms for r in runs))
        utils = [r.gpu_util for r in runs if r.gpu_util is not None]
        util = f"{statistics.median(utils):.0f}%" if utils else "-"
        md.append(
            f"| {batch} | {c} | {statistics.median(rps):.1f} [{min(rps):.1f}–{max(rps):.1f}]"
            f" | {p50:.1f} | {p99:.1f} | {util} | {statistics.median(r.server_cpu_ms for r in runs):.1f}"
            f" | {statistics.median(r.client_cpu_ms for r in runs):.2f} |"
        )
    md.append("")
    for batch, found in sorted(checks.items()):
        md.append(f"- batchSize {batch}: " + "; ".join(found) + ".")
    for batch, why in sorted(void.items()):
        md.append(f"- batchSize {batch}: VOID: {why}")
    for line in info["warnings"]:
        md.append(f"- requirement not met: {line}")
    md += ["", "Versions: " + "; ".join(f"{k} {v}" for k, v in info["versions"].items()) + "."]
    return "\n".join(md) + "\n"


# --------------------------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--prepare", action="store_true", help="build bench/.device/ and .whl/, print the run call"
    )
    parser.add_argument("--skip-wheels", action="store_true", help="with --prepare: the store only")
    parser.add_argument(
        "--device", choices=["cuda", "cpu"], default="cuda", help="cpu: a dry run (default cuda)"
    )
    parser.add_argument("--rounds", type=int, default=2, help="rounds; medians reported (default 2)")
    parser.add_argument("--duration", type=float, default=12.0, help="seconds measured per row (default 12)")
    parser.add_argument(
        "--warmup", type=float, default=4.0, help="seconds of load before each row (default 4)"
    )
    parser.add_argument("--concurrency", default="16,64", help="comma-separated (default 16,64)")
    parser.add_argument("--batch", default="1,8", help="batchSize values, comma-separated (default 1,8)")
    parser.add_argument(
        "--clients",
        type=int,
        default=max(1, min(4, (os.cpu_count() or 1) // 4)),
        help="client processes (default: a quarter of the cores, 1 to 4)",
    )
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a SIGTERM (timeout) still stops the server
    if args.prepare:
        return prepare(args.skip_wheels)
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    args.batch = [int(b) for b in args.batch.split(",")]
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
