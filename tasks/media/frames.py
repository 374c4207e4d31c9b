"""Single frames: the exact carry-forward frame, colour drift, contact sheets."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageOps

from tasks.media.errors import MediaError, MediaInvalid
from tasks.media.run import atomic_output
from tasks.schema.outcomes import Drift

# Seek this far before the end: at least one GOP back is not needed, because a
# backward seek lands on the keyframe before the target and we decode forward to EOF.
_TAIL_SEEK_S = 1.0
_THUMB_WIDTH = 320
_LABEL_HEIGHT = 22


def _decode_tail(video: Path) -> np.ndarray:
    with av.open(str(video)) as container:
        if not container.streams.video:
            raise MediaInvalid(f"{video} has no video stream")
        stream = container.streams.video[0]
        last: av.VideoFrame | None = None
        if stream.duration is not None and stream.time_base is not None:
            end_s = float(stream.duration * stream.time_base)
            target = int(max(0.0, end_s - _TAIL_SEEK_S) / stream.time_base)
            container.seek(target, stream=stream, backward=True, any_frame=False)
            for frame in container.decode(stream):
                last = frame
        if last is None:
            # No index to seek by (or the seek found nothing): decode from the start.
            container.seek(0, stream=stream)
            for frame in container.decode(stream):
                last = frame
        if last is None:
            raise MediaInvalid(f"{video} has no decodable video frames")
        pixels: np.ndarray = last.to_ndarray(format="rgb24")
        return pixels


def _decode_first(video: Path) -> np.ndarray:
    with av.open(str(video)) as container:
        if not container.streams.video:
            raise MediaInvalid(f"{video} has no video stream")
        for frame in container.decode(container.streams.video[0]):
            pixels: np.ndarray = frame.to_ndarray(format="rgb24")
            return pixels
    raise MediaInvalid(f"{video} has no decodable video frames")


def _write_verified_png(pixels: np.ndarray, dest: Path) -> Path:
    with atomic_output(dest) as tmp:
        Image.fromarray(pixels, "RGB").save(tmp, format="PNG")
        with Image.open(tmp) as written:
            if not np.array_equal(np.asarray(written.convert("RGB")), pixels):
                raise MediaError(f"{dest}: the written PNG differs from the decoded frame")
    return dest


def _decoded(decode: Callable[[Path], np.ndarray], video: Path) -> np.ndarray:
    try:
        return decode(video)
    except av.FFmpegError as exc:
        raise MediaInvalid(f"cannot decode {video}: {exc}") from exc


def first_frame(video: Path) -> np.ndarray:
    """The first decoded frame of `video` (RGB pixels)."""
    return _decoded(_decode_first, video)


def extract_last_frame(video: Path, dest: Path) -> Path:
    """Write the exact last decoded frame of `video` to `dest` as PNG (atomic, verified)."""
    return _write_verified_png(_decoded(_decode_tail, video), dest)


def _luma(rgb: np.ndarray) -> np.ndarray:
    # BT.709 weights: the model renders SDR BT.709.
    return rgb @ np.array([0.2126, 0.7152, 0.0722])


def frame_drift(keyframe: Path, carried: Path) -> Drift:
    """Compare a carried frame with its chain's keyframe.

    channel_shift: mean R, G, B of carried minus keyframe (0..255 scale).
    contrast_ratio: luma std of carried over keyframe (1.0 = unchanged).
    score: mean absolute channel shift / 255 + |log2(contrast_ratio)|; 0 = no drift.
    """
    with Image.open(keyframe) as a_img, Image.open(carried) as b_img:
        a_rgb = a_img.convert("RGB")
        b_rgb = b_img.convert("RGB").resize(a_rgb.size)
        a = np.asarray(a_rgb, dtype=np.float64).reshape(-1, 3)
        b = np.asarray(b_rgb, dtype=np.float64).reshape(-1, 3)
    shift = b.mean(axis=0) - a.mean(axis=0)
    a_std = float(_luma(a).std())
    b_std = float(_luma(b).std())
    ratio = b_std / a_std if a_std > 0 else (1.0 if b_std == 0 else math.inf)
    contrast_term = abs(math.log2(ratio)) if 0 < ratio < math.inf else 1.0
    score = float(np.abs(shift).mean() / 255.0) + contrast_term
    return Drift(
        channel_shift=(float(shift[0]), float(shift[1]), float(shift[2])),
        contrast_ratio=ratio,
        score=score,
    )


def contact_sheet(frames: list[tuple[Path | np.ndarray, str]], dest: Path) -> Path:
    """Lay out labelled thumbnails of `frames` (image files, or RGB pixels) in a grid and
    write it to `dest` as PNG."""
    if not frames:
        raise MediaError("a contact sheet needs at least one frame")
    thumbs: list[Image.Image] = []
    for frame, _ in frames:
        rgb = _rgb(frame)
        # Inside a square cell, whatever the frame's shape: a 9:16 frame stays upright
        # and as tall as a 16:9 one is wide, not twice the height of the sheet's rows.
        scale = _THUMB_WIDTH / max(rgb.width, rgb.height)
        size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
        thumbs.append(ImageOps.fit(rgb, size))
    columns = math.ceil(math.sqrt(len(thumbs)))
    rows = math.ceil(len(thumbs) / columns)
    cell_h = max(t.height for t in thumbs) + _LABEL_HEIGHT
    sheet = Image.new("RGB", (columns * _THUMB_WIDTH, rows * cell_h), "black")
    draw = ImageDraw.Draw(sheet)
    for i, (thumb, (_, label)) in enumerate(zip(thumbs, frames, strict=True)):
        x, y = (i % columns) * _THUMB_WIDTH, (i // columns) * cell_h
        sheet.paste(thumb, (x + (_THUMB_WIDTH - thumb.width) // 2, y))
        draw.text((x + 4, y + cell_h - _LABEL_HEIGHT + 4), label, fill="white")
    with atomic_output(dest) as tmp:
        sheet.save(tmp, format="PNG")
    return dest


def _rgb(frame: Path | np.ndarray) -> Image.Image:
    if isinstance(frame, np.ndarray):
        return Image.fromarray(frame, "RGB")
    with Image.open(frame) as image:
        return image.convert("RGB")


def _shrink(pixels: np.ndarray, dest: Path, width: int) -> Path:
    rgb = _rgb(pixels)
    if rgb.width > width:
        # Never enlarge: a thumbnail of a small animatic stays pixel-exact.
        rgb = rgb.resize(
            (width, max(1, round(rgb.height * width / rgb.width))), Image.Resampling.LANCZOS
        )
    with atomic_output(dest) as tmp:
        rgb.save(tmp, format="PNG")
    return dest


def clip_thumbnails(video: Path, first: Path, last: Path, *, width: int = 320) -> tuple[Path, Path]:
    """Write the first and the exact last frame of `video` as PNGs at most `width` wide."""
    first.parent.mkdir(parents=True, exist_ok=True)
    _shrink(first_frame(video), first, width)
    _shrink(_decoded(_decode_tail, video), last, width)
    return first, last
