"""The GPUs of this machine, and which replica has which.

The inventory comes from the first of these that says anything:

1. `modelplane up --gpus 0,1` (or `MODELPLANE_GPUS`): the devices to hand out, as CUDA names them
   (indexes or `GPU-<uuid>`); `none` for no GPU;
2. `CUDA_VISIBLE_DEVICES` of `modelplane up` itself: only those devices;
3. `nvidia-smi -L`: every GPU it lists, by UUID;
4. `/proc/driver/nvidia/gpus/`: one device per folder, by index.

Otherwise the machine has no GPU. A replica that asks for `nvidia.com/gpu: N` takes N devices for as
long as it lives (its restarts included) and gives them back when it stops; until N are free, it waits.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

GPUS_ENV = "MODELPLANE_GPUS"
_DRIVER_GPUS = Path("/proc/driver/nvidia/gpus")
_NONE = ("", "none", "-1")
_NVIDIA_SMI_LINE = re.compile(r"^GPU (\d+):.*?(?:\(UUID: (GPU-[^)]+)\))?\s*$")


@dataclass(frozen=True)
class GpuInventory:
    devices: tuple[str, ...]  # CUDA_VISIBLE_DEVICES names
    source: str  # where they were found

    def describe(self) -> str:
        if not self.devices:
            return "no GPU"
        count = len(self.devices)
        return f"{count} GPU{'s' if count > 1 else ''} ({', '.join(self.devices)}; from {self.source})"


def parse_gpu_list(text: str) -> tuple[str, ...]:
    """`"0,1"` -> ("0", "1"); `none`, `-1` or nothing -> no GPU. As CUDA does, a list ends at `-1`."""
    devices: list[str] = []
    for part in text.split(","):
        part = part.strip()
        if part.lower() in _NONE:
            break
        if part not in devices:
            devices.append(part)
    return tuple(devices)


def discover_gpus(override: str | None = None, environ: Mapping[str, str] = os.environ) -> GpuInventory:
    """The GPUs replicas may be given (see the module's docstring for where they come from)."""
    if override is None:
        override = environ.get(GPUS_ENV)
    if override is not None:
        return GpuInventory(parse_gpu_list(override), "--gpus")
    if "CUDA_VISIBLE_DEVICES" in environ:
        return GpuInventory(parse_gpu_list(environ["CUDA_VISIBLE_DEVICES"]), "CUDA_VISIBLE_DEVICES")
    listed = _nvidia_smi()
    if listed:
        return GpuInventory(listed, "nvidia-smi")
    count = _driver_gpus()
    if count:
        return GpuInventory(tuple(str(i) for i in range(count)), str(_DRIVER_GPUS))
    return GpuInventory((), "none")


def _driver_gpus() -> int:
    try:
        return sum(1 for entry in _DRIVER_GPUS.iterdir() if entry.is_dir())
    except OSError:
        return 0


def _nvidia_smi() -> tuple[str, ...]:
    program = shutil.which("nvidia-smi")
    if program is None:
        return ()
    try:
        listing = subprocess.run([program, "-L"], capture_output=True, text=True, timeout=20, check=True)
    except (OSError, subprocess.SubprocessError):
        return ()
    return parse_nvidia_smi_listing(listing.stdout)


def parse_nvidia_smi_listing(text: str) -> tuple[str, ...]:
    """The devices `nvidia-smi -L` lists, by UUID (by index for a line without one)."""
    devices = []
    for line in text.splitlines():
        match = _NVIDIA_SMI_LINE.match(line.strip())
        if match:
            devices.append(match.group(2) or match.group(1))
    return tuple(devices)


class GpuAllocator:
    """Hands out the inventory's devices, each to one replica at a time. Used from one event loop."""

    def __init__(self, inventory: GpuInventory) -> None:
        self.inventory = inventory
        self._free = list(inventory.devices)
        self._given_back = asyncio.Event()

    @property
    def free(self) -> int:
        return len(self._free)

    def take(self, count: int) -> tuple[str, ...] | None:
        """`count` free devices, now taken; None when fewer are free."""
        if count > len(self._free):
            return None
        taken, self._free = tuple(self._free[:count]), self._free[count:]
        return taken

    def claim(self, devices: tuple[str, ...]) -> tuple[str, ...] | None:
        """These very devices (a replica's after a restart of the platform), now taken; None unless
        all of them are free."""
        if any(device not in self._free for device in devices):
            return None
        self._free = [device for device in self._free if device not in devices]
        return tuple(devices)

    def give_back(self, devices: tuple[str, ...]) -> None:
        if not devices:
            return
        self._free += [d for d in self.inventory.devices if d in devices and d not in self._free]
        self._free.sort(key=self.inventory.devices.index)
        event, self._given_back = self._given_back, asyncio.Event()
        event.set()

    async def acquire(
        self, count: int, stopping: asyncio.Event, on_wait: Callable[[str], None]
    ) -> tuple[str, ...] | None:
        """`count` devices, waiting until they are free; `on_wait(why)` is called whenever the reason to
        wait changes. None if `stopping` is set first."""
        told = None
        while not stopping.is_set():
            taken = self.take(count)
            if taken is not None:
                return taken
            why = self.shortage(count)
            if why != told:
                on_wait(why)
                told = why
            await _first_of(self._given_back.wait(), stopping.wait())
        return None

    def shortage(self, count: int) -> str:
        """Why `count` devices cannot be taken now, in words for a status."""
        total = len(self.inventory.devices)
        needs = f"needs {count} GPU{'s' if count > 1 else ''} (nvidia.com/gpu: {count})"
        if total == 0:
            return f"{needs}, and this machine has no GPU"
        if count > total:
            return f"{needs}, and this machine has {total}"
        return f"{needs}, {len(self._free)} of {total} free"


async def _first_of(*waits: Awaitable) -> None:
    """Returns once any of `waits` is done; the others are cancelled."""
    tasks = [asyncio.ensure_future(wait) for wait in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
