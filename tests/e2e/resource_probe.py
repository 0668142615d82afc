"""A custom model that tells what its replica was given: the thread pools it predicts with, the
GPUs it sees, and, when asked, holds memory (`{"instances": [[<MiB to hold>]]}`).

It predicts on a worker thread, as `modelplane serve` runs a plain `predict`: the thread counts it
reports are those inference runs with.
"""

from __future__ import annotations

import os

from modelplane.server import Model

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS")


class ResourceProbe(Model):
    def load(self) -> bool:
        self.held: list[bytearray] = []
        self.ready = True
        return self.ready

    def predict(self, payload, headers=None):
        mebibytes = int(payload["instances"][0][0])
        if mebibytes:
            self.held.append(bytearray(mebibytes << 20))  # zero-filled: every page is touched
            return {"predictions": [{"held_mib": sum(len(block) for block in self.held) >> 20}]}
        return {"predictions": [report()]}


def report() -> dict:
    import threadpoolctl
    import torch

    pools = threadpoolctl.threadpool_info()
    return {
        "openmp": sorted({pool["num_threads"] for pool in pools if pool["user_api"] == "openmp"}),
        "blas": sorted({pool["num_threads"] for pool in pools if pool["user_api"] == "blas"}),
        "torch": torch.get_num_threads(),
        "env": {name: os.environ.get(name) for name in (*THREAD_VARIABLES, "CUDA_VISIBLE_DEVICES")},
        "pid": os.getpid(),
    }
