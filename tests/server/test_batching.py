"""The batching core: items of concurrent requests share one call, and each request gets its own results.

Arrival is controlled step by step on the event loop; the batches fill by size, so no test depends on
how long anything takes.
"""

from __future__ import annotations

import asyncio

import pytest

from modelplane.server.batching import Batcher, BatchTimeout, WholeBatchError

FOREVER = 3600.0  # a max_latency no test waits for: batches in these tests start because they are full


class Model:
    """Multiplies each item by 10; refuses negative items; remembers every batch it saw."""

    def __init__(self):
        self.batches: list[list[int]] = []

    async def __call__(self, items: list[int]) -> list[int]:
        self.batches.append(list(items))
        await asyncio.sleep(0)
        if any(item < 0 for item in items):
            raise ValueError(f"negative item in {items}")
        return [item * 10 for item in items]


async def settle() -> None:
    """Let every callback and task that is ready run."""
    for _ in range(20):
        await asyncio.sleep(0)


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 30))


def test_requests_wait_for_company_until_the_batch_is_full():
    model = Model()
    batcher = Batcher(model, max_batch_size=4, max_latency=FOREVER)

    async def main():
        first = asyncio.ensure_future(batcher.submit([1]))
        await settle()
        assert not first.done() and model.batches == []
        second = asyncio.ensure_future(batcher.submit([2, 3]))
        await settle()
        assert not second.done() and batcher.waiting_items == 3
        third = await batcher.submit([4])
        return await first, await second, third

    assert run(main()) == ([10], [20, 30], [40])
    assert model.batches == [[1, 2, 3, 4]]
    assert batcher.calls_by_size == {4: 1}


def test_a_lone_request_runs_once_max_latency_has_passed():
    model = Model()
    batcher = Batcher(model, max_batch_size=8, max_latency=0.01)
    assert run(batcher.submit([7, 8])) == [70, 80]
    assert batcher.calls_by_size == {2: 1}


def test_a_request_that_does_not_fit_sends_the_waiting_ones_on_first():
    model = Model()
    batcher = Batcher(model, max_batch_size=4, max_latency=FOREVER)

    async def main():
        first = asyncio.ensure_future(batcher.submit([1, 2, 3]))
        await settle()
        second = asyncio.ensure_future(batcher.submit([4, 5]))
        assert await first == [10, 20, 30]
        assert not second.done()
        third = await batcher.submit([6, 7])
        return await second, third

    assert run(main()) == ([40, 50], [60, 70])
    assert model.batches == [[1, 2, 3], [4, 5, 6, 7]]


def test_a_request_larger_than_a_batch_runs_alone_at_once():
    model = Model()
    batcher = Batcher(model, max_batch_size=2, max_latency=FOREVER)

    async def main():
        waiting = asyncio.ensure_future(batcher.submit([1]))
        await settle()
        assert await batcher.submit([2, 3, 4]) == [20, 30, 40]
        assert not waiting.done()
        last = await batcher.submit([5])
        return await waiting, last

    assert run(main()) == ([10], [50])
    assert model.batches == [[2, 3, 4], [1, 5]]


def test_a_bad_request_fails_alone():
    model = Model()
    batcher = Batcher(model, max_batch_size=4, max_latency=FOREVER)

    async def main():
        requests = [[1], [-1, 2], [3]]
        waiting = [asyncio.ensure_future(batcher.submit(items)) for items in requests[:-1]]
        last = batcher.submit(requests[-1])
        return await asyncio.gather(*waiting, last, return_exceptions=True)

    good, bad, other = run(main())
    assert good == [10] and other == [30]
    assert isinstance(bad, ValueError) and "[-1, 2]" in str(bad)
    assert model.batches == [[1, -1, 2, 3], [1], [-1, 2], [3]]
    assert batcher.calls_by_size == {4: 1, 1: 2, 2: 1}


