"""The GPU inventory (given, or found on the machine) and handing its devices out."""

from __future__ import annotations

import asyncio

from modelplane.local.replicas.gpus import (
    GpuAllocator,
    GpuInventory,
    discover_gpus,
    parse_gpu_list,
    parse_nvidia_smi_listing,
)


def test_a_gpu_list_reads_as_cuda_visible_devices_does():
    assert parse_gpu_list("0,1") == ("0", "1")
    assert parse_gpu_list(" GPU-a1b2 , 3 ,3") == ("GPU-a1b2", "3")
    assert parse_gpu_list("0,-1,2") == ("0",)
    assert parse_gpu_list("none") == parse_gpu_list("") == parse_gpu_list("-1") == ()


def test_the_given_list_wins_then_the_platforms_cuda_visible_devices():
    assert discover_gpus("2,3", {"CUDA_VISIBLE_DEVICES": "0"}) == GpuInventory(("2", "3"), "--gpus")
    assert discover_gpus(None, {"MODELPLANE_GPUS": "none", "CUDA_VISIBLE_DEVICES": "0"}).devices == ()
    found = discover_gpus(None, {"CUDA_VISIBLE_DEVICES": "1,0"})
    assert found == GpuInventory(("1", "0"), "CUDA_VISIBLE_DEVICES")
    assert found.describe() == "2 GPUs (1, 0; from CUDA_VISIBLE_DEVICES)"
    assert discover_gpus(None, {"CUDA_VISIBLE_DEVICES": ""}).describe() == "no GPU"


def test_nvidia_smi_names_each_gpu_by_its_uuid():
    listing = (
        "GPU 0: NVIDIA H200 (UUID: GPU-6f1c7a52-2b1e-8a43-3d7a-5f0e2c9b1d44)\n"
        "  MIG 1g.18gb     Device  0: (UUID: MIG-0d9c1b2a-aaaa-bbbb-cccc-123456789abc)\n"
        "GPU 1: NVIDIA H200\n"
    )
    assert parse_nvidia_smi_listing(listing) == ("GPU-6f1c7a52-2b1e-8a43-3d7a-5f0e2c9b1d44", "1")


def test_each_device_goes_to_one_replica_at_a_time():
    gpus = GpuAllocator(GpuInventory(("0", "1", "2"), "--gpus"))
    first = gpus.take(2)
    assert first == ("0", "1")
    assert gpus.take(2) is None
    assert gpus.shortage(2) == "needs 2 GPUs (nvidia.com/gpu: 2), 1 of 3 free"
    second = gpus.take(1)
    assert second == ("2",)
    gpus.give_back(first)
    gpus.give_back(first)  # twice changes nothing
    assert gpus.free == 2
    assert gpus.take(2) == ("0", "1")


def test_what_a_machine_cannot_give_says_why():
    assert GpuAllocator(GpuInventory((), "none")).shortage(1) == (
        "needs 1 GPU (nvidia.com/gpu: 1), and this machine has no GPU"
    )
    assert GpuAllocator(GpuInventory(("0", "1"), "--gpus")).shortage(3) == (
        "needs 3 GPUs (nvidia.com/gpu: 3), and this machine has 2"
    )


def test_a_waiting_replica_says_why_and_takes_the_devices_once_given_back():
    async def scenario():
        gpus = GpuAllocator(GpuInventory(("0",), "--gpus"))
        taken = gpus.take(1)
        reasons: list[str] = []
        waiter = asyncio.ensure_future(gpus.acquire(1, asyncio.Event(), reasons.append))
        await asyncio.sleep(0)
        assert not waiter.done()
        assert reasons == ["needs 1 GPU (nvidia.com/gpu: 1), 0 of 1 free"]
        gpus.give_back(taken)
        assert await asyncio.wait_for(waiter, 10) == ("0",)
        assert gpus.free == 0

        stopping = asyncio.Event()
        stopped = asyncio.ensure_future(gpus.acquire(1, stopping, reasons.append))
        await asyncio.sleep(0)
        stopping.set()
        assert await asyncio.wait_for(stopped, 10) is None
        assert await gpus.acquire(0, asyncio.Event(), reasons.append) == ()

    asyncio.run(scenario())
