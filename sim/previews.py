"""``/view``'s picture conversions: ``channel`` (rgb, a, rgba) and ``preview`` (format;quality).

The browser asks for a small jpeg/webp preview of a large output, or for one channel of
a picture (the alpha channel as a mask); files that are not pictures are sent as stored.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

PREVIEW_FORMATS = ("webp", "jpeg")
DEFAULT_QUALITY = 90


@dataclass(frozen=True)
class Converted:
    """A picture re-encoded for ``/view``."""

    body: bytes
    content_type: str
    filename: str


def preview(path: Path, spec: str, channel: str) -> Converted:
    """``preview=webp;75``: re-encode as webp or jpeg (webp when alpha is asked for)."""
    parts = spec.split(";")
    kind = parts[0]
    if kind not in PREVIEW_FORMATS or "a" in channel:
        kind = "webp"
    quality = int(parts[-1]) if parts[-1].isdigit() else DEFAULT_QUALITY
    with Image.open(path) as picture:
        image = picture.convert("RGB") if kind == "jpeg" or channel == "rgb" else picture.copy()
    buffer = io.BytesIO()
    image.save(buffer, format=kind, quality=quality)
    return Converted(buffer.getvalue(), f"image/{kind}", path.name.replace("png", kind))


def one_channel(path: Path, channel: str) -> Converted | None:
    """``channel=rgb`` drops alpha; ``channel=a`` keeps only alpha (opaque when absent);
    anything else (``rgba``) means the file as stored: None."""
    if channel not in ("rgb", "a"):
        return None
    with Image.open(path) as picture:
        if channel == "rgb":
            image = picture.convert("RGB")
        else:
            alpha = (
                picture.getchannel("A")
                if picture.mode == "RGBA"
                else Image.new("L", picture.size, 255)
            )
            image = Image.new("RGBA", picture.size)
            image.putalpha(alpha)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return Converted(buffer.getvalue(), "image/png", path.name)
