"""What a replica's `resources` mean on one machine.

- `cpu` (the limit, else the request; `500m`, `2`, `2.5`) is a number of threads, rounded up and at
  least 1. The replica gets it in the variables the numeric libraries read when they start
  (`THREAD_ENV`: OpenMP, MKL, OpenBLAS, numexpr, TensorFlow's intra- and inter-op pools; PyTorch
  reads OMP_NUM_THREADS and MKL_NUM_THREADS), and `modelplane serve` gets it as `--nthread`.
- `memory` (the limit) is what the replica's processes may hold; the supervisor stops a replica
  over it (`replicas/memory_watch.py`).
- `nvidia.com/gpu` (the limit, else the request) is a number of GPUs the replica has to itself, named
  in `CUDA_VISIBLE_DEVICES` (`replicas/gpus.py`). A replica that asks for none sees none.

A container's own limits apply, bounded by the pod-level `resources` of its component where those
are set, as Kubernetes bounds a container by its pod.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from modelplane.api.quantity import parse_quantity

GPU_RESOURCE = "nvidia.com/gpu"
ACTED_ON = ("cpu", "memory", GPU_RESOURCE)
THREAD_ENV = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
)
VISIBLE_GPUS_ENV = "CUDA_VISIBLE_DEVICES"
_NTHREAD_FLAG = "--nthread"


@dataclass(frozen=True)
class ReplicaResources:
    threads: int | None = None  # None: no cpu given, the libraries choose
    memory_limit: int | None = None  # bytes; None: not limited
    gpus: int = 0


def replica_resources(template: Mapping) -> ReplicaResources:
    """The resources of a revision template (its container's `resources`, bounded by `podResources`)."""
    container = template.get("resources") or {}
    pod = template.get("podResources") or {}
    cpu = _lower(_amount(container, "cpu"), _amount(pod, "cpu"))
    memory = _lower(_limit(container, "memory"), _limit(pod, "memory"))
    gpus = _amount(container, GPU_RESOURCE)
    return ReplicaResources(
        threads=cpu_threads(cpu),
        memory_limit=int(memory) if memory is not None and memory > 0 else None,
        gpus=max(0, math.ceil(gpus)) if gpus is not None else 0,
    )


def resource_requests(template: Mapping) -> dict[str, float]:
    """What one replica requests of cpu (cores) and memory (bytes), as an HPA's utilization is taken
    of it: the container's request, else its limit (Kubernetes requests what it limits), else the
    pod's."""
    container = template.get("resources") or {}
    pod = template.get("podResources") or {}
    found = {}
    for name in ("cpu", "memory"):
        amount = _request(container, name)
        amount = amount if amount is not None else _request(pod, name)
        if amount is not None and amount > 0:
            found[name] = float(amount)
    return found


def cpu_threads(cpu: object) -> int | None:
    """The threads a cpu quantity gives: `500m` -> 1, `2` -> 2, `2.5` -> 3; None for no quantity."""
    amount = cpu if isinstance(cpu, Decimal) else parse_quantity(cpu)
    if amount is None:
        return None
    return max(1, math.ceil(amount))


def thread_env(threads: int) -> dict[str, str]:
    return dict.fromkeys(THREAD_ENV, str(threads))


def resource_env(
    resources: ReplicaResources, user_env: Mapping[str, str], gpus: Sequence[str]
) -> dict[str, str]:
    """The replica's environment on top of the platform's: thread counts and visible GPUs, then the
    container's own env, which wins, except over the GPUs given to a replica that asked for some."""
    env = thread_env(resources.threads) if resources.threads else {}
    env[VISIBLE_GPUS_ENV] = ""  # a replica that asks for no GPU sees none, as a container without one
    env.update(user_env)
    if resources.gpus:
        env[VISIBLE_GPUS_ENV] = ",".join(gpus)
        env.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")  # the order nvidia-smi and /proc number them in
    return env


def with_nthread(argv: list[str], resources: ReplicaResources) -> list[str]:
    """`modelplane serve`'s argv with `--nthread` from the cpu, unless the arguments set it."""
    if resources.threads is None or any(part.split("=")[0] == _NTHREAD_FLAG for part in argv):
        return argv
    return [*argv, f"{_NTHREAD_FLAG}={resources.threads}"]


def _amount(resources: Mapping, name: str) -> Decimal | None:
    """The limit, else the request, of one resource."""
    found = _limit(resources, name)
    return found if found is not None else _quantity(resources.get("requests"), name)


def _request(resources: Mapping, name: str) -> Decimal | None:
    """The request, else the limit, of one resource."""
    found = _quantity(resources.get("requests"), name)
    return found if found is not None else _limit(resources, name)


def _limit(resources: Mapping, name: str) -> Decimal | None:
    return _quantity(resources.get("limits"), name)


def _quantity(amounts: object, name: str) -> Decimal | None:
    return parse_quantity(amounts.get(name)) if isinstance(amounts, Mapping) else None


def _lower(first: Decimal | None, second: Decimal | None) -> Decimal | None:
    given = [amount for amount in (first, second) if amount is not None]
    return min(given) if given else None
