"""What a media file holds (ffprobe), and the checks a finished film must pass."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from tasks.media.errors import MediaInvalid
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


def _first(streams: list[dict[str, Any]], kind: str) -> dict[str, Any] | None:
    # Cover art in mp4/flac shows up as a one-frame "video" stream; it is not the picture.
    for stream in streams:
        attached = stream.get("disposition", {}).get("attached_pic", 0)
        if stream.get("codec_type") == kind and not attached:
            return stream
    return None


def _float(value: Any, fallback: float) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return fallback


def _frame_count(path: Path, stream: dict[str, Any]) -> int:
    if str(stream.get("nb_read_frames", "")).isdigit():  # decoded: every frame counted
        return int(stream["nb_read_frames"])
    if str(stream.get("nb_frames", "")).isdigit() and int(stream["nb_frames"]) > 0:
        return int(stream["nb_frames"])
    # Containers without a frame index (mkv, webm): count the packets themselves.
    index = stream["index"]
    counted = run_ffprobe(
        path,
        [
            "-select_streams",
            str(index),
            "-count_packets",
            "-show_entries",
            "stream=nb_read_packets",
        ],
    )
    return int(counted["streams"][0]["nb_read_packets"])


def _video(path: Path, stream: dict[str, Any], container_s: float) -> VideoInfo:
    rate = stream.get("avg_frame_rate", "0/0")
    if rate in ("0/0", "0/1"):
        rate = stream.get("r_frame_rate", "0/1")
    fps = float(Fraction(rate)) if rate not in ("0/0", "0/1") else 0.0
    level = stream.get("level")
    return VideoInfo(
        frames=_frame_count(path, stream),
        fps=fps,
        width=int(stream["width"]),
        height=int(stream["height"]),
        pix_fmt=str(stream.get("pix_fmt", "")),
        codec=str(stream.get("codec_name", "")),
        profile=stream.get("profile"),
        level=int(level) if isinstance(level, int) and level > 0 else None,
        duration=_float(stream.get("duration"), container_s),
    )


def _audio(stream: dict[str, Any], container_s: float) -> AudioInfo:
    return AudioInfo(
        rate=int(stream["sample_rate"]),
        channels=int(stream["channels"]),
        codec=str(stream.get("codec_name", "")),
        duration=_float(stream.get("duration"), container_s),
    )


def probe(path: Path, *, decode: bool = False) -> MediaInfo:
    """Probe `path`: durations, streams, exact video frame count.

    `decode`: also decode every frame of every stream in the same pass (the frame count is
    then the decoded one) and raise MediaInvalid on any decode error.
    """
    if not path.is_file():
        raise MediaInvalid(f"{path} does not exist")
    counting = ["-count_frames"] if decode else []
    data = run_ffprobe(path, [*counting, "-show_format", "-show_streams"], clean=decode)
    streams: list[dict[str, Any]] = data.get("streams", [])
    container_s = _float(data.get("format", {}).get("duration"), 0.0)
    video = _first(streams, "video")
    audio = _first(streams, "audio")
    return MediaInfo(
        duration=container_s,
        video=_video(path, video, container_s) if video else None,
        audio=_audio(audio, container_s) if audio else None,
    )
