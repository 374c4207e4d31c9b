"""Small pictures for the review page: first and last frame thumbnails of a clip."""

from __future__ import annotations

import tempfile
from pathlib import Path

from PIL import Image

from tasks.media.frames import extract_first_frame, extract_last_frame
from tasks.media.run import atomic_output


def _shrink(frame: Path, dest: Path, width: int) -> Path:
    with Image.open(frame) as image:
        rgb = image.convert("RGB")
    if rgb.width > width:
        # Never enlarge: a thumbnail of a small animatic stays pixel-exact.
        rgb = rgb.resize(
            (width, max(1, round(rgb.height * width / rgb.width))), Image.Resampling.LANCZOS
        )
    with atomic_output(dest) as tmp:
        rgb.save(tmp, format="PNG", optimize=True)
    return dest


def clip_thumbnails(video: Path, first: Path, last: Path, *, width: int = 320) -> tuple[Path, Path]:
    """Write the first and the exact last frame of `video` as PNGs at most `width` wide."""
    first.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="thumbs-", dir=first.parent) as work:
        _shrink(extract_first_frame(video, Path(work) / "first.png"), first, width)
        _shrink(extract_last_frame(video, Path(work) / "last.png"), last, width)
    return first, last
