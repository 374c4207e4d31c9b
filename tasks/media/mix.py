"""Score assembly and the final mix: crossfaded cues, dialogue + score, distribution encode."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence as Seq
from pathlib import Path
from typing import Any

import ffmpeg

from tasks.media.encode import (
    AUDIO_AAC,
    AUDIO_RATE,
    FASTSTART,
    VIDEO_DISTRIBUTION,
    VIDEO_MASTER,
)
from tasks.media.errors import MediaError
from tasks.media.passthrough import copies_as_distribution, level_rewrite
from tasks.media.probe import probe
from tasks.media.run import atomic_output, run_ffmpeg


def assemble_score_args(
    cues: list[Path], out: Path, *, crossfade_s: float, total_s: float, fade_out_s: float
) -> list[str]:
    """ffmpeg arguments for the score: chained triangular crossfades, pad, trim, fade out."""
    # Cues may differ in rate and layout (mp3 vs flac); acrossfade needs them equal.
    streams = [
        ffmpeg.input(str(c)).audio.filter(
            "aformat", sample_fmts="fltp", sample_rates=AUDIO_RATE, channel_layouts="stereo"
        )
        for c in cues
    ]
    score = streams[0]
    for cue in streams[1:]:
        score = ffmpeg.filter([score, cue], "acrossfade", d=crossfade_s, c1="tri", c2="tri")
    fade_s = min(fade_out_s, total_s)
    score = (
        score.filter("apad", whole_dur=total_s)
        .filter("atrim", duration=total_s)
        .filter("afade", t="out", st=total_s - fade_s, d=fade_s)
    )
    graph = ffmpeg.output(score, str(out), acodec="flac", ar=AUDIO_RATE)
    args: list[str] = graph.get_args()
    return args


def assemble_score(
    cues: list[Path],
    dest: Path,
    *,
    crossfade_s: float = 2.0,
    total_s: float,
    fade_out_s: float = 3.0,
) -> Path:
    """Crossfade `cues` in order into one 48 kHz FLAC lasting exactly `total_s`."""
    if not cues:
        raise MediaError("assemble_score needs at least one cue")
    if total_s <= 0:
        raise MediaError(f"the score must last a positive time, not {total_s} s")
    durations = []
    for cue in cues:
        audio = probe(cue).audio
        if audio is None:
            raise MediaError(f"score cue {cue} has no audio stream")
        durations.append(audio.duration)
    try:
        assembled_length(durations, crossfade_s)
    except ValueError as exc:
        raise MediaError(f"cannot chain cues {[c.name for c in cues]}: {exc}") from exc
    with atomic_output(dest) as tmp:
        run_ffmpeg(
            assemble_score_args(
                cues, tmp, crossfade_s=crossfade_s, total_s=total_s, fade_out_s=fade_out_s
            )
        )
    return dest


def mix_and_encode_args(
    video_with_dialogue: Path,
    score: Path | None,
    out: Path,
    *,
    score_gain: float,
    duration_s: float,
    master_out: Path | None = None,
    copy_picture: bool = False,
    picture_level: int | None = None,
) -> list[str]:
    """ffmpeg arguments: dialogue 1.0 + score x gain (amix, normalize=0), distribution encode.

    Both tracks are padded and trimmed to the picture's `duration_s` first: amix's own
    duration=first ends early in ffmpeg 5.1 while the video encoder is still buffering.
    `copy_picture`: the picture already meets the distribution profile and is stream-copied
    (its headers marked `picture_level` when given); only the sound is encoded.
    """
    film = ffmpeg.input(str(video_with_dialogue))
    # The dialogue is read through a second input of the same file: read from the picture's
    # input while libx264 re-encodes it, ffmpeg 5.1 stops feeding the audio ~2 s before the
    # end, and the score plays alone there. (The option only makes it a separate input.)
    dialogue = (
        ffmpeg.input(str(video_with_dialogue), thread_queue_size=512)
        .audio.filter("aresample", AUDIO_RATE)
        .filter("apad", whole_dur=duration_s)
        .filter("atrim", duration=duration_s)
    )
    if score is None:
        mixed = dialogue
    else:
        music = (
            ffmpeg.input(str(score))
            .audio.filter("aresample", AUDIO_RATE)
            .filter("volume", score_gain)
            .filter("apad", whole_dur=duration_s)
            .filter("atrim", duration=duration_s)
        )
        # normalize=0: amix would otherwise scale the dialogue down by the input count.
        mixed = ffmpeg.filter([dialogue, music], "amix", inputs=2, duration="longest", normalize=0)
    picture = distribution_picture(copy_picture, picture_level)
    if master_out is None:
        graph = ffmpeg.output(film.video, mixed, str(out), **picture, **AUDIO_AAC, **FASTSTART)
    else:
        split = mixed.filter_multi_output("asplit")
        graph = ffmpeg.merge_outputs(
            ffmpeg.output(film.video, split[0], str(out), **picture, **AUDIO_AAC, **FASTSTART),
            ffmpeg.output(film.video, split[1], str(master_out), **VIDEO_MASTER, **AUDIO_AAC),
        )
    args: list[str] = graph.get_args()
    return args


def distribution_picture(copy: bool, level: int | None = None) -> dict[str, Any]:
    """Output options for the film's picture: copied (headers marked `level`) or encoded."""
    if not copy:
        return dict(VIDEO_DISTRIBUTION)
    options: dict[str, Any] = {"vcodec": "copy"}
    if level is not None:
        options["bsf:v"] = f"h264_metadata=level={level}"
    return options


def mix_and_encode(
    video_with_dialogue: Path,
    score: Path | None,
    dest: Path,
    *,
    score_gain: float = 0.25,
    master: Path | None = None,
) -> Path:
    """Mix the score under the dialogue and encode the distribution film (and master).

    A picture that already meets the distribution profile is stream-copied, not re-encoded.
    """
    picture = probe(video_with_dialogue).video
    if picture is None:
        raise MediaError(f"{video_with_dialogue} has no video stream to mix under")
    copy = copies_as_distribution(picture)
    with contextlib.ExitStack() as outputs:
        tmp = outputs.enter_context(atomic_output(dest))
        master_tmp = outputs.enter_context(atomic_output(master)) if master else None
        run_ffmpeg(
            mix_and_encode_args(
                video_with_dialogue,
                score,
                tmp,
                score_gain=score_gain,
                duration_s=picture.duration,
                master_out=master_tmp,
                copy_picture=copy,
                picture_level=level_rewrite(picture.level) if copy else None,
            )
        )
    return dest


def assembled_length(cue_durations: Seq[float], crossfade_s: float) -> float:
    """Length of cues chained with crossfades: the sum minus one overlap per join."""
    if len(cue_durations) > 1 and min(cue_durations) < crossfade_s:
        raise ValueError(f"every cue must last at least the {crossfade_s} s crossfade")
    return sum(cue_durations) - crossfade_s * max(0, len(cue_durations) - 1)
