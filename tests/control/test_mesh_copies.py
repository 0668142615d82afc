"""How many copies a ModelMesh model's load needs, and where they come and go."""

from __future__ import annotations

import pytest

from modelplane.control.mesh_copies import CopyScaler, copies_wanted, extra_copy_room, surplus_copy
from modelplane.control.placement import Copy, ReplicaRoom

MIB = 1024**2


@pytest.mark.parametrize(
    ("concurrency", "replicas", "wanted"),
    [
        (0.0, 2, 1),
        (0.9, 2, 1),
        (2.0, 2, 1),
        (2.1, 2, 2),
        (16.0, 2, 2),
        (16.0, 8, 8),
        (5.0, 8, 3),
        (3.0, 1, 1),
    ],
)
def test_one_copy_per_two_concurrent_requests_up_to_one_per_replica(concurrency, replicas, wanted):
    assert copies_wanted(concurrency, replicas) == wanted


def test_the_load_is_the_average_concurrency_over_the_window():
    scaler = CopyScaler(window=6.0)
    assert scaler.observe(100.0, 50.0) is None
    assert scaler.observe(101.0, 54.0) == 4.0  # four requests in flight throughout the second
    for second in range(2, 12):
        average = scaler.observe(100.0 + second, 54.0)  # then idle
    assert average == 0.0  # what is older than the window no longer counts


def test_a_copy_comes_at_once_and_goes_after_the_delay():
    scaler = CopyScaler()
    assert scaler.change(8.0, copies=1, replicas=2, now=0.0, grace_period=60.0) == 1
    assert scaler.change(8.0, copies=2, replicas=2, now=1.0, grace_period=60.0) == 0
    assert scaler.change(0.5, copies=2, replicas=2, now=2.0, grace_period=60.0) == 0
    assert scaler.change(0.5, copies=2, replicas=2, now=61.0, grace_period=60.0) == 0
    assert (
        scaler.change(8.0, copies=2, replicas=2, now=61.5, grace_period=60.0) == 0
    )  # busy again: the delay starts over
    assert scaler.change(0.5, copies=2, replicas=2, now=62.0, grace_period=60.0) == 0
    assert scaler.change(0.5, copies=2, replicas=2, now=122.0, grace_period=60.0) == -1
    assert (
        scaler.change(0.0, copies=1, replicas=2, now=500.0, grace_period=60.0) == 0
    )  # the last copy stays (LRU decides)


def test_an_extra_copy_goes_where_it_fits_without_unloading_anything():
    full = ReplicaRoom("a", 20 * MIB, (Copy("x", 18 * MIB, 1.0),))
    roomy = ReplicaRoom("b", 20 * MIB, (Copy("y", 2 * MIB, 1.0),))
    holder = ReplicaRoom("c", 20 * MIB, (Copy("m", 4 * MIB, 1.0),))
    assert extra_copy_room(4 * MIB, [full, roomy, holder], holders={"c"}) == "b"
    assert extra_copy_room(4 * MIB, [full, holder], holders={"c"}) is None
    assert surplus_copy([full, roomy, holder], holders={"b", "c"}) == "c"
