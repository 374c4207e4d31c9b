"""The final cut: sequences joined, the score mixed under the dialogue, the mix brought to its
delivery profile, the master, stems and burnt-subtitle copy made, verified, then published.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import task

from tasks import media
from tasks.errors import ReelflowError
from tasks.media.burnin import subtitled_path
from tasks.media.edit import concat_encode
from tasks.media.finishing import FinishedCut, MixedFilm, finish_beside, mix_film
from tasks.media.loudness import DeliveryProfile, delivery_profile
from tasks.media.loudness_correct import loudness_record
from tasks.media.mezzanine import master_path
from tasks.media.passthrough import PictureSignature, ProbedPicture, decide_picture, probe_picture
from tasks.media.stems import stem_paths
from tasks.runtime.caching import content_key, keyed_by
from tasks.runtime.studio import Studio
from tasks.runtime.task_inputs import whole
from tasks.schema.delivery import MasterKind
from tasks.schema.film_plan import FilmPlan, PlannedLine
from tasks.schema.outcomes import (
    CutFilm,
    FilmFile,
    Footage,
    ScoreResult,
    SpokenLine,
    Transitions,
)
from tasks.schema.refs import MediaRef
from tasks.spoken_lines import spoken_lines
from tasks.subtitles import subtitle_cues_of, write_subtitles

DISSOLVE_S = 1.0
MIX_VERSION = 3
"""Bump when the mix itself changes, so cached cuts are mixed again (no GPU work).
2: the dialogue no longer stops ~2 s before the end of a scored film.
3: the mix is measured and corrected to its delivery profile; stems beside it."""
DEFAULT_SCORE_GAIN = 0.25
"""-12 dB under dialogue at 1.0 (0.18-0.30 is the useful range)."""


class MuxError(ReelflowError):
    """The final film cannot be assembled as asked."""


class DissolveRefused(MuxError):
    """A dissolve was asked for across a cut where a line is spoken."""


@dataclass(frozen=True)
class Cut:
    """What one cut is made of and what is made beside it (`mix_film`, `finish_beside`)."""

    clips: list[Path]
    score: Path | None
    transitions: Transitions
    dissolve_s: float
    score_gain: float
    profile: DeliveryProfile | None
    lines: tuple[SpokenLine, ...]
    master: MasterKind
    stems: bool
    burn_subtitles: bool


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
    master: MasterKind = "none",
    dissolve_s: float = DISSOLVE_S,
    profile: DeliveryProfile | None = None,
    lines: Seq[SpokenLine] = (),
    stems: bool = False,
    burn_subtitles: bool = False,
) -> FilmFile:
    """Join the (normalized) sequences in plan order, mix the score under them, bring the mix
    to `profile` (none: leave it as mixed), verify, publish.

    Beside `dest`, as asked: the `master` (`tasks.media.mezzanine.master_path`), the stems
    (`<stem>_DX.wav`, `<stem>_MX.wav`) and `<stem>_subtitled.mp4` with `lines` burnt in.
    `lines` are the spoken lines in film seconds: a dialogue-gated profile measures them.
    Every file appears only once all of them have passed verification.
    """
    if len(sequences) != len(plan.sequences):
        raise MuxError(f"{len(sequences)} sequence files for {len(plan.sequences)} sequences")
    if not 0 <= score_gain <= 1:
        raise MuxError(f"score gain {score_gain} is outside 0-1 (0.25 is -12 dB)")
    if transitions == "dissolve":
        refuse_dialogue_dissolves(plan, dissolve_s)
    clips = [await studio.store.fetch(ref) for ref in sequences]
    score_file = await studio.store.fetch(score) if score is not None else None
    pictures = await asyncio.to_thread(_pictures, clips)
    seconds = tuple(picture.duration_s for picture in pictures)
    overlaps = dissolve_s * (len(clips) - 1) if transitions == "dissolve" else 0.0
    expected_s = sum(seconds) - overlaps
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Beside `dest`, so publishing is a rename; hidden, so no reader takes it for a film.
    with tempfile.TemporaryDirectory(prefix=f".{dest.stem}.", dir=dest.parent) as work:
        cut = Cut(
            clips=clips, score=score_file, transitions=transitions, dissolve_s=dissolve_s,
            score_gain=score_gain, profile=profile, lines=tuple(lines), master=master,
            stems=stems, burn_subtitles=burn_subtitles and bool(lines),
        )  # fmt: skip
        folder = Path(work)
        joined, mixed, picture = await asyncio.to_thread(
            _cut_and_mix, cut, [p.signature for p in pictures], folder
        )
        # The film is verified while the master, stems and subtitled copy are made from it.
        # Both threads run to their end before the work folder goes, whichever one fails.
        checked, made = await asyncio.gather(
            asyncio.to_thread(_verify_film, mixed.film, expected_s),
            asyncio.to_thread(_finish_beside, cut, joined, mixed, folder),
            return_exceptions=True,
        )
        for outcome in (checked, made):
            if isinstance(outcome, BaseException):
                raise outcome
        assert isinstance(made, FinishedCut)
        await asyncio.to_thread(_verify_beside, made, expected_s)
        published = _publish(made, dest, master)
    return FilmFile(
        path=dest,
        master=published.master,
        duration_s=expected_s,
        sequence_seconds=seconds,
        transitions=transitions,
        score_gain=score_gain,
        scored=score is not None,
        master_kind=master,
        loudness=loudness_record(made.loudness) if made.loudness else None,
        lines=tuple(lines),
        dialogue_stem=published.stems.dialogue if published.stems else None,
        music_stem=published.stems.music if published.stems else None,
        subtitled=published.subtitled,
        picture=picture,
    )


def _pictures(clips: list[Path]) -> list[ProbedPicture]:
    pictures = []
    for clip in clips:
        picture = probe_picture(clip)
        if picture is None:
            raise MuxError(f"sequence file {clip.name} has no video stream")
        pictures.append(picture)
    return pictures


def _cut_and_mix(
    cut: Cut, signatures: list[PictureSignature], work: Path
) -> tuple[Path, MixedFilm, str]:
    """The joined sequences, the film mixed from them, and the sentence saying whether its
    picture was re-encoded."""
    joined = work / "joined.mp4"
    if cut.transitions == "dissolve":
        media.crossfade_concat(cut.clips, joined, seconds=cut.dissolve_s)
        note = "re-encoded once, for the dissolves"
    else:
        decision = decide_picture(signatures)
        if decision.joinable:
            media.concat_copy(cut.clips, joined)
        else:
            concat_encode(cut.clips, joined)
        note = decision.note
    mixed = mix_film(
        joined,
        cut.score,
        work,
        score_gain=cut.score_gain,
        profile=cut.profile,
        dialogue_regions=[(line.start_s, line.end_s) for line in cut.lines],
    )
    if cut.burn_subtitles:
        note += "; the subtitled copy re-encodes it to burn the lines in"
    return joined, mixed, note


def _finish_beside(cut: Cut, joined: Path, mixed: MixedFilm, work: Path) -> FinishedCut:
    subtitles = None
    if cut.burn_subtitles:
        subtitles = write_subtitles(subtitle_cues_of(cut.lines), work, "burn")["srt"]
    return finish_beside(
        joined,
        cut.score,
        mixed,
        work,
        score_gain=cut.score_gain,
        master=cut.master,
        stems=cut.stems,
        subtitles=subtitles,
    )


def _verify_film(film: Path, expected_s: float) -> None:
    media.check_distribution(film, media.verify_film(film, expected_duration_s=expected_s))


def _verify_beside(made: FinishedCut, expected_s: float) -> None:
    if made.master is not None:
        media.verify_film(made.master, expected_duration_s=expected_s)
    if made.subtitled is not None:
        _verify_film(made.subtitled, expected_s)


def _publish(made: FinishedCut, dest: Path, kind: MasterKind) -> FinishedCut:
    """Rename every made file to its place beside `dest`, the film itself last."""
    master = stems = subtitled = None
    if made.master is not None:
        master = _move(made.master, master_path(dest, kind))
    if made.stems is not None:
        dialogue, music = stem_paths(dest.parent, dest.stem)
        stems = made.stems.model_copy(
            update={
                "dialogue": _move(made.stems.dialogue, dialogue),
                "music": _move(made.stems.music, music) if made.stems.music else None,
            }
        )
    if made.subtitled is not None:
        subtitled = _move(made.subtitled, subtitled_path(dest))
    return made.model_copy(
        update={
            "film": _move(made.film, dest),
            "master": master,
            "stems": stems,
            "subtitled": subtitled,
        }
    )


def _move(made: Path, target: Path) -> Path:
    os.replace(made, target)
    return target


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
            # The profile's own numbers, so a retuned profile corrects the film again.
            "profile": delivery_profile(parameters["profile"]),
            "spoken": parameters["spoken"],
            "burn": parameters["burn_subtitles"],
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
    master: MasterKind = "none",
    profile: str = "ebu-r128",
    spoken: tuple[SpokenLine, ...] = (),
    burn_subtitles: bool = False,
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
        profile=delivery_profile(profile),
        lines=spoken,
        stems=True,
        burn_subtitles=burn_subtitles,
    )
    return CutFilm(
        film=await studio.store.put(film.path),
        master=await _put(studio, film.master),
        file=film,
        dialogue_stem=await _put(studio, film.dialogue_stem),
        music_stem=await _put(studio, film.music_stem),
        subtitled=await _put(studio, film.subtitled),
    )


async def _put(studio: Studio, path: Path | None) -> MediaRef | None:
    return await studio.store.put(path) if path is not None else None


async def _fetch(studio: Studio, ref: MediaRef | None) -> Path | None:
    return await studio.store.fetch(ref) if ref is not None else None


async def mux_film(studio: Studio, footage: Footage, score: ScoreResult | None) -> FilmFile:
    """The final cut (cached by content): the sequences joined, the score mixed under them,
    the mix corrected to the plan's delivery profile, stems and the asked-for master beside."""
    studio.events.stage("cutting the film")
    delivery = studio.options.delivery
    overlap_s = DISSOLVE_S if delivery.transitions == "dissolve" else 0.0
    spoken = spoken_lines(footage.sequences, footage.measured_seconds, overlap_s=overlap_s)
    with studio.timer.stage("mux"):
        result = await studio.bind(cut_film)(
            whole(studio),
            whole(footage.plan),
            whole(footage.clips),
            score.score if score else None,
            score_gain=delivery.score_gain,
            transitions=delivery.transitions,
            master=delivery.master,
            profile=footage.plan.delivery_profile,
            spoken=tuple(spoken),
            burn_subtitles=delivery.burn_subtitles,
        )
    film = result.file.model_copy(
        update={
            "path": await studio.store.fetch(result.film),
            "master": await _fetch(studio, result.master),
            "dialogue_stem": await _fetch(studio, result.dialogue_stem),
            "music_stem": await _fetch(studio, result.music_stem),
            "subtitled": await _fetch(studio, result.subtitled),
        }
    )
    if film.loudness is not None:
        studio.events.stage(f"loudness: {film.loudness.reason}")
    if delivery.burn_subtitles and film.subtitled is None:
        studio.events.stage("burn-in: no line is spoken in the cut, so no subtitled copy")
    return film
