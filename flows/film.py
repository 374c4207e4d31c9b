"""The film flow: screenplay -> plan -> keyframes -> chained sequence renders -> deliverables.

Run `python -m flows.film --help`.
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from prefect import flow, get_run_logger
from prefect.artifacts import (
    acreate_link_artifact,
    acreate_markdown_artifact,
    acreate_table_artifact,
)
from pydantic import BaseModel, ConfigDict

from blocks.storage import resolve_storage
from flows.environment import SlotKind, build_studio, comfyui_servers
from flows.progress import progress_sink
from flows.summary import dialogue_rows, loudness_rows
from sim.settings import SimSettings
from tasks.chains import ChainOutcome, render_chain
from tasks.deliver import Deliverables, deliver_film
from tasks.dialogue import DialoguePolicy
from tasks.errors import ReelflowError
from tasks.mux import FilmFile, cut_film
from tasks.plan.defaults import load_defaults
from tasks.plan.film import plan_film, with_sequences
from tasks.plan.screenplay_file import load_screenplay
from tasks.render import film_prompts, preflight_servers
from tasks.review import RunOptions, write_review
from tasks.runtime.schedule import GpuScheduler, SchedulePolicy, ScheduleReport
from tasks.runtime.store import Storage
from tasks.runtime.studio import Studio
from tasks.schema.film_plan import FilmPlan
from tasks.schema.refs import MediaRef
from tasks.score import ScoreResult, compose_score


class FilmFailed(ReelflowError):
    """Some sequences could not be rendered; everything finished is kept for the re-run."""


class FilmResult(BaseModel):
    """What a film run produced and what it cost."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    title: str
    folder: str
    film: str
    review: str
    plan: FilmPlan
    score: ScoreResult | None
    schedule: ScheduleReport
    duration_s: float
    animatic: bool
    chains: tuple[ChainOutcome, ...]
    prompts: int
    gpu_seconds: float


