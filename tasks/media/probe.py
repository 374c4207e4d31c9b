"""What a media file holds, and the checks a finished film must pass.

Read in-process with PyAV (a few ms; an ffprobe process costs ~65 ms to start, and a film
run probes dozens of files); `decode=True` adds one ffprobe pass that decodes every frame.
"""

from __future__ import annotations

from pathlib import Path

import av
from av.container import InputContainer
from av.stream import Disposition, Stream
from pydantic import BaseModel

from tasks.media.errors import MediaError, MediaInvalid
from tasks.media.run import run_ffprobe

FILM_AUDIO_RATE = 48000
DURATION_TOLERANCE_S = 0.05


class VideoInfo(BaseModel):
    """The first video stream of a file."""

    frames: int
    fps: float
    width: int
    height: int
    pix_fmt: str
    codec: str
    profile: str | None
    level: int | None
    duration: float


class AudioInfo(BaseModel):
    """The first audio stream of a file."""

    rate: int
    channels: int
    codec: str
    duration: float


class MediaInfo(BaseModel):
    """A probed media file: container duration and its first video and audio streams."""

    duration: float
    video: VideoInfo | None
    audio: AudioInfo | None


def _first(streams: list[Stream]) -> Stream | None:
    # Cover art in mp4/flac shows up as a one-frame "video" stream; it is not the picture.
    for stream in streams:
        if not stream.disposition & Disposition.attached_pic:
            return stream
    return None


MICROSECONDS = 6
"""Durations are reported to the microsecond, as ffprobe and every other tool prints them."""


def _seconds(stream: Stream, container_s: float) -> float:
    if stream.duration is None or stream.time_base is None:
        return container_s
    return round(float(stream.duration * stream.time_base), MICROSECONDS)


def _packet_count(container: InputContainer, stream: Stream) -> int:
    # Containers without a frame index (mkv, webm): count the packets themselves.
    return sum(1 for packet in container.demux(stream) if packet.size)


def _video(container: InputContainer, stream: Stream, container_s: float) -> VideoInfo:
    context = stream.codec_context
    rate = stream.average_rate or stream.base_rate
    level = getattr(context, "level", None)
    return VideoInfo(
        frames=stream.frames or _packet_count(container, stream),
        fps=float(rate) if rate else 0.0,
        width=int(context.width),
        height=int(context.height),
        pix_fmt=context.format.name if context.format is not None else "",
        codec=context.codec.canonical_name,
        profile=context.profile,
        level=level if isinstance(level, int) and level > 0 else None,
        duration=_seconds(stream, container_s),
    )


def _audio(stream: Stream, container_s: float) -> AudioInfo:
    context = stream.codec_context
    return AudioInfo(
        rate=int(context.sample_rate),
        channels=int(context.layout.nb_channels),
        codec=context.codec.canonical_name,
        duration=_seconds(stream, container_s),
    )


def probe(path: Path, *, decode: bool = False) -> MediaInfo:
    """Probe `path`: durations, streams, exact video frame count.

    `decode`: also decode every frame of every stream, and raise MediaInvalid on any decode
    error.
    """
    if not path.is_file():
        raise MediaInvalid(f"{path} does not exist")
    try:
        with av.open(str(path)) as container:
            container_s = round((container.duration or 0) / av.time_base, MICROSECONDS)
            video = _first(list(container.streams.video))
            audio = _first(list(container.streams.audio))
            picture = _video(container, video, container_s) if video else None
            sound = _audio(audio, container_s) if audio else None
    except (av.FFmpegError, OSError, ValueError) as bad:
        raise MediaError(f"cannot read {path} as media: {bad}") from bad
    if decode:
        _decode_cleanly(path)
    return MediaInfo(duration=container_s, video=picture, audio=sound)


def _decode_cleanly(path: Path) -> None:
    """Every frame of every stream decoded in one ffprobe pass (`-count_frames` makes it
    decode); MediaInvalid on any decode error."""
    run_ffprobe(path, ["-count_frames", "-show_entries", "stream=index"], clean=True)
