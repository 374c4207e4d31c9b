"""The joined cut made deliverable: mixed, brought to its loudness profile, then mastered.

Order matters. The mix (dialogue + score) is encoded once, measured as a whole and
corrected to the delivery profile (`tasks.media.loudness_correct`); everything else is
made from that corrected film, so no file in the folder carries another loudness:
- the master's picture comes from the joined sequences (never from the distribution
  encode) and its sound from the corrected film (AAC copied, or PCM for ProRes/DNxHR);
- the stems carry the correction's gain (`tasks.media.stems`), so they still sum to the mix;
- the burnt-subtitle copy re-encodes the corrected film's picture and copies its sound.
All files are written into one work folder under fixed names; the caller verifies and
publishes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from tasks.media.burnin import burn_subtitles
from tasks.media.loudness import DeliveryProfile
from tasks.media.loudness_correct import LoudnessResult, correct_film_loudness
from tasks.media.mezzanine import encode_master, master_path
from tasks.media.mix import mix_and_encode
from tasks.media.probe import probe
from tasks.media.stems import Stems, write_stems
from tasks.schema.delivery import MasterKind


class MixedFilm(BaseModel):
    """The film `mix_film` made: the mix at its delivery loudness, and how it got there."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    film: Path
    loudness: LoudnessResult | None


class FinishedCut(BaseModel):
    """What `mix_film` and `finish_beside` wrote into their work folder."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    film: Path
    loudness: LoudnessResult | None
    master: Path | None
    stems: Stems | None
    subtitled: Path | None


def mix_film(
    joined: Path,
    score: Path | None,
    work: Path,
    *,
    score_gain: float,
    profile: DeliveryProfile | None,
    dialogue_regions: Sequence[tuple[float, float]] = (),
) -> MixedFilm:
    """Mix `joined` (picture + dialogue) with `score` and correct the mix to `profile`.

    No profile: the mix is delivered as mixed (nothing measured or changed).
    """
    mixed = mix_and_encode(joined, score, work / "mixed.mp4", score_gain=score_gain)
    if profile is None:
        return MixedFilm(film=mixed, loudness=None)
    film = work / "film.mp4"
    loudness = correct_film_loudness(
        mixed, film, profile, dialogue_regions=list(dialogue_regions) or None
    )
    mixed.unlink()
    return MixedFilm(film=film, loudness=loudness)


def finish_beside(
    joined: Path,
    score: Path | None,
    mixed: MixedFilm,
    work: Path,
    *,
    score_gain: float,
    master: MasterKind = "none",
    stems: bool = False,
    subtitles: Path | None = None,
) -> FinishedCut:
    """Write, from the `mixed` film, the `master`, the stems and a copy with `subtitles` (an
    SRT) burnt in, as asked. Reads the film only, so it may be verified meanwhile."""
    film, loudness = mixed.film, mixed.loudness
    master_file = None
    if master != "none":
        master_file = encode_master(joined, master_path(film, master), master, audio=film)
    stem_files = None
    if stems:
        picture = probe(film).video
        stem_files = write_stems(
            joined,
            score,
            work,
            film.stem,
            score_gain=score_gain,
            gain_db=loudness.gain_db if loudness is not None else 0.0,
            duration_s=picture.duration if picture is not None else None,
        )
    subtitled = None
    if subtitles is not None:
        subtitled = burn_subtitles(film, subtitles, work / f"{film.stem}_subtitled.mp4")
    return FinishedCut(
        film=film, loudness=loudness, master=master_file, stems=stem_files, subtitled=subtitled
    )