def test_the_wrong_number_of_results_fails_every_request_of_the_batch():
    async def short(items):
        return items[:-1]

    batcher = Batcher(short, max_batch_size=3, max_latency=FOREVER)

    async def main():
        waiting = asyncio.ensure_future(batcher.submit([1]))
        await settle()
        last = batcher.submit([2, 3])
        return await asyncio.gather(waiting, last, return_exceptions=True)

    results = run(main())
    assert all(isinstance(result, WholeBatchError) for result in results)
    assert "a batch of 3 items was answered with 2 results" in str(results[0])
    assert batcher.calls_by_size == {3: 1}  # no retries


def test_a_batch_past_its_timeout_fails_each_of_its_requests_without_retries():
    never = asyncio.Event()

    async def stuck(items):
        await never.wait()
        return items

    batcher = Batcher(stuck, max_batch_size=2, max_latency=FOREVER, timeout=0.01)

    async def main():
        waiting = asyncio.ensure_future(batcher.submit([1]))
        await settle()
        return await asyncio.gather(waiting, batcher.submit([2]), return_exceptions=True)

    results = run(main())
    assert all(isinstance(result, BatchTimeout) for result in results)
    assert "did not finish within the timeout of 0.01 s" in str(results[0])
    assert batcher.calls_by_size == {2: 1}


def test_a_timeout_error_of_the_model_itself_is_a_request_failure():
    async def refuses(items):
        if 2 in items:
            raise TimeoutError("the model's own backend timed out")
        return items

    batcher = Batcher(refuses, max_batch_size=2, max_latency=FOREVER, timeout=FOREVER)

    async def main():
        waiting = asyncio.ensure_future(batcher.submit([1]))
        await settle()
        return await asyncio.gather(waiting, batcher.submit([2]), return_exceptions=True)

    good, bad = run(main())
    assert good == [1]
    assert isinstance(bad, TimeoutError) and not isinstance(bad, BatchTimeout)


def test_a_request_whose_caller_left_does_not_hold_up_the_others():
    model = Model()
    release = asyncio.Event()

    async def held(items):
        await release.wait()
        return await model(items)

    batcher = Batcher(held, max_batch_size=2, max_latency=FOREVER)

    async def main():
        leaving = asyncio.ensure_future(batcher.submit([1]))
        staying = asyncio.ensure_future(batcher.submit([2]))
        await settle()  # [1] and [2] filled a batch, which is under way
        waiting = asyncio.ensure_future(batcher.submit([3]))
        await settle()
        waiting.cancel()  # left while waiting: it no longer counts towards the next batch
        await settle()
        assert batcher.waiting_items == 0
        leaving.cancel()  # left while its batch ran: the others of the batch still get their results
        fourth = asyncio.ensure_future(batcher.submit([4]))
        await settle()
        release.set()
        assert await staying == [20]
        return await batcher.submit([5]), await fourth, leaving.cancelled(), waiting.cancelled()

    assert run(main()) == ([50], [40], True, True)
    assert model.batches == [[1, 2], [4, 5]]


def test_flush_starts_the_waiting_batch_at_once():
    model = Model()
    batcher = Batcher(model, max_batch_size=4, max_latency=FOREVER)

    async def main():
        waiting = asyncio.ensure_future(batcher.submit([1, 2]))
        await settle()
        assert not waiting.done()
        batcher.flush()
        return await waiting

    assert run(main()) == [10, 20]
    assert model.batches == [[1, 2]]


def test_an_empty_request_needs_no_call():
    model = Model()
    batcher = Batcher(model, max_batch_size=2, max_latency=FOREVER)
    assert run(batcher.submit([])) == []
    assert model.batches == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_batch_size": 0, "max_latency": 1.0}, "max_batch_size must be at least 1"),
        ({"max_batch_size": 1, "max_latency": -1.0}, "max_latency must not be negative"),
        ({"max_batch_size": 1, "max_latency": 1.0, "timeout": 0}, "timeout must be positive"),
    ],
)
def test_settings_out_of_range_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        Batcher(Model(), **options)


def test_a_v1_body_with_inputs_is_not_batched_by_its_instances():
    from modelplane.server.batch_payloads import batch_key

    assert batch_key({"instances": [[1], [2]]}) == (("v1",), 2)
    # The runtimes read `inputs` first, as KServe's do: stacking the instances would change nothing read.
    assert batch_key({"instances": [[1], [2]], "inputs": [[3]]}) is None
