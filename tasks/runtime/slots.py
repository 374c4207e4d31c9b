"""GPU slots: a render holds one slot of one server exactly while its prompt is on the GPU.

Two implementations behind one interface:
- `FileLockSlots` (the embedded default and any run without a Prefect server): one lock file
  per GPU slot, taken with flock. The kernel frees a dead holder's lock at once, so a crashed
  or SIGKILLed run never leaks a slot, and acquiring costs microseconds. It covers every run
  on one host.
- `PrefectSlots` (a studio with a Prefect server and workers on several hosts): each server's
  slots are a Prefect global concurrency limit, taken with a short lease so a killed worker's
  slot comes back after `lease_seconds`. Ephemeral Prefect never reclaims leases, which is why
  it is not used there.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.concurrency.asyncio import AcquireConcurrencySlotTimeoutError, concurrency
from prefect.exceptions import ObjectNotFound

from blocks.comfyui import ComfyUIServer
from tasks.runtime.locks import release_flock, try_flock


@dataclass(frozen=True)
class Slot:
    """The server a render got, and which of its GPU slots it holds."""

    server: ComfyUIServer
    number: int


class GpuSlots(Protocol):
    """Hands out one free GPU slot among the given servers, waiting until one is free."""

    def hold(self, servers: Sequence[ComfyUIServer]) -> AbstractAsyncContextManager[Slot]: ...


@dataclass
class FileLockSlots:
    """Slots as lock files under `folder`, shared by every process on this host."""

    folder: Path
    poll_seconds: float = 0.02

    def _try(self, server: ComfyUIServer, number: int) -> int | None:
        return try_flock(self.folder / f"{server.concurrency_limit_name}.slot{number}.lock")

    async def remove_limits(self, servers: Sequence[ComfyUIServer]) -> None:
        """Delete the servers' limits: for a throwaway server (the embedded simulator's random
        port) that no later run will ask for, so none is left behind in the UI."""
        async with get_client() as client:
            for server in servers:
                with contextlib.suppress(ObjectNotFound):
                    await client.delete_global_concurrency_limit_by_name(
                        server.concurrency_limit_name
                    )

    @asynccontextmanager
    async def hold(self, servers: Sequence[ComfyUIServer]) -> AsyncIterator[Slot]:
        while True:
            for server in _fair_order(servers):
                for number in range(server.gpu_slots):
                    handle = self._try(server, number)
                    if handle is not None:
                        try:
                            yield Slot(server, number)
                        finally:
                            release_flock(handle)
                        return
            await asyncio.sleep(self.poll_seconds)


@dataclass
class PrefectSlots:
    """Slots as Prefect global concurrency limits, one per server, leased."""

    lease_seconds: float = 60.0
    poll_seconds: float = 0.25

    async def ensure_limits(self, servers: Sequence[ComfyUIServer]) -> None:
        """Create each server's limit (one slot per GPU) if it does not exist yet."""
        async with get_client() as client:
            for server in servers:
                try:
                    await client.read_global_concurrency_limit_by_name(
                        server.concurrency_limit_name
                    )
                except ObjectNotFound:
                    await client.create_global_concurrency_limit(
                        GlobalConcurrencyLimitCreate(
                            name=server.concurrency_limit_name, limit=server.gpu_slots
                        )
                    )

    async def remove_limits(self, servers: Sequence[ComfyUIServer]) -> None:
        """Delete the servers' limits: for a throwaway server (the embedded simulator's random
        port) that no later run will ask for, so none is left behind in the UI."""
        async with get_client() as client:
            for server in servers:
                with contextlib.suppress(ObjectNotFound):
                    await client.delete_global_concurrency_limit_by_name(
                        server.concurrency_limit_name
                    )

    @asynccontextmanager
    async def hold(self, servers: Sequence[ComfyUIServer]) -> AsyncIterator[Slot]:
        while True:
            for server in _fair_order(servers):
                try:
                    async with concurrency(
                        server.concurrency_limit_name,
                        occupy=1,
                        strict=True,
                        lease_duration=self.lease_seconds,
                        timeout_seconds=self.poll_seconds if len(servers) > 1 else None,
                    ):
                        yield Slot(server, 0)
                        return
                except AcquireConcurrencySlotTimeoutError:
                    continue


def _fair_order(servers: Sequence[ComfyUIServer]) -> list[ComfyUIServer]:
    """Start at a random server so concurrent renders spread instead of piling on the first."""
    start = random.randrange(len(servers))
    return [*servers[start:], *servers[:start]]