class StageTimer:
    """Wall time per stage, for the manifest and the end report."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.seconds[name] = time.monotonic() - started


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
    transitions: Literal["cut", "dissolve"] = "cut",
    master: bool = False,
    score_gain: float = 0.25,
    dialogue_check: bool = True,
    schedule: Literal["aware", "unaware"] | None = None,
) -> FilmResult:
    """Render a screenplay into a film folder: plan, keyframes, chained sequence renders,
    dialogue check, loudness, score, mux, deliverables and the dailies page.

    Args:
        screenplay: Path of the screenplay JSON on the worker (relative to the working
            directory, $REELFLOW_REPO for deployments, or absolute).
        comfyui: ComfyUI servers: URLs or block:NAME of a saved ComfyUI Server/Pool block.
            Empty: $REELFLOW_COMFYUI, else an embedded simulator renders an animatic.
        out: Output folder; each film gets its own folder inside.
        store: Media store: a folder, s3://bucket/prefix or block:NAME of a saved reelflow
            Media Storage block. Empty: $REELFLOW_STORE, else OUT/.reelflow.
        mode: fast (distilled) or quality (dev) checkpoints. Empty: the screenplay's mode.
        limit: Render only the first N scenes.
        rerender: Sequence numbers to re-roll with a new seed (repeat a number to re-roll
            it again).
        fix: Lengthen or split scenes that break the dialogue duration rule first.
        keyframes: Start each chain from a generated keyframe, or text-to-video.
        gpu_slots: local (lock files on this host) or prefect (global concurrency limits,
            for workers on several hosts; needs a Prefect server).
        transitions: cut (lossless hard cuts) or dissolve (refused at dialogue edges).
        master: Also write a yuv444p10le master for grading (SDR).
        score_gain: Score level under the dialogue (0.25 = -12 dB).
        dialogue_check: Hear every sequence and re-render or mute by the verdict.
        schedule: aware (keep each GPU on one model family where that costs no time) or
            unaware. Empty: $REELFLOW_SCHEDULE, else aware.
    """
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
        rerolls=Counter(rerender or []),
    )
    timings = StageTimer()
    await _publish_plan(plan)
    root = Path(out)
    scratch = root / ".reelflow" / "scratch"
    storage = await resolve_storage(store, default=root / ".reelflow", scratch=scratch)
    async with comfyui_servers(
        comfyui or [], workdir=root / ".reelflow" / "simulator", simulator=SimSettings()
    ) as (servers, simulator):
        studio = await build_studio(
            servers,
            storage,
            scratch,
            plan.mode,
            gpu_slots,
            GpuScheduler(SchedulePolicy(aware=schedule == "aware")) if schedule else None,
        )
        await preflight_servers(
            studio, film_prompts(studio, plan, use_keyframes=keyframes == "generate")
        )
        studio.events = progress_sink.get()
        with timings.stage("render"):
            outcomes = await render_chains(
                studio,
                plan,
                source.parent,
                keyframes == "generate",
                DialoguePolicy(enabled=dialogue_check),
            )
        await _publish_checks(outcomes)
        _raise_if_failed(plan, outcomes, storage)
        rendered = sorted(
            (r for o in outcomes for r in o.sequences), key=lambda r: r.sequence.index
        )
        plan = with_sequences(plan, [r.sequence for r in rendered])
        measured = [r.finished.seconds for r in rendered]
        with timings.stage("score"):
            studio.events.stage("composing the score")
            score = await compose_score(studio, plan, measured)
    folder = film_folder(root, plan.title)
    cut = [r.finished.video for r in rendered]
    with timings.stage("mux"):
        studio.events.stage("cutting the film")
        film_file = await cut_the_film(
            studio,
            plan,
            cut,
            score,
            score_gain=score_gain,
            transitions=transitions,
            master=master,
        )
    deliverables = await deliver_film(
        studio,
        plan,
        folder,
        film=film_file,
        sequences=cut,
        renders=[r.rendered for r in rendered],
        score=score,
        animatic=simulator is not None,
        timings=timings.seconds,
        cached_sequences=[
            r.sequence.index
            for r in rendered
            if r.sequence.index not in studio.stats.fresh_sequences
        ],
    )
    review = await publish_dailies(
        folder,
        plan,
        outcomes,
        score,
        deliverables,
        source,
        simulator is not None,
        RunOptions(
            comfyui=tuple(comfyui or ()),
            out=out,
            store=store,
            mode=mode,
            limit=limit,
            rerender=tuple(rerender or ()),
            fix=fix,
            keyframes=keyframes,
            transitions=transitions,
            master=master,
            score_gain=score_gain,
            dialogue_check=dialogue_check,
        ),
    )
    return FilmResult(
        title=plan.title,
        folder=str(folder),
        film=str(deliverables.film),
        review=str(review),
        plan=plan,
        score=score,
        schedule=studio.scheduler.report(),
        animatic=simulator is not None,
        duration_s=film_file.duration_s,
        chains=tuple(outcomes),
        prompts=studio.stats.prompts,
        gpu_seconds=studio.stats.gpu_seconds,
    )


async def render_chains(
    studio: Studio, plan: FilmPlan, source_folder: Path, use_keyframes: bool, policy: DialoguePolicy
) -> list[ChainOutcome]:
    """Chains in parallel (the GPU slots limit them); each chain strictly in order."""
    studio.events.stage(f"rendering {len(plan.sequences)} sequences in {len(plan.chains)} chain(s)")
    return list(
        await asyncio.gather(
            *(
                render_chain(
                    studio,
                    plan,
                    chain,
                    source_folder=source_folder,
                    policy=policy,
                    use_keyframe=use_keyframes,
                )
                for chain in plan.chains
            )
        )
    )


async def cut_the_film(
    studio: Studio,
    plan: FilmPlan,
    cut: list[MediaRef],
    score: ScoreResult | None,
    *,
    score_gain: float,
    transitions: Literal["cut", "dissolve"],
    master: bool,
) -> FilmFile:
    """The final cut (cached by content), fetched from the store for delivery."""
    result = await studio.bind(cut_film)(
        studio,
        plan,
        cut,
        score.score if score else None,
        score_gain=score_gain,
        transitions=transitions,
        master=master,
    )
    return result.file.model_copy(
        update={
            "path": await studio.store.fetch(result.film),
            "master": await studio.store.fetch(result.master) if result.master else None,
        }
    )


async def publish_dailies(
    folder: Path,
    plan: FilmPlan,
    outcomes: list[ChainOutcome],
    score: ScoreResult | None,
    deliverables: Deliverables,
    screenplay: Path,
    animatic: bool,
    run: RunOptions,
) -> Path:
    """Write review.html into the film folder and link it from the Prefect run."""
    review = await asyncio.to_thread(
        write_review,
        folder,
        plan,
        outcomes=outcomes,
        score=score,
        deliverables=deliverables,
        screenplay=screenplay,
        animatic=animatic,
        run=run,
    )
    await acreate_link_artifact(
        key="dailies",
        link=review.resolve().as_uri(),
        link_text="review.html",
        description="The dailies page",
    )
    return review


def _raise_if_failed(plan: FilmPlan, outcomes: list[ChainOutcome], storage: Storage) -> None:
    failed = [o for o in outcomes if o.failure is not None]
    if not failed:
        return
    lines = [
        f"chain {o.chain} stopped at sequence {o.failed_sequence} "
        f"({len(o.sequences)} of {len(plan.chains[o.chain].sequences)} rendered): {o.failure}"
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


async def _publish_checks(outcomes: list[ChainOutcome]) -> None:
    await acreate_table_artifact(
        key="dialogue-check",
        table=dialogue_rows(outcomes),
        description="Scripted vs heard dialogue, verdicts and actions",
    )
    await acreate_table_artifact(
        key="loudness",
        table=loudness_rows(outcomes),
        description="Per-sequence loudness before/after normalize",
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
