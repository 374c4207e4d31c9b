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

`hold` waits until a slot is free; `claim` tries once and raises `SlotTaken` at once, for
a scheduler that would rather choose another server than queue behind another run.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import httpx
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError, concurrency
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

from blocks.comfyui import ComfyUIServer
from tasks.runtime.locks import release_flock, try_flock


@dataclass(frozen=True)
class Slot:
    """The server a render got, and which of its GPU slots it holds."""

    server: ComfyUIServer
    number: int


class SlotTaken(Exception):
    """Every slot of the server asked for is held (by another run, or another client)."""


class GpuSlots(Protocol):
    """Hands out one free GPU slot among the given servers, waiting until one is free."""

    def hold(self, servers: Sequence[ComfyUIServer]) -> AbstractAsyncContextManager[Slot]: ...

    def claim(self, server: ComfyUIServer) -> AbstractAsyncContextManager[Slot]:
        """One slot of `server` now, or `SlotTaken` at once: never waits in line."""
        ...


@dataclass
class FileLockSlots:
    """Slots as lock files under `folder`, shared by every process on this host."""

    folder: Path
    poll_seconds: float = 0.02

    def _try(self, server: ComfyUIServer, number: int) -> int | None:
        return try_flock(self.folder / f"{server.concurrency_limit_name}.slot{number}.lock")

    def _take(self, server: ComfyUIServer) -> tuple[int, int] | None:
        for number in range(server.gpu_slots):
            handle = self._try(server, number)
            if handle is not None:
                return number, handle
        return None

    @asynccontextmanager
    async def hold(self, servers: Sequence[ComfyUIServer]) -> AsyncIterator[Slot]:
        while True:
            for server in _fair_order(servers):
                taken = self._take(server)
                if taken is not None:
                    try:
                        yield Slot(server, taken[0])
                    finally:
                        release_flock(taken[1])
                    return
            await asyncio.sleep(self.poll_seconds)

    @asynccontextmanager
    async def claim(self, server: ComfyUIServer) -> AsyncIterator[Slot]:
        taken = self._take(server)
        if taken is None:
            raise SlotTaken(server.url)
        try:
            yield Slot(server, taken[0])
        finally:
            release_flock(taken[1])


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
                    # Films started together race to create it: whoever is second finds it.
                    with contextlib.suppress(ObjectAlreadyExists):
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

    def _leased(self, server: ComfyUIServer, *, wait: bool) -> AbstractAsyncContextManager[None]:
        # One try (max_retries=0) rather than a timeout: a timeout can cancel a request the
        # server already granted, and that slot would stay taken until its lease ran out.
        return concurrency(
            server.concurrency_limit_name,
            occupy=1,
            strict=True,
            lease_duration=self.lease_seconds,
            max_retries=None if wait else 0,
        )

    @asynccontextmanager
    async def hold(self, servers: Sequence[ComfyUIServer]) -> AsyncIterator[Slot]:
        if len(servers) == 1:  # the server tells the waiter when to ask again
            async with self._leased(servers[0], wait=True):
                yield Slot(servers[0], 0)
            return
        while True:
            for server in _fair_order(servers):
                held = AsyncExitStack()
                try:
                    slot = await held.enter_async_context(self.claim(server))
                except SlotTaken:
                    continue
                async with held:
                    yield slot
                return
            await asyncio.sleep(self.poll_seconds)

    @asynccontextmanager
    async def claim(self, server: ComfyUIServer) -> AsyncIterator[Slot]:
        # Look before asking: Prefect logs every refused request as an error with its
        # traceback, which would fill the run's log each time two runs want one GPU.
        async with get_client() as client:
            limit = await client.read_global_concurrency_limit_by_name(
                server.concurrency_limit_name
            )
        if limit.active_slots >= limit.limit:
            raise SlotTaken(server.url)
        held = AsyncExitStack()
        try:
            await held.enter_async_context(self._leased(server, wait=False))
        except ConcurrencySlotAcquisitionError as refused:
            if _locked(refused):
                raise SlotTaken(server.url) from None
            raise
        async with held:
            yield Slot(server, 0)


def _locked(error: BaseException) -> bool:
    """Whether Prefect refused a slot because the limit is full (HTTP 423), not an error."""
    cause = error.__cause__
    return isinstance(cause, httpx.HTTPStatusError) and cause.response.status_code == 423


def _fair_order(servers: Sequence[ComfyUIServer]) -> list[ComfyUIServer]:
    """Start at a random server so concurrent renders spread instead of piling on the first."""
    start = random.randrange(len(servers))
    return [*servers[start:], *servers[:start]]
