"""The film flow: screenplay -> plan -> keyframes -> chained sequence renders -> deliverables.

Run `python -m flows.film --help`.
"""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path
from typing import Literal

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_markdown_artifact
from pydantic import BaseModel, ConfigDict

from blocks.storage import resolve_storage
from flows.environment import SlotKind, build_studio, comfyui_servers
from flows.progress import progress_sink
from sim.settings import SimSettings
from tasks.chains import ChainOutcome, render_chain
from tasks.errors import ReelflowError
from tasks.film_plan import FilmPlan
from tasks.plan import plan_film
from tasks.render import RenderedSequence, film_prompts, preflight_servers
from tasks.screenplay_file import load_screenplay
from tasks.settings import load_defaults
from tasks.store import Storage
from tasks.studio import Studio


class FilmFailed(ReelflowError):
    """Some sequences could not be rendered; everything finished is kept for the re-run."""


class FilmResult(BaseModel):
    """What a film run produced and what it cost."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    title: str
    folder: str
    animatic: bool
    chains: tuple[ChainOutcome, ...]
    prompts: int
    gpu_seconds: float


def film_folder(out: Path, title: str) -> Path:
    slug = re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_") or "film"
    return out / slug


@flow(name="film", log_prints=False)
async def film(
    screenplay: str,
    comfyui: list[str] | None = None,
    out: str = "renders",
    store: str | None = None,
    mode: Literal["fast", "quality"] | None = None,
    limit: int | None = None,
    rerender: list[int] | None = None,
    fix: bool = False,
    keyframes: Literal["generate", "t2v"] = "generate",
    gpu_slots: SlotKind = "local",
) -> FilmResult:
    """Render a screenplay into a film folder (embedded simulator when no ComfyUI URL is given)."""
    source = Path(screenplay)
    written = load_screenplay(source)
    if mode is not None:
        written = written.model_copy(
            update={"render": written.render.model_copy(update={"mode": mode})}
        )
    plan = plan_film(
        written,
        load_defaults(),
        fix=fix,
        scene_limit=limit,
        rerolls=dict.fromkeys(rerender or [], 1),
    )
    await _publish_plan(plan)
    root = Path(out)
    scratch = root / ".reelflow" / "scratch"
    storage = await resolve_storage(store, default=root / ".reelflow", scratch=scratch)
    async with comfyui_servers(
        comfyui or [], workdir=root / ".reelflow" / "simulator", simulator=SimSettings()
    ) as (servers, simulator):
        studio = await build_studio(servers, storage, scratch, plan.mode, gpu_slots)
        await preflight_servers(studio, film_prompts(studio, plan,
                                                     use_keyframes=keyframes == "generate"))
        outcomes = await render_chains(studio, plan, source.parent, keyframes == "generate")
    folder = film_folder(root, plan.title)
    await deliver_sequences(studio, folder, outcomes)
    result = FilmResult(
        title=plan.title,
        folder=str(folder),
        animatic=simulator is not None,
        chains=tuple(outcomes),
        prompts=studio.stats.prompts,
        gpu_seconds=studio.stats.gpu_seconds,
    )
    _raise_if_failed(plan, outcomes, storage)
    return result


async def render_chains(
    studio: Studio, plan: FilmPlan, source_folder: Path, use_keyframes: bool
) -> list[ChainOutcome]:
    """Chains in parallel (the GPU slots limit them); each chain strictly in order."""
    sink = progress_sink.get()

    async def sequence_ready(rendered: RenderedSequence) -> None:
        sink.render_done(
            f"sequence {rendered.index}", f"{rendered.seconds:.1f} s on {rendered.server}"
        )

    studio.on_progress = sink.render_progress
    sink.stage(f"rendering {len(plan.sequences)} sequences in {len(plan.chains)} chain(s)")
    return list(
        await asyncio.gather(
            *(
                render_chain(
                    studio,
                    plan,
                    chain,
                    source_folder=source_folder,
                    on_ready=sequence_ready,
                    use_keyframe=use_keyframes,
                )
                for chain in plan.chains
            )
        )
    )


async def deliver_sequences(studio: Studio, folder: Path, outcomes: list[ChainOutcome]) -> None:
    """Each finished sequence as its own file in the film folder."""
    from tasks.files import copy_atomic

    for outcome in outcomes:
        for rendered in outcome.rendered:
            local = await studio.store.fetch(rendered.video)
            await asyncio.to_thread(
                copy_atomic, local, folder / "sequences" / f"seq{rendered.index:03d}.mp4"
            )


def _raise_if_failed(plan: FilmPlan, outcomes: list[ChainOutcome], storage: Storage) -> None:
    failed = [o for o in outcomes if o.failure is not None]
    if not failed:
        return
    lines = [
        f"chain {o.chain} stopped at sequence {o.failed_sequence} "
        f"({len(o.rendered)} of {len(plan.chains[o.chain].sequences)} rendered): {o.failure}"
        for o in failed
    ]
    raise FilmFailed(
        "\n".join(
            [
                f"{len(failed)} of {len(plan.chains)} chain(s) failed:",
                *lines,
                f"Finished renders are kept in {storage.media}; run the same command again to "
                "continue where it stopped.",
            ]
        )
    )


async def _publish_plan(plan: FilmPlan) -> None:
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


if __name__ == "__main__":
    from flows.cli import main

    sys.exit(main())
