"""Editing operations on sequences: hard-cut and crossfade concatenation, muting, new audio."""

from __future__ import annotations

from pathlib import Path

import ffmpeg
import numpy as np

from tasks.media.encode import AUDIO_AAC, AUDIO_RATE, FASTSTART, VIDEO_DISTRIBUTION
from tasks.media.errors import MediaError
from tasks.media.probe import probe
from tasks.media.run import atomic_output, run_ffmpeg


def concat_list_entry(path: Path) -> str:
    """One concat-demuxer line for `path`, quoted so any file name is read literally."""
    if "\n" in str(path) or "\r" in str(path):
        raise MediaError(f"cannot list {path!r} for concatenation: its name holds a line break")
    # Inside single quotes the demuxer only treats ' specially; close, escape, reopen.
    quoted = str(path.resolve()).replace("'", "'\\''")
    return f"file '{quoted}'\n"


def concat_copy_args(list_file: Path, out: Path) -> list[str]:
    """ffmpeg arguments that stream-copy the clips named in `list_file` into `out`."""
    graph = ffmpeg.input(str(list_file), f="concat", safe=0).output(str(out), c="copy", **FASTSTART)
    args: list[str] = graph.get_args()
    return args


def concat_copy(clips: list[Path], dest: Path) -> Path:
    """Join `clips` end to end with lossless hard cuts (concat demuxer, stream copy)."""
    if not clips:
        raise MediaError("concat_copy needs at least one clip")
    with atomic_output(dest) as tmp:
        list_file = tmp.with_suffix(".txt")
        try:
            list_file.write_text("".join(concat_list_entry(c) for c in clips), encoding="utf-8")
            run_ffmpeg(concat_copy_args(list_file, tmp))
        finally:
            list_file.unlink(missing_ok=True)
    return dest


def concat_encode_args(clips: list[Path], out: Path) -> list[str]:
    """ffmpeg arguments joining `clips` that differ (size aside) into one distribution file.

    The concat filter decodes every clip on its own, so clips with different parameter sets,
    pixel formats or audio layouts join where the concat demuxer would not.
    """
    parts = []
    for clip in clips:
        source = ffmpeg.input(str(clip))
        parts.append(source.video.filter("setsar", 1))
        parts.append(
            source.audio.filter(
                "aformat", sample_fmts="fltp", sample_rates=AUDIO_RATE, channel_layouts="stereo"
            )
        )
    joined = ffmpeg.concat(*parts, v=1, a=1).node
    graph = ffmpeg.output(
        joined[0], joined[1], str(out), **VIDEO_DISTRIBUTION, **AUDIO_AAC, **FASTSTART
    )
    args: list[str] = graph.get_args()
    return args


def concat_encode(clips: list[Path], dest: Path) -> Path:
    """Join `clips` end to end with hard cuts, re-encoding them (when a stream copy cannot)."""
    if not clips:
        raise MediaError("concat_encode needs at least one clip")
    with atomic_output(dest) as tmp:
        run_ffmpeg(concat_encode_args(clips, tmp))
    return dest


def crossfade_offsets(durations: list[float], seconds: float) -> list[float]:
    """Start time of each crossfade in the growing joined clip (one per join)."""
    offsets: list[float] = []
    length = durations[0]
    for duration in durations[1:]:
        offsets.append(length - seconds)
        length += duration - seconds
    return offsets


def crossfade_concat_args(
    clips: list[Path], durations: list[float], out: Path, *, seconds: float
) -> list[str]:
    """ffmpeg arguments joining `clips` with `xfade` + `acrossfade` of `seconds` each."""
    inputs = [ffmpeg.input(str(c)) for c in clips]
    video = inputs[0].video
    audio = inputs[0].audio
    offsets = crossfade_offsets(durations, seconds)
    for clip, offset in zip(inputs[1:], offsets, strict=True):
        video = ffmpeg.filter(
            [video, clip.video], "xfade", transition="fade", duration=seconds, offset=offset
        )
        audio = ffmpeg.filter([audio, clip.audio], "acrossfade", d=seconds)
    graph = ffmpeg.output(video, audio, str(out), **VIDEO_DISTRIBUTION, **AUDIO_AAC, **FASTSTART)
    args: list[str] = graph.get_args()
    return args


