"""The film folder an editor takes away: film, master, score, timeline, contact sheet, records.

<folder>/<title>.mp4            distribution film (written by the mux stage)
<folder>/<title>_master.mp4     optional grading master (4:4:4 10-bit, still SDR)
<folder>/score.flac             the assembled score, 48 kHz
<folder>/sequences/seqNNN.mp4   each sequence exactly as cut into the film
<folder>/timeline.otio          OpenTimelineIO: one clip per sequence, markers, score track
<folder>/contact_sheet.png      first frame of every sequence, labelled
<folder>/manifest.json          seeds, template hashes, servers, models, timings, cache hits
<folder>/report.md              a short summary linking all of the above
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Collection, Mapping
from collections.abc import Sequence as Seq
from pathlib import Path

from prefect.artifacts import acreate_markdown_artifact
from prefect.context import FlowRunContext

from tasks import media
from tasks.deliver.names import film_folder, film_path, sequence_label
from tasks.deliver.record import manifest_document, report_markdown
from tasks.deliver.timeline import write_timeline
from tasks.mux import master_path
from tasks.runtime.files import copy_atomic, write_atomic
from tasks.runtime.studio import Studio
from tasks.schema.film_plan import FilmPlan
from tasks.schema.outcomes import (
    Deliverables,
    FilmFile,
    Footage,
    RenderedSequence,
    ScoreResult,
    SequenceResult,
)
from tasks.schema.record import CostEntry
from tasks.schema.refs import MediaRef

REPORT_ARTIFACT_KEY = "film-report"








async def deliver_film(
    studio: Studio,
    footage: Footage,
    score: ScoreResult | None,
    film: FilmFile,
    cost: CostEntry | None = None,
) -> Deliverables:
    """The film folder an editor takes away: film, master, score, sequences, timeline,
    contact sheet, manifest and report (`cost`: the GPU estimate beside what was spent)."""
    plan, sequences = footage.plan, footage.sequences
    return await write_film_folder(
        studio,
        plan,
        film_folder(Path(studio.options.out), plan.title),
        film=film,
        sequences=footage.clips,
        renders=[r.rendered for r in sequences],
        score=score,
        animatic=studio.animatic,
        timings=studio.timer.seconds,
        cached_sequences=[
            r.sequence.index
            for r in sequences
            if r.sequence.index not in studio.stats.fresh_sequences
        ],
        takes={r.sequence.index: r for r in sequences if r.takes},
        cost=cost,
    )




async def write_film_folder(
    studio: Studio,
    plan: FilmPlan,
    folder: Path,
    *,
    film: FilmFile,
    sequences: Seq[MediaRef],
    renders: Seq[RenderedSequence],
    score: ScoreResult | None,
    animatic: bool,
    timings: Mapping[str, float],
    cached_sequences: Collection[int] = (),
    takes: Mapping[int, SequenceResult] | None = None,
    cost: CostEntry | None = None,
) -> Deliverables:
    """Write every deliverable beside the muxed film; publish the report as a Prefect artifact.

    `sequences` are the files cut into the film (normalized), `renders` the GPU renders they
    came from (seeds, servers, GPU time); `cached_sequences` the indices served from cache.
    """
    folder.mkdir(parents=True, exist_ok=True)
    film_file = film_path(folder, plan.title)
    if film.path.resolve() != film_file.resolve():
        await asyncio.to_thread(copy_atomic, film.path, film_file)
    master = None
    if film.master is not None:
        master = master_path(film_file)
        if film.master.resolve() != master.resolve():
            await asyncio.to_thread(copy_atomic, film.master, master)
    clips = []
    for sequence, ref in zip(plan.sequences, sequences, strict=True):
        local = await studio.store.fetch(ref)
        target = folder / "sequences" / f"seq{sequence.index:03d}.mp4"
        clips.append(await asyncio.to_thread(copy_atomic, local, target))
    score_file = None
    if score is not None:
        score_file = await asyncio.to_thread(
            copy_atomic, await studio.store.fetch(score.score), folder / "score.flac"
        )
    sheet = await asyncio.to_thread(
        write_contact_sheet, plan, clips, folder / "contact_sheet.png", studio.store.scratch
    )
    timeline = await asyncio.to_thread(
        write_timeline, plan, clips, score_file, folder / "timeline.otio"
    )
    manifest = manifest_document(
        studio, plan, film, renders, score, animatic, timings, set(cached_sequences), takes, cost
    )
    manifest_file = folder / "manifest.json"
    await asyncio.to_thread(
        write_atomic, manifest_file, manifest.model_dump_json(indent=2).encode("utf-8")
    )
    delivered = Deliverables(
        folder=folder,
        cut=film,
        film=film_file,
        master=master,
        score=score_file,
        sequences=tuple(clips),
        timeline=timeline,
        contact_sheet=sheet,
        manifest=manifest_file,
        record=manifest,
        report=folder / "report.md",
    )
    report = report_markdown(plan, film, delivered, manifest, relative_to=folder)
    await asyncio.to_thread(write_atomic, delivered.report, report.encode("utf-8"))
    if FlowRunContext.get() is not None:
        await acreate_markdown_artifact(
            key=REPORT_ARTIFACT_KEY,
            markdown=report_markdown(plan, film, delivered, manifest, relative_to=None),
            description=f"Deliverables of {plan.title}",
        )
    return delivered


def write_contact_sheet(plan: FilmPlan, clips: Seq[Path], dest: Path, scratch: Path) -> Path:
    """The first frame of every sequence in a labelled grid."""
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sheet-", dir=scratch) as work:
        frames = [
            (
                media.extract_first_frame(clip, Path(work) / f"{sequence.index}.png"),
                sequence_label(sequence),
            )
            for sequence, clip in zip(plan.sequences, clips, strict=True)
        ]
        return media.contact_sheet(frames, dest)












