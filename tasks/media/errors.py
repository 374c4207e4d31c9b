"""Errors raised by reelflow's media operations (ffmpeg, ffprobe, PyAV, Pillow)."""

from __future__ import annotations

from pathlib import Path

from tasks.errors import ReelflowError


class MediaError(ReelflowError):
    """A media operation failed; the message carries ffmpeg's own last words."""


class MediaInvalid(MediaError):
    """A media file exists but is not what the film needs (streams, rate, duration, decode)."""


class DiskFull(MediaError):
    """The disk holding an output folder ran out of space."""

    def __init__(self, folder: Path, detail: str = "") -> None:
        self.folder = folder
        message = f"no space left on the disk holding {folder}; free space there and re-run"
        super().__init__(f"{message} ({detail})" if detail else message)
