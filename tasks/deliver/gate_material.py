"""What a person looks at before a gate lets the film go on, written into the film folder.

cast:  <folder>/keyframes/chainN.png, and <folder>/gates/cast.png (every keyframe, labelled)
takes: <folder>/takes/... (every take, see `tasks.deliver.takes`), and a table of their scores
final: <folder>/<title>.mp4, the cut as it would be delivered

Each file is linked where it opens from anywhere (a bucket or the public URL, as the film's
own links are), or named by its path on the worker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence as Seq
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect.artifacts import (
    acreate_image_artifact,
    acreate_markdown_artifact,
    acreate_table_artifact,
)
from prefect.context import FlowRunContext

from tasks import media
from tasks.deliver.names import deliverable_name
from tasks.deliver.share import keyframe_files, links_to
from tasks.deliver.takes import take_video, write_takes
from tasks.runtime.files import copy_atomic
from tasks.runtime.studio import Studio
from tasks.schema.film_plan import FilmPlan
from tasks.schema.outcomes import ChainStart, FilmFile, SequenceResult


@dataclass
class Material:
    """A gate's material: a sentence, files of the film folder, and a table (takes)."""

    summary: str
    files: list[tuple[str, Path]]
    rows: list[dict[str, Any]] = field(default_factory=list)


async def cast_material(
    studio: Studio, plan: FilmPlan, starts: Seq[ChainStart], folder: Path
) -> Material:
    """Every chain's keyframe, and one labelled sheet of them all."""
    by_chain = {start.chain: start for start in starts}
    written = await keyframe_files(studio, [(s.chain, s.keyframe) for s in starts], folder)
    labelled = []
    for chain in plan.chains:
        start = by_chain[chain.index]
        if start.keyframe is None:
            continue
        origin = "author's image" if chain.keyframe.source_image else f"seed {chain.keyframe.seed}"
        labelled.append(
            (folder / "keyframes" / f"chain{chain.index}{start.keyframe.suffix}", origin)
        )
    files = [(f"keyframe {path.stem.removeprefix('chain')}", path) for path in written]
    if labelled:
        frames = [
            (path, f"chain {path.stem.removeprefix('chain')} · {how}") for path, how in labelled
        ]
        sheet = await asyncio.to_thread(media.contact_sheet, frames, folder / "gates" / "cast.png")
        files.insert(0, ("all keyframes", sheet))
    failed = [s.chain for s in starts if s.failure is not None]
    summary = (
        f"Keyframes of {len(written)} of {len(plan.chains)} chain(s) are ready; no sequence has "
        "been rendered yet."
        + (f" Chains {failed} could not start: {by_chain[failed[0]].failure}" if failed else "")
    )
    return Material(summary=summary, files=files)


def take_rows(results: Seq[SequenceResult]) -> list[dict[str, Any]]:
    """One row per take: its score and the parts of it, and whether it is the one kept."""
    return [
        {
            "sequence": result.sequence.index,
            "take": take.take,
            "score": take.score.total,
            "dialogue": take.score.dialogue,
            "continuity": take.score.continuity,
            "loudness": take.score.loudness,
            "voice": take.score.voice,
            "heard": take.verdict,
            "drift": take.drift,
            "LUFS": take.lufs,
            "kept": "picked" if take.take == result.kept_take and result.picked
            else "kept" if take.take == result.kept_take else "",
        }
        for result in results
        for take in result.takes
    ]  # fmt: skip


async def takes_material(studio: Studio, results: Seq[SequenceResult], folder: Path) -> Material:
    """Every take in the film folder, the sheet of their last frames, and their scores."""
    sheet = await write_takes(studio, results, folder)
    files: list[tuple[str, Path]] = [] if sheet is None else [("every take's last frame", sheet)]
    for result in results:
        for take in result.takes:
            n = result.sequence.index
            files.append((f"seq {n} take {take.take}", folder / take_video(n, take)))
    several = [r for r in results if r.takes]
    summary = (
        f"{len(results)} sequence(s) rendered; {len(several)} in several takes, the best-scored "
        "(or picked) one of each kept and carried forward. Score and mux have not run yet."
    )
    return Material(summary=summary, files=files, rows=take_rows(results))


async def final_material(studio: Studio, film: FilmFile, folder: Path, title: str) -> Material:
    """The cut as it would be delivered."""
    target = folder / f"{deliverable_name(title)}.mp4"
    if film.path.resolve() != target.resolve():
        await asyncio.to_thread(copy_atomic, film.path, target)
    return Material(
        summary=f"The cut is ready ({film.duration_s:.1f} s); nothing has been delivered yet.",
        files=[("the film", target)],
    )


async def material_links(
    studio: Studio, material: Material, folder: Path
) -> tuple[list[tuple[str, str]], list[str]]:
    """(label, link) of each file where it opens anywhere, else (label, path on the worker);
    and the links of its pictures (none without links: an image artifact needs a URL)."""
    paths = [path for _, path in material.files]
    links = await links_to(studio, folder, paths) if paths else []
    if links is None:
        return [(label, str(path)) for label, path in material.files], []
    labelled = [(label, link) for (label, _), link in zip(material.files, links, strict=True)]
    images = [link for path, link in zip(paths, links, strict=True) if path.suffix == ".png"]
    return labelled, images


async def publish_gate(gate: str, markdown: str, images: Seq[str], rows: Any) -> None:
    """The gate's request as a run artifact, its pictures as image artifacts, its table."""
    if FlowRunContext.get() is None:
        return
    await acreate_markdown_artifact(
        key=f"gate-{gate}", markdown=markdown, description=f"What the {gate} gate asks"
    )
    for number, link in enumerate(images):
        await acreate_image_artifact(
            image_url=link, key=f"gate-{gate}-image-{number}", description=f"{gate} gate"
        )
    if rows:
        await acreate_table_artifact(
            key="takes", table=rows, description="Every take of every sequence, and its score"
        )
