"""Requests waiting together share one library call, and each still gets its own answer."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import httpx
import joblib
import numpy as np
import pytest

from modelplane.runtimes.coalesce import Coalescer


def run(coroutine):
    return asyncio.run(coroutine)


async def doubled(data):
    if np.isnan(data).any():
        raise ValueError("NaN in input")
    return data[:, 0] * 2


def test_requests_waiting_together_share_one_call():
    coalescer = Coalescer(doubled, max_rows=64)

    async def main():
        inputs = [np.array([[i, 0.0]]) for i in range(5)]
        return await asyncio.gather(*(coalescer.submit(x) for x in inputs))

    results = run(main())
    assert [r.tolist() for r in results] == [[0.0], [2.0], [4.0], [6.0], [8.0]]
    assert coalescer.calls_by_rows == {5: 1}


def test_a_lone_request_runs_alone_and_at_once():
    coalescer = Coalescer(doubled, max_rows=64)
    assert run(coalescer.submit(np.array([[3.0, 1.0], [4.0, 1.0]]))).tolist() == [6.0, 8.0]
    assert coalescer.calls_by_rows == {2: 1}


def test_a_failing_request_fails_alone():
    coalescer = Coalescer(doubled, max_rows=64)

    async def main():
        inputs = [np.array([[1.0, 0.0]]), np.array([[np.nan, 0.0]]), np.array([[2.0, 0.0]])]
        return await asyncio.gather(*(coalescer.submit(x) for x in inputs), return_exceptions=True)

    good, bad, other = run(main())
    assert good.tolist() == [2.0] and other.tolist() == [4.0]
    assert isinstance(bad, ValueError)


def test_different_shapes_and_types_are_not_mixed():
    coalescer = Coalescer(doubled, max_rows=3)

    async def main():
        inputs = [
            np.array([[1.0, 0.0]]),
            np.array([[1.0, 0.0, 0.0]]),
            np.array([[1, 0]]),
            np.array([[2.0, 0.0], [3.0, 0.0]]),
            np.array([[4.0, 0.0]]),
        ]
        return await asyncio.gather(*(coalescer.submit(x) for x in inputs))

    results = run(main())
    assert [r.tolist() for r in results] == [[2.0], [2.0], [2], [4.0, 6.0], [8.0]]
    # float rows of width 2: 1 + 2 rows fill a batch of 3, the last row starts the next one.
    assert coalescer.calls_by_rows == {3: 1, 1: 3}


def test_a_result_that_is_not_one_row_per_input_row_falls_back_to_single_calls():
    async def total(data):
        return float(data.sum())

    coalescer = Coalescer(total, max_rows=64)

    async def main():
        return await asyncio.gather(*(coalescer.submit(np.array([[float(i)]])) for i in range(3)))

    assert run(main()) == [0.0, 1.0, 2.0]


@pytest.mark.parametrize("protocol", ["v1", "v2"])
def test_concurrent_requests_through_a_real_server_get_their_own_answers(
    iris_server, sklearn_dir, iris, protocol
):
    X, _ = iris
    rows = X[::3][:40]

    def ask(row):
        if protocol == "v1":
            response = httpx.post(
                iris_server.url + "/v1/models/iris:predict", json={"instances": [row.tolist()]}
            )
            return response.json()["predictions"][0]
        body = {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": row.tolist()}]}
        response = httpx.post(iris_server.url + "/v2/models/iris/infer", json=body)
        return response.json()["outputs"][0]["data"][0]

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(ask, rows))
    assert answers == joblib.load(sklearn_dir / "model.joblib").predict(rows).tolist()
