"""Checks a distribution file must pass beyond playing: the format players and browsers expect."""

from __future__ import annotations

import struct
from pathlib import Path

from tasks.media.errors import MediaInvalid
from tasks.media.probe import MediaInfo

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
