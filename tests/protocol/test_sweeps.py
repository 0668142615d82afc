"""A sweep of many connections lets the event loop run between its slices."""

from __future__ import annotations

import asyncio

from modelplane.protocol.sweeps import SLICE, visit_in_slices


def test_other_work_runs_between_the_slices_of_a_sweep():
    async def main() -> tuple[list[int], list[int]]:
        visited: list[int] = []
        seen_by_others: list[int] = []
        sweep = asyncio.create_task(
            visit_in_slices(range(3 * SLICE + 1), lambda item, out: out.append(item), visited)
        )
        while not sweep.done():
            seen_by_others.append(len(visited))
            await asyncio.sleep(0)
        return visited, seen_by_others

    visited, seen = asyncio.run(main())
    assert visited == list(range(3 * SLICE + 1))
    assert {SLICE, 2 * SLICE, 3 * SLICE} <= set(seen)  # the loop ran after each slice
