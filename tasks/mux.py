"""The final cut: sequences joined, the score mixed under the dialogue, verified, then published.

Hard cuts by stream copy are the default: lossless, and they never touch a spoken word.
A dissolve (`xfade`) overlaps the end of one sequence with the start of the next, eating the
audio on both sides, so it is refused outright when any planned line sits at a cut.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import tempfile
from collections.abc import Sequence as Seq
from pathlib import Path
from typing import Any

from prefect import task

from tasks import media
from tasks.errors import ReelflowError
from tasks.runtime.caching import content_key, keyed_by
from tasks.runtime.studio import Studio
from tasks.schema.film_plan import FilmPlan, PlannedLine
from tasks.schema.outcomes import CutFilm, FilmFile, Footage, ScoreResult, Transitions
from tasks.schema.refs import MediaRef

DISSOLVE_S = 1.0
MIX_VERSION = 2
"""Bump when the mix itself changes, so cached cuts are mixed again (no GPU work).
2: the dialogue no longer stops ~2 s before the end of a scored film."""
DEFAULT_SCORE_GAIN = 0.25
"""-12 dB under dialogue at 1.0 (0.18-0.30 is the useful range)."""


class MuxError(ReelflowError):
    """The final film cannot be assembled as asked."""


class DissolveRefused(MuxError):
    """A dissolve was asked for across a cut where a line is spoken."""


def master_path(dest: Path) -> Path:
    """`<title>_master.mp4` beside `<title>.mp4`."""
    return dest.with_name(f"{dest.stem}_master{dest.suffix}")


def lines_at_cuts(plan: FilmPlan, overlap_s: float) -> list[tuple[int, PlannedLine]]:
    """Every (cut number, line) where a dissolve of `overlap_s` would overlap a planned line.

    Cut number i is the cut between sequence i and i + 1. A line's planned window is its
    scene's span, so a line in the last scene before a cut or the first scene after it counts.
    """
    found: list[tuple[int, PlannedLine]] = []
    for cut, (outgoing, incoming) in enumerate(itertools.pairwise(plan.sequences)):
        found += [
            (cut, line) for line in outgoing.lines if line.end_s > outgoing.seconds - overlap_s
        ]
        found += [(cut, line) for line in incoming.lines if line.start_s < overlap_s]
    return found


def refuse_dialogue_dissolves(plan: FilmPlan, overlap_s: float) -> None:
    """Raise DissolveRefused naming every line a dissolve would eat."""
    eaten = lines_at_cuts(plan, overlap_s)
    if not eaten:
        return
    described = "; ".join(
        f'cut {cut} -> {cut + 1}: {line.character} "{line.line}"' for cut, line in eaten
    )
    raise DissolveRefused(
        f"a {overlap_s:g} s dissolve would overlap spoken lines at {len(eaten)} place(s) "
        f"({described}). Use hard cuts (transitions='cut'), or move the lines away from the "
        "sequence edges."
    )


async def mux_to_file(
    studio: Studio,
    plan: FilmPlan,
    sequences: Seq[MediaRef],
    score: MediaRef | None,
    dest: Path,
    *,
    score_gain: float = DEFAULT_SCORE_GAIN,
    transitions: Transitions = "cut",
    master: bool = False,
    dissolve_s: float = DISSOLVE_S,
) -> FilmFile:
    """Join the (normalized) sequences in plan order, mix the score under them, verify, publish.

    `dest` and its `_master` sibling appear only once they have passed verification.
    """
    if len(sequences) != len(plan.sequences):
        raise MuxError(f"{len(sequences)} sequence files for {len(plan.sequences)} sequences")
    if not 0 <= score_gain <= 1:
        raise MuxError(f"score gain {score_gain} is outside 0-1 (0.25 is -12 dB)")
    if transitions == "dissolve":
        refuse_dialogue_dissolves(plan, dissolve_s)
    clips = [await studio.store.fetch(ref) for ref in sequences]
    score_file = await studio.store.fetch(score) if score is not None else None
    seconds = tuple(await asyncio.to_thread(_picture_seconds, clips))
    overlaps = dissolve_s * (len(clips) - 1) if transitions == "dissolve" else 0.0
    expected_s = sum(seconds) - overlaps
    dest.parent.mkdir(parents=True, exist_ok=True)
    pending = dest.with_name(f".{dest.stem}.unverified{dest.suffix}")
    pending_master = master_path(pending) if master else None
    try:
        await asyncio.to_thread(
            _cut_and_mix, clips, score_file, pending, pending_master, transitions, dissolve_s,
            score_gain, studio.store.scratch,
        )  # fmt: skip
        await asyncio.to_thread(_verify, pending, pending_master, expected_s)
        if pending_master is not None:
            os.replace(pending_master, master_path(dest))
        os.replace(pending, dest)
    finally:
        pending.unlink(missing_ok=True)
        if pending_master is not None:
            pending_master.unlink(missing_ok=True)
    return FilmFile(
        path=dest,
        master=master_path(dest) if master else None,
        duration_s=expected_s,
        sequence_seconds=seconds,
        transitions=transitions,
        score_gain=score_gain,
        scored=score is not None,
    )


def _picture_seconds(clips: list[Path]) -> list[float]:
    seconds = []
    for clip in clips:
        video = media.probe(clip).video
        if video is None:
            raise MuxError(f"sequence file {clip.name} has no video stream")
        seconds.append(video.duration)
    return seconds


def _cut_and_mix(
    clips: list[Path],
    score: Path | None,
    dest: Path,
    master: Path | None,
    transitions: Transitions,
    dissolve_s: float,
    score_gain: float,
    scratch: Path,
) -> None:
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mux-", dir=scratch) as work:
        joined = Path(work) / "joined.mp4"
        if transitions == "dissolve":
            media.crossfade_concat(clips, joined, seconds=dissolve_s)
        else:
            media.concat_copy(clips, joined)
        media.mix_and_encode(joined, score, dest, score_gain=score_gain, master=master)


def _verify(film: Path, master: Path | None, expected_s: float) -> None:
    info = media.verify_film(film, expected_duration_s=expected_s)
    media.check_distribution(film, info)
    if master is not None:
        media.verify_film(master, expected_duration_s=expected_s)


def _cut_key(parameters: dict[str, Any]) -> str:
    plan: FilmPlan = parameters["plan"]
    return content_key(
        "cut",
        {
            "mix": MIX_VERSION,
            "sequences": parameters["sequences"],
            "score": parameters["score"],
            "gain": parameters["score_gain"],
            "transitions": parameters["transitions"],
            "master": parameters["master"],
            "lines": [s.lines for s in plan.sequences]
            if parameters["transitions"] != "cut"
            else [],
        },
    )


@task(
    name="cut-film",
    task_run_name="cut-film",
    cache_policy=keyed_by(_cut_key),
    persist_result=True,
    result_serializer="json",
    cache_result_in_memory=False,
)
async def cut_film(
    studio: Studio,
    plan: FilmPlan,
    sequences: list[MediaRef],
    score: MediaRef | None,
    *,
    score_gain: float = DEFAULT_SCORE_GAIN,
    transitions: Transitions = "cut",
    master: bool = False,
) -> CutFilm:
    """Mux once per distinct cut: an unchanged re-run reads the film back from the store."""
    work = Path(tempfile.mkdtemp(prefix="cut-", dir=studio.store.scratch))
    film = await mux_to_file(
        studio,
        plan,
        sequences,
        score,
        work / "film.mp4",
        score_gain=score_gain,
        transitions=transitions,
        master=master,
    )
    return CutFilm(
        film=await studio.store.put(film.path),
        master=await studio.store.put(film.master) if film.master else None,
        file=film,
    )


async def mux_film(studio: Studio, footage: Footage, score: ScoreResult | None) -> FilmFile:
    """The final cut (cached by content): the sequences joined, the score mixed under them."""
    studio.events.stage("cutting the film")
    delivery = studio.options.delivery
    with studio.timer.stage("mux"):
        result = await studio.bind(cut_film)(
            studio,
            footage.plan,
            footage.clips,
            score.score if score else None,
            score_gain=delivery.score_gain,
            transitions=delivery.transitions,
            master=delivery.master,
        )
        return result.file.model_copy(
            update={
                "path": await studio.store.fetch(result.film),
                "master": await studio.store.fetch(result.master) if result.master else None,
            }
        )
