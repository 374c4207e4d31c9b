"""Opening a film run: servers (or the embedded simulator), store, GPU slots, preflight, progress.

`open_run` is the one door: the film flow asks for a studio and gets one whose every part
is ready, checked and closed again when the run ends.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import ParamSpec, TypeVar

from prefect import get_run_logger
from prefect.artifacts import acreate_markdown_artifact
from prefect.settings import get_current_settings
from prefect.states import Failed

from blocks.comfyui import ComfyUIPool, ComfyUIServer
from blocks.storage import resolve_storage
from blocks.workflows import WorkflowSet
from flows.progress import RunProgress, progress_sink
from sim.embedded import RunningSimulator, start_simulator
from sim.settings import SimSettings
from tasks.comfyui.errors import PreflightFailed
from tasks.comfyui.models import RenderMode, load_models
from tasks.comfyui.preflight import refusal
from tasks.comfyui.workflow import TemplateKind, Workflow
from tasks.comfyui.workflow_sources import (
    WorkflowError,
    environment_entries,
    kept_titles_notice,
    layer,
    setting_entries,
)
from tasks.errors import ReelflowError
from tasks.preflight import film_prompts, preflight_servers
from tasks.runtime.results import upgrade_results
from tasks.runtime.schedule.policy import SchedulePolicy, policy_from_environment
from tasks.runtime.schedule.scheduler import GpuScheduler
from tasks.runtime.slots import FileLockSlots, GpuSlots, PrefectSlots
from tasks.runtime.store import MediaStore, Storage, probe_storage
from tasks.runtime.studio import Studio
from tasks.schema.film_plan import FilmPlan
from tasks.schema.options import FilmOptions, SlotKind

P = ParamSpec("P")
R = TypeVar("R")


async def _register_results_storage(storage: Storage) -> None:
    """Prefect persists task results (and so its cache) only to a saved block."""
    if storage.results._block_document_id is None:
        where = getattr(storage.results, "basepath", None) or repr(storage.results)
        name = "reelflow-results-" + hashlib.sha256(str(where).encode()).hexdigest()[:16]
        await storage.results.asave(name, overwrite=True)


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
    templates: dict[TemplateKind, Workflow] | None = None,
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
        templates=templates or Studio.templates_for(),
        scheduler=scheduler or GpuScheduler(policy_from_environment()),
    )


def _scheduler(options: FilmOptions) -> GpuScheduler:
    choice = options.studio.schedule
    if choice == "auto":
        return GpuScheduler(policy_from_environment())
    return GpuScheduler(SchedulePolicy(aware=choice == "aware"))


@asynccontextmanager
async def open_run(plan: FilmPlan, screenplay: Path, options: FilmOptions) -> AsyncIterator[Studio]:
    """A studio for rendering `plan`, with everything checked before any GPU time is spent.

    Publishes the plan, opens the store, connects the servers (or starts an embedded
    simulator, stopped again when the run ends), takes the GPU slots and scheduler the
    options ask for, and preflights every prompt of the film against every server.
    """
    await publish_plan(plan)
    templates = await choose_workflows(options)
    root = Path(options.out)
    scratch = root / ".reelflow" / "scratch"
    storage = await resolve_storage(
        options.store or None, default=root / ".reelflow", scratch=scratch
    )
    await probe_storage(storage, scratch)  # a missing bucket is found before any GPU work
    async with comfyui_servers(
        list(options.comfyui), workdir=root / ".reelflow" / "simulator", simulator=SimSettings()
    ) as (servers, simulator):
        studio = await build_studio(
            servers,
            storage,
            scratch,
            plan.mode,
            options.studio.gpu_slots,
            _scheduler(options),
            templates,
        )
        studio.options, studio.screenplay, studio.animatic = (
            options,
            screenplay,
            simulator is not None,
        )
        prompts = film_prompts(studio, plan, use_keyframes=options.render.keyframes == "generate")
        refused = refusal(await preflight_servers(studio, prompts))
        if refused is not None:
            await acreate_markdown_artifact(
                key="preflight",
                markdown=f"# Preflight\n\n```\n{refused}\n```\n",
                description="What the ComfyUI servers lack",
            )
            raise refused
        logger = get_run_logger()
        progress = await RunProgress(progress_sink.get(), plan, logger).open()  # type: ignore[arg-type]
        studio.events = progress
        try:
            yield studio
        finally:
            for close in studio.on_close:
                await close()
            await progress.close()
            if simulator is not None and isinstance(studio.slots, PrefectSlots):
                await studio.slots.remove_limits(servers)


async def choose_workflows(options: FilmOptions) -> dict[TemplateKind, Workflow]:
    """The run's templates: per kind, from the workflows option (CLI flag or flow parameter),
    else $REELFLOW_WORKFLOWS, else built in; `block:NAME` entries load saved WorkflowSets.

    A template that keeps its own values for some titles (a model-free graph has no prompt
    to fill) is said once in the log.
    """
    settings = [setting_entries(options.studio.workflows, "--workflows"), environment_entries()]
    blocks: dict[str, dict[TemplateKind, Workflow]] = {}
    for name in {entry.block for entries in settings for entry in entries if entry.block}:
        try:
            saved = await WorkflowSet.aload(name)
        except ValueError as missing:
            raise WorkflowError(
                f"block:{name}: no saved reelflow Workflows block of that name on this Prefect "
                "server; save one with WorkflowSet.from_folder(...).save(NAME)"
            ) from missing
        blocks[name] = saved.workflows(name)
    templates = Studio.templates_for(*(layer(entries, blocks) for entries in settings))
    for line in kept_titles_notice(templates):
        get_run_logger().info(line)
    return templates


def refusals_fail_plainly(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """A flow that ends on an explained refusal (preflight, bad input) ends Failed with one
    line and no traceback; the caller still gets the exception, with the full text.

    Raised, the same error would be printed by Prefect three times over (the exception, its
    traceback and the final state), each with the whole list.
    """

    @functools.wraps(fn)
    async def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except (PreflightFailed, ReelflowError) as refused:
            headline = refused.headline if isinstance(refused, PreflightFailed) else str(refused)
            return Failed(message=headline, data=refused)  # type: ignore[return-value]

    return run


async def publish_plan(plan: FilmPlan) -> None:
    """The plan as a Prefect artifact (sequences, warnings, estimate) and one log line."""
    rows = "\n".join(
        f"| {s.index} | {s.chain}.{s.position} | {s.frames} | {s.seconds:.2f} | {s.seed} |"
        for s in plan.sequences
    )
    warnings = "\n".join(f"- {w.location}: {w.message}" for w in plan.warnings) or "none"
    header = "| seq | chain | frames | seconds | seed |\n|---|---|---|---|---|"
    await acreate_markdown_artifact(
        key="film-plan",
        markdown=f"# {plan.title}\n\n{header}\n{rows}\n\nWarnings:\n{warnings}\n\n"
        f"GPU estimate: {plan.estimate.total_s / 60:.1f} min",
        description="The film plan",
    )
    get_run_logger().info(
        "planned %d sequences in %d chains", len(plan.sequences), len(plan.chains)
    )
