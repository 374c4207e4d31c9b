"""Setting up a run: which ComfyUI servers, which store, which GPU slots."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal

from prefect.settings import get_current_settings

from blocks.comfyui import ComfyUIPool, ComfyUIServer
from sim.embedded import RunningSimulator, start_simulator
from sim.settings import SimSettings
from tasks.comfyui.workflow import RenderMode, load_models
from tasks.errors import ReelflowError
from tasks.runtime.results import upgrade_results
from tasks.runtime.schedule import GpuScheduler, policy_from_environment
from tasks.runtime.slots import FileLockSlots, GpuSlots, PrefectSlots
from tasks.runtime.store import MediaStore, Storage
from tasks.runtime.studio import Studio


async def _register_results_storage(storage: Storage) -> None:
    """Prefect persists task results (and so its cache) only to a saved block."""
    if storage.results._block_document_id is None:
        where = getattr(storage.results, "basepath", None) or repr(storage.results)
        name = "reelflow-results-" + hashlib.sha256(str(where).encode()).hexdigest()[:16]
        await storage.results.asave(name, overwrite=True)


SlotKind = Literal["local", "prefect"]


def choose_slots(kind: SlotKind, storage: Storage) -> GpuSlots:
    """Host-local lock files (default), or leased Prefect limits for workers on several hosts."""
    if kind == "prefect":
        if not get_current_settings().api.url:
            raise ReelflowError(
                "gpu_slots='prefect' needs a Prefect server: set PREFECT_API_URL (ephemeral "
                "Prefect never returns a crashed run's slot), or use gpu_slots='local'."
            )
        return PrefectSlots()
    return FileLockSlots(storage.locks)


@asynccontextmanager
async def comfyui_servers(
    urls: list[str], *, workdir: Path, simulator: SimSettings | None = None
) -> AsyncIterator[tuple[list[ComfyUIServer], RunningSimulator | None]]:
    """The given servers, or an embedded simulator started for this run (and stopped after).

    Each entry is a URL or `block:NAME` (a saved ComfyUIServer or ComfyUIPool, with its auth
    header, slots and timeouts). None given: $REELFLOW_COMFYUI (comma-separated), else the
    embedded simulator.
    """
    entries = urls or [u for u in os.environ.get("REELFLOW_COMFYUI", "").split(",") if u.strip()]
    if entries:
        yield [server for entry in entries for server in await _servers(entry.strip())], None
        return
    sim = start_simulator(simulator, workdir=workdir)
    try:
        yield [ComfyUIServer(url=sim.url)], sim
    finally:
        sim.stop()


async def _servers(entry: str) -> list[ComfyUIServer]:
    if not entry.startswith("block:"):
        return [ComfyUIServer(url=entry)]
    name = entry.removeprefix("block:")
    try:
        return [await ComfyUIServer.aload(name)]
    except ValueError:
        return list((await ComfyUIPool.aload(name)).servers)


async def build_studio(
    servers: list[ComfyUIServer],
    storage: Storage,
    scratch: Path,
    mode: RenderMode,
    slot_kind: SlotKind = "local",
    scheduler: GpuScheduler | None = None,
) -> Studio:
    slots = choose_slots(slot_kind, storage)
    await _register_results_storage(storage)
    await upgrade_results(storage.results)
    if isinstance(slots, PrefectSlots):
        await slots.ensure_limits(servers)
    return Studio(
        store=MediaStore(storage.media, scratch),
        results=storage.results,
        cache_locks=storage.locks / "cache",
        servers=servers,
        slots=slots,
        models=load_models(mode),
        templates=Studio.templates_for(),
        scheduler=scheduler or GpuScheduler(policy_from_environment()),
    )
