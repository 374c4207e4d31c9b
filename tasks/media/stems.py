"""Dialogue and music stems: 48 kHz 24-bit WAV, sample-aligned with the film, summing to its mix.

Each stem goes through the same steps as its side of the mix (`tasks.media.score`
`mix_and_encode_args`): resampled to 48 kHz, padded and trimmed to the picture's duration,
and the music scaled by the score gain. So the music stem is written **at the mix gain**,
not at unity: dialogue + music is the film's mix, sample for sample, as post houses expect
of stems; the gain is recorded in `Stems.score_gain` for anyone who wants the score at unity.
A delivery loudness gain (`gain_db`, see `tasks.media.loudness`) scales both stems alike, so
they still sum to the corrected mix (a true-peak limiter, where one was needed, acts on the
mix alone and is not in the stems).

Names follow the trade's stem abbreviations: `<name>_DX.wav` (dialogue), `<name>_MX.wav`.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import ffmpeg
from pydantic import BaseModel, ConfigDict

from tasks.media.encode import AUDIO_RATE
from tasks.media.errors import MediaError
from tasks.media.probe import probe
from tasks.media.run import atomic_output, run_ffmpeg

STEM_PCM: dict[str, Any] = {"acodec": "pcm_s24le", "ar": AUDIO_RATE, "f": "wav"}


class Stems(BaseModel):
    """The stems of one film, the gains they carry, and their length in samples."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dialogue: Path
    music: Path | None
    score_gain: float
    gain_db: float
    samples: int


def stem_args(source: Path, out: Path, *, gain: float, duration_s: float) -> list[str]:
    """ffmpeg arguments: `source`'s audio x `gain`, exactly `duration_s` long, 24-bit WAV."""
    samples = round(duration_s * AUDIO_RATE)
    audio = (
        ffmpeg.input(str(source))
        .audio.filter("aresample", AUDIO_RATE)
        .filter("volume", gain, precision="double")
        # Counted in samples, not timestamps: joined sequences' audio timestamps overlap a
        # little at each cut, and a trim by duration would let those extra samples through.
        .filter("apad", whole_len=samples)
        .filter("atrim", end_sample=samples)
    )
    graph = ffmpeg.output(audio, str(out), **STEM_PCM)
    args: list[str] = graph.get_args()
    return args


def stem_paths(folder: Path, name: str) -> tuple[Path, Path]:
    """`<folder>/<name>_DX.wav` and `<folder>/<name>_MX.wav`."""
    return folder / f"{name}_DX.wav", folder / f"{name}_MX.wav"


def write_stems(
    cut: Path,
    score: Path | None,
    folder: Path,
    name: str,
    *,
    score_gain: float,
    gain_db: float = 0.0,
    duration_s: float | None = None,
) -> Stems:
    """Write the dialogue stem of `cut` (the joined sequences) and the music stem of `score`.

    `cut` is the file the mix was made from (its audio is the dialogue); both stems last
    exactly `duration_s`, by default its picture's duration. (Pass the film's own: sequences
    joined by stream copy carry a few hundredths of a second of timestamp slack at their cuts,
    which the film's encode does not keep.) No score, no music stem.
    """
    picture = probe(cut).video
    if picture is None:
        raise MediaError(f"{cut} has no video stream: stems are timed to the film's picture")
    seconds = duration_s if duration_s is not None else picture.duration
    if probe(cut).audio is None:
        raise MediaError(f"{cut} has no audio stream to make a dialogue stem from")
    if score is not None and probe(score).audio is None:
        raise MediaError(f"{score} has no audio stream to make a music stem from")
    delivery = 10.0 ** (gain_db / 20.0)
    dialogue_dest, music_dest = stem_paths(folder, name)
    with contextlib.ExitStack() as outputs:
        tmp = outputs.enter_context(atomic_output(dialogue_dest))
        run_ffmpeg(stem_args(cut, tmp, gain=delivery, duration_s=seconds))
        if score is not None:
            tmp = outputs.enter_context(atomic_output(music_dest))
            run_ffmpeg(stem_args(score, tmp, gain=score_gain * delivery, duration_s=seconds))
    return Stems(
        dialogue=dialogue_dest,
        music=music_dest if score is not None else None,
        score_gain=score_gain,
        gain_db=gain_db,
        samples=round(seconds * AUDIO_RATE),
    )
