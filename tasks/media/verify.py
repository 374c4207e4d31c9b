"""Checks before a file is called done: it decodes, and a film is what players expect."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

from tasks.media.errors import MediaError, MediaInvalid
from tasks.media.probe import DURATION_TOLERANCE_S, FILM_AUDIO_RATE, MediaInfo, probe
from tasks.media.run import FFMPEG

DISTRIBUTION_PIX_FMT = "yuv420p"
DISTRIBUTION_PROFILE = "High"
DISTRIBUTION_LEVEL = 40
_BOX_HEADER = struct.Struct(">I4s")


def top_level_boxes(path: Path) -> list[str]:
    """The types of an MP4 file's top-level boxes, in file order (`ftyp`, `moov`, `mdat`...)."""
    boxes: list[str] = []
    size_on_disk = path.stat().st_size
    with path.open("rb") as handle:
        position = 0
        while position + _BOX_HEADER.size <= size_on_disk:
            handle.seek(position)
            size, kind = _BOX_HEADER.unpack(handle.read(_BOX_HEADER.size))
            if size == 1:  # a 64-bit size follows the type
                (size,) = struct.unpack(">Q", handle.read(8))
            elif size == 0:  # the box runs to the end of the file
                size = size_on_disk - position
            if size < _BOX_HEADER.size:
                raise MediaInvalid(f"{path} has a malformed MP4 box at byte {position}")
            boxes.append(kind.decode("latin-1"))
            position += size
    return boxes


def is_faststart(path: Path) -> bool:
    """True when the index (`moov`) precedes the media data, so playback starts while loading."""
    boxes = top_level_boxes(path)
    return "moov" in boxes and "mdat" in boxes and boxes.index("moov") < boxes.index("mdat")


def check_distribution(path: Path, info: MediaInfo) -> None:
    """Refuse a film players may reject: H.264 High@4.0 yuv420p with the index up front."""
    video = info.video
    if video is None:
        raise MediaInvalid(f"{path} has no video stream")
    problems = []
    if video.codec != "h264":
        problems.append(f"codec {video.codec}, not h264")
    if video.profile != DISTRIBUTION_PROFILE:
        problems.append(f"profile {video.profile}, not {DISTRIBUTION_PROFILE}")
    if video.level != DISTRIBUTION_LEVEL:
        problems.append(f"level {video.level}, not {DISTRIBUTION_LEVEL / 10:.1f}")
    if video.pix_fmt != DISTRIBUTION_PIX_FMT:
        problems.append(f"pixel format {video.pix_fmt}, not {DISTRIBUTION_PIX_FMT}")
    if not is_faststart(path):
        problems.append("the moov index is not before the media data (no +faststart)")
    if problems:
        raise MediaInvalid(f"{path} is not a distribution file: {'; '.join(problems)}")


def verify_decodes(path: Path) -> None:
    """Decode every stream of `path` fully; raise MediaInvalid on any decode error."""
    command = [
        FFMPEG,
        "-nostdin",
        "-hide_banner",
        "-v",
        "error",
        "-i",
        str(path),
        "-f",
        "null",
        "-",
    ]
    done = subprocess.run(command, capture_output=True, check=False)
    errors = done.stderr.decode("utf-8", "replace").strip()
    if done.returncode != 0 or errors:
        first_lines = "\n".join(errors.splitlines()[:8])
        raise MediaInvalid(
            f"{path} does not decode cleanly (truncated or corrupt?):\n{first_lines}"
        )


def verify_film(
    path: Path,
    *,
    expected_duration_s: float | None,
    tolerance_s: float = DURATION_TOLERANCE_S,
) -> MediaInfo:
    """Check a finished film: a clean decode, both streams, 48 kHz audio, matching durations."""
    try:
        info = probe(path, decode=True)
    except MediaInvalid:
        raise
    except MediaError as exc:
        raise MediaInvalid(f"{path} is not a readable film: {exc}") from exc
    if info.video is None:
        raise MediaInvalid(f"{path} has no video stream")
    if info.audio is None:
        raise MediaInvalid(f"{path} has no audio stream")
    if info.audio.rate != FILM_AUDIO_RATE:
        raise MediaInvalid(
            f"{path} audio runs at {info.audio.rate} Hz; the film must be {FILM_AUDIO_RATE} Hz"
        )
    gap = abs(info.audio.duration - info.video.duration)
    if gap > tolerance_s:
        raise MediaInvalid(
            f"{path} audio lasts {info.audio.duration:.3f} s but video {info.video.duration:.3f} s"
            f" ({gap:.3f} s apart; at most {tolerance_s} s allowed)"
        )
    # The picture is what the plan timed; the audio was checked against it above.
    if (
        expected_duration_s is not None
        and abs(info.video.duration - expected_duration_s) > tolerance_s
    ):
        raise MediaInvalid(
            f"{path} lasts {info.video.duration:.3f} s;"
            f" the plan expects {expected_duration_s:.3f} s"
        )
    return info