def crossfade_concat(clips: list[Path], dest: Path, *, seconds: float) -> Path:
    """Join `clips` with video and audio crossfades (only for films without edge dialogue)."""
    if not clips:
        raise MediaError("crossfade_concat needs at least one clip")
    durations = []
    for clip in clips:
        video = probe(clip).video
        if video is None:
            raise MediaError(f"{clip} has no video stream to crossfade")
        if len(clips) > 1 and video.duration <= seconds:
            raise MediaError(f"{clip} lasts {video.duration:.2f} s, not longer than the fade")
        durations.append(video.duration)
    with atomic_output(dest) as tmp:
        run_ffmpeg(crossfade_concat_args(clips, durations, tmp, seconds=seconds))
    return dest


def mute_range_args(src: Path, out: Path, *, start_s: float, end_s: float) -> list[str]:
    """ffmpeg arguments silencing audio between `start_s` and `end_s`, video copied."""
    source = ffmpeg.input(str(src))
    audio = source.audio.filter("volume", volume=0, enable=f"between(t,{start_s:.6f},{end_s:.6f})")
    graph = ffmpeg.output(source.video, audio, str(out), vcodec="copy", **AUDIO_AAC, **FASTSTART)
    args: list[str] = graph.get_args()
    return args


def mute_range(src: Path, dest: Path, *, start_s: float, end_s: float) -> Path:
    """Silence the audio of `src` from `start_s` to `end_s`; the video is stream-copied."""
    if not 0 <= start_s < end_s:
        raise MediaError(f"cannot mute {start_s:.3f}-{end_s:.3f} s: not a forward time range")
    with atomic_output(dest) as tmp:
        run_ffmpeg(mute_range_args(src, tmp, start_s=start_s, end_s=end_s))
    return dest


def cut_voice_args(src: Path, out: Path, *, start_s: float, end_s: float) -> list[str]:
    """ffmpeg arguments for the sound of `src` from `start_s` to `end_s` as a 48 kHz mono WAV
    (a voice reference: uncompressed, one channel, no picture)."""
    audio = ffmpeg.input(str(src)).audio.filter("atrim", start=start_s, end=end_s)
    audio = audio.filter("asetpts", "PTS-STARTPTS")
    graph = ffmpeg.output(audio, str(out), acodec="pcm_s16le", ar=AUDIO_RATE, ac=1)
    args: list[str] = graph.get_args()
    return args


def cut_voice(src: Path, dest: Path, *, start_s: float, end_s: float) -> Path:
    """A character's words cut out of a render: their voice reference."""
    if not 0 <= start_s < end_s:
        raise MediaError(f"cannot cut {start_s:.3f}-{end_s:.3f} s: not a forward time range")
    with atomic_output(dest) as tmp:
        run_ffmpeg(cut_voice_args(src, tmp, start_s=start_s, end_s=end_s))
    return dest


def mute_all(src: Path, dest: Path) -> Path:
    """Silence all audio of `src` (keeping the stream and its length); video copied."""
    source = ffmpeg.input(str(src))
    with atomic_output(dest) as tmp:
        audio = source.audio.filter("volume", volume=0)
        graph = ffmpeg.output(
            source.video, audio, str(tmp), vcodec="copy", **AUDIO_AAC, **FASTSTART
        )
        run_ffmpeg(graph.get_args())
    return dest


def replace_audio(src: Path, dest: Path, samples: np.ndarray) -> Path:
    """`src` with its audio replaced by `samples` (float32, (n, channels), 48 kHz).

    The video stream is copied; the audio is encoded AAC at 48 kHz.
    """
    pcm = ffmpeg.input("pipe:0", f="f32le", ar=AUDIO_RATE, ac=samples.shape[1])
    streams = [pcm.audio]
    if probe(src).video is not None:
        streams.insert(0, ffmpeg.input(str(src)).video)
    with atomic_output(dest) as tmp:
        graph = ffmpeg.output(*streams, str(tmp), vcodec="copy", **AUDIO_AAC, **FASTSTART)
        run_ffmpeg(graph.get_args(), stdin=samples.astype("<f4").tobytes())
    return dest
