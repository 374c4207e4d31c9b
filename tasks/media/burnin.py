"""Subtitles burnt into the picture, inside the title-safe area of any frame shape.

Title-safe is the centre 90% of the frame's width and height (a 5% margin each side), the
area every display shows and every platform's interface leaves clear. The SRT is drawn by
libass through ffmpeg's `subtitles` filter with its script resolution set to the frame's own
pixels (PlayResX/PlayResY), so every size and margin below is in real pixels:
- font size: 5% of the frame height, capped so a full 42-character row fits the title-safe
  width (at about 0.5 em a character), so 9:16 and 1:1 frames keep the SRT's own rows;
- left/right/bottom margins: the 5% title-safe margin plus the outline, so the outline too
  stays inside; libass wraps any row still too wide within those margins.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from pathlib import Path

import ffmpeg
from pydantic import BaseModel, ConfigDict

from tasks.media.encode import FASTSTART, VIDEO_DISTRIBUTION
from tasks.media.errors import MediaError
from tasks.media.probe import probe
from tasks.media.run import atomic_output, run_ffmpeg

TITLE_SAFE = 0.90
_FONT_OF_HEIGHT = 0.05
_ROW_CHARS = 42
_EM_PER_CHAR = 0.5
_OUTLINE_OF_FONT = 0.08
SUBTITLE_FONT = "DejaVu Sans"


class Box(BaseModel):
    """A pixel rectangle: left, top, right and bottom edges (right/bottom exclusive)."""

    model_config = ConfigDict(frozen=True)

    left: int
    top: int
    right: int
    bottom: int


class SubtitleLayout(BaseModel):
    """Where and how large burnt subtitles are drawn on one frame size (pixels)."""

    model_config = ConfigDict(frozen=True)

    width: int
    height: int
    font_size: int
    outline: int
    margin_x: int
    margin_bottom: int


def title_safe_box(width: int, height: int) -> Box:
    """The centre 90% of a `width` x `height` frame."""
    margin_x = math.ceil(width * (1 - TITLE_SAFE) / 2)
    margin_y = math.ceil(height * (1 - TITLE_SAFE) / 2)
    return Box(left=margin_x, top=margin_y, right=width - margin_x, bottom=height - margin_y)


def subtitle_layout(width: int, height: int) -> SubtitleLayout:
    """Font size, outline and margins that keep subtitles title-safe on this frame size."""
    safe = title_safe_box(width, height)
    by_height = height * _FONT_OF_HEIGHT
    by_width = (safe.right - safe.left) / (_ROW_CHARS * _EM_PER_CHAR)
    font_size = max(8, math.floor(min(by_height, by_width)))
    outline = max(1, round(font_size * _OUTLINE_OF_FONT))
    return SubtitleLayout(
        width=width,
        height=height,
        font_size=font_size,
        outline=outline,
        margin_x=safe.left + outline,
        margin_bottom=(height - safe.bottom) + outline,
    )


def force_style(layout: SubtitleLayout) -> str:
    """libass style overrides for `layout`: white text, black outline, bottom centre."""
    fields = {
        "PlayResX": layout.width,
        "PlayResY": layout.height,
        "Fontname": SUBTITLE_FONT,
        "Fontsize": layout.font_size,
        "PrimaryColour": "&H00FFFFFF",
        "OutlineColour": "&H00000000",
        "BorderStyle": 1,
        "Outline": layout.outline,
        "Shadow": 0,
        "Alignment": 2,
        "MarginL": layout.margin_x,
        "MarginR": layout.margin_x,
        "MarginV": layout.margin_bottom,
    }
    return ",".join(f"{key}={value}" for key, value in fields.items())


def burn_subtitles_args(src: Path, subtitles: Path, out: Path, layout: SubtitleLayout) -> list[str]:
    """ffmpeg arguments drawing `subtitles` (SRT) onto `src`'s picture; audio copied."""
    source = ffmpeg.input(str(src))
    picture = source.video.filter(
        "subtitles", filename=str(subtitles), force_style=force_style(layout)
    )
    graph = ffmpeg.output(
        picture, source.audio, str(out), **VIDEO_DISTRIBUTION, acodec="copy", **FASTSTART
    )
    args: list[str] = graph.get_args()
    return args


def burn_subtitles(src: Path, subtitles: Path, dest: Path) -> Path:
    """`src` with `subtitles` burnt into the picture, title-safe for its frame size."""
    video = probe(src).video
    if video is None:
        raise MediaError(f"{src} has no picture to burn subtitles into")
    if not subtitles.is_file():
        raise MediaError(f"subtitle file {subtitles} does not exist; write the SRT first")
    layout = subtitle_layout(video.width, video.height)
    # The filter reads its file name through two levels of filtergraph escaping; a copy
    # under a plain temporary name keeps any user folder name out of it.
    with tempfile.TemporaryDirectory(prefix="reelflow-subs-") as scratch:
        plain = Path(scratch) / "subtitles.srt"
        shutil.copyfile(subtitles, plain)
        with atomic_output(dest) as tmp:
            run_ffmpeg(burn_subtitles_args(src, plain, tmp, layout))
    return dest


def subtitled_path(film: Path) -> Path:
    """`<stem>_subtitled.mp4` beside `film`: the copy with the subtitles burnt in."""
    return film.with_name(f"{film.stem}_subtitled.mp4")
