"""A model-settings.json's `max_batch_size` and `max_batch_time` turn on MLServer's adaptive batching
for that model: requests wait up to max_batch_time seconds for others, up to max_batch_size requests
(whatever their rows) in one model call. The estimator answers, with every row, how many rows its call had; the wait is a minute,
so the requests here are answered as soon as they fill a call."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import joblib
import pytest

from tests.server.describing_estimator import CallRows
from tests.server.processes import serve


def one_row(server) -> httpx.Response:
    body = {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [1.0, 2.0]}]}
    return httpx.post(f"{server.url}/v2/models/rows/infer", json=body, timeout=120)


def test_max_batch_size_and_max_batch_time_batch_the_models_requests(tmp_path):
    joblib.dump(CallRows(), tmp_path / "model.joblib")
    settings = {"max_batch_size": 4, "max_batch_time": 60}
    (tmp_path / "model-settings.json").write_text(json.dumps(settings))
    # --max-batch-rows 1: no coalescing of requests that merely arrive together, only the batcher.
    server = serve("--model-dir", str(tmp_path), "--model-name", "rows", "--max-batch-rows", "1", grpc=False)
    try:
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda _: one_row(server), range(4)))
        assert [answer.status_code for answer in answers] == [200] * 4
        assert [answer.json()["outputs"][0]["data"] for answer in answers] == [[4]] * 4
        server.stop()
        assert "max_batch_size" not in server.log()  # acted on, not logged as ignored
    finally:
        server.stop()


@pytest.mark.parametrize("asked_by", ["model-settings.json", "flags"])
def test_max_batch_size_counts_requests_whatever_their_rows(tmp_path, asked_by):
    """In MLServer a batch is at most max_batch_size requests: two requests of three rows each fill a
    batch of two (KServe's batcher, which counts rows, would run each alone). The flags are what
    KServe's MLSERVER_MODEL_MAX_BATCH_SIZE and MLSERVER_MODEL_MAX_BATCH_TIME become."""
    joblib.dump(CallRows(), tmp_path / "model.joblib")
    flags = ["--max-batch-size=2", "--max-latency=60000", "--batch-counts=requests"]
    if asked_by == "model-settings.json":
        (tmp_path / "model-settings.json").write_text(json.dumps({"max_batch_size": 2, "max_batch_time": 60}))
        flags = []
    server = serve(
        "--model-dir", str(tmp_path), "--model-name", "rows", "--max-batch-rows", "1", *flags, grpc=False
    )
    three_rows = {"inputs": [{"name": "x", "shape": [3, 2], "datatype": "FP64", "data": [1.0] * 6}]}
    try:
        with ThreadPoolExecutor(2) as pool:
            answers = list(
                pool.map(
                    lambda _: httpx.post(f"{server.url}/v2/models/rows/infer", json=three_rows, timeout=120),
                    range(2),
                )
            )
        assert [answer.status_code for answer in answers] == [200] * 2
        assert [answer.json()["outputs"][0]["data"] for answer in answers] == [[6, 6, 6]] * 2
    finally:
        server.stop()


def test_batching_needs_both_settings_as_in_mlserver(tmp_path):
    joblib.dump(CallRows(), tmp_path / "model.joblib")
    (tmp_path / "model-settings.json").write_text(json.dumps({"max_batch_size": 4}))
    server = serve("--model-dir", str(tmp_path), "--model-name", "rows", "--max-batch-rows", "1", grpc=False)
    try:
        assert one_row(server).json()["outputs"][0]["data"] == [1]  # alone, at once
        server.stop()
        assert "adaptive batching needs both" in server.log()
    finally:
        server.stop()
