"""Keyframes that show who is in them: generated portraits and edits that carry reference pictures.

* A **portrait** (a text-to-image prompt that opens with ``portrait``, see
  ``sim.graph.ImageSpec``) is a face drawn from the prompt: skin, hair style and colour,
  eyes, eyebrows, mouth, clothes and glasses are picked by a hash of the prompt, so two
  characters' portraits differ and the same prompt draws the same face; the seed only
  shades the background. The prompt's first words are written small along the bottom.
* A **reference keyframe** (an edit prompt with reference pictures) is the usual seeded
  keyframe with each reference picture drawn into its lower half, side by side in the
  order given, scaled to fit with its proportions kept and framed in white, so the same
  portrait is seen in every keyframe that references it.
"""

from __future__ import annotations

import hashlib
import random
import textwrap
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
SKIN = ((255, 224, 196), (241, 194, 125), (224, 172, 105), (198, 134, 66), (141, 85, 36),
        (92, 58, 30))  # fmt: skip
HAIR = ((20, 20, 20), (85, 50, 20), (160, 100, 40), (230, 200, 120), (180, 60, 30),
        (200, 200, 200), (60, 60, 160), (150, 40, 120))  # fmt: skip
EYES = ((60, 110, 200), (70, 140, 70), (100, 60, 30), (40, 40, 40), (120, 120, 130))
HAIR_STYLES = ("short", "long", "bun", "bald", "spiky")
MARGIN = 0.04  # of the frame's height, around each reference picture


def _rgb(rng: random.Random, low: int = 30, high: int = 230) -> tuple[int, int, int]:
    return rng.randint(low, high), rng.randint(low, high), rng.randint(low, high)


def _caption(draw: ImageDraw.ImageDraw, text: str, width: int, height: int) -> None:
    size = max(9, height // 28)
    font = ImageFont.truetype(FONT, size)
    lines = textwrap.wrap(text, max(12, int(width / (size * 0.58))))[:2]
    if not lines:
        return
    band = len(lines) * (size + 4) + 8
    draw.rectangle((0, height - band, width, height), fill=(0, 0, 0))
    for index, line in enumerate(lines):
        draw.text((8, height - band + 4 + index * (size + 4)), line, fill="white", font=font)


@dataclass(frozen=True)
class _Face:
    """Where a portrait's head sits and what it looks like."""

    cx: float
    cy: float
    width: float
    height: float
    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    eyes: tuple[int, int, int]
    style: str

    @property
    def box(self) -> tuple[float, float, float, float]:
        """The head's bounding box."""
        half_w, half_h = self.width / 2, self.height / 2
        return self.cx - half_w, self.cy - half_h, self.cx + half_w, self.cy + half_h


def _body(draw: ImageDraw.ImageDraw, face: _Face, unit: float, clothes: tuple[int, ...]) -> None:
    """Shoulders, neck and the hair that falls behind the head."""
    cx, cy, w, h = face.cx, face.cy, face.width, face.height
    draw.ellipse((cx - unit * 0.42, cy + h * 0.75, cx + unit * 0.42, cy + h * 2.4), fill=clothes)
    draw.rectangle((cx - w * 0.22, cy + h * 0.35, cx + w * 0.22, cy + h * 0.9), fill=face.skin)
    if face.style in ("long", "bun"):
        bottom = cy + h * (0.75 if face.style == "long" else 0.1)
        draw.rounded_rectangle(
            (cx - w * 0.62, cy - h * 0.55, cx + w * 0.62, bottom),
            radius=int(w * 0.4),
            fill=face.hair,
        )
    if face.style == "bun":
        draw.ellipse((cx - w * 0.25, cy - h * 0.95, cx + w * 0.25, cy - h * 0.5), fill=face.hair)


def _head(draw: ImageDraw.ImageDraw, face: _Face) -> None:
    """The head and the hair on top of it."""
    left, top, right, bottom = face.box
    draw.ellipse(face.box, fill=face.skin)
    if face.style in ("short", "long", "bun"):
        cap = (left, top - face.height * 0.05, right, bottom - face.height * 0.35)
        draw.chord(cap, 180, 360, fill=face.hair)
    elif face.style == "spiky":
        for index in range(7):
            x = left + face.width * (0.1 + 0.8 * index / 6)
            tip = face.width * 0.09
            base_y, tip_y = face.cy - face.height * 0.3, face.cy - face.height * 0.68
            draw.polygon([(x - tip, base_y), (x, tip_y), (x + tip, base_y)], fill=face.hair)


def _features(draw: ImageDraw.ImageDraw, face: _Face, rng: random.Random) -> None:
    """Eyes, eyebrows, nose, mouth and perhaps glasses."""
    cx, cy, w, h = face.cx, face.cy, face.width, face.height
    spread, eye_y, r = w * rng.uniform(0.17, 0.24), cy - h * 0.05, w * 0.075
    glasses = rng.random() < 0.35
    for side in (-1, 1):
        ex = cx + side * spread
        draw.ellipse((ex - r * 1.5, eye_y - r, ex + r * 1.5, eye_y + r), fill="white")
        draw.ellipse((ex - r * 0.7, eye_y - r * 0.7, ex + r * 0.7, eye_y + r * 0.7), fill=face.eyes)
        tilt = rng.uniform(-0.5, 0.5) * r * side
        brow = (ex - r * 1.6, eye_y - r * 2 + tilt, ex + r * 1.6, eye_y - r * 2 - tilt)
        draw.line(brow, fill=face.hair, width=max(2, int(r * 0.5)))
        if glasses:
            rim = (ex - r * 2, eye_y - r * 1.6, ex + r * 2, eye_y + r * 1.6)
            draw.ellipse(rim, outline=(30, 30, 30), width=max(2, int(r * 0.3)))
    nose = (cx, eye_y + r, cx - w * 0.05, cy + h * 0.15, cx, cy + h * 0.17)
    shadow = tuple(int(c * 0.75) for c in face.skin)
    draw.line(nose, fill=shadow, width=max(1, int(r * 0.35)))
    mouth_w, mouth_y = w * rng.uniform(0.18, 0.3), cy + h * 0.28
    smile = rng.choice((0, 20, 40))
    mouth = (cx - mouth_w, mouth_y - h * 0.08, cx + mouth_w, mouth_y + h * 0.08)
    draw.arc(mouth, smile, 180 - smile, fill=(150, 40, 50), width=max(2, int(r * 0.45)))


def portrait(prompt: str, seed: int, width: int, height: int) -> Image.Image:
    """A face drawn from ``prompt`` on a background shaded by ``seed``."""
    rng = random.Random(hashlib.sha256(prompt.encode()).digest())
    base = _rgb(random.Random(seed * 7919 + 17), 60, 200)
    picture = Image.new("RGB", (width, height), base)
    draw = ImageDraw.Draw(picture)
    for row in range(height):  # a soft vertical gradient behind the face
        fade = 0.6 + 0.4 * row / max(height - 1, 1)
        draw.line((0, row, width, row), fill=tuple(int(c * fade) for c in base))
    unit = min(width, height)
    head_w = unit * rng.uniform(0.26, 0.34)
    head_h = head_w * rng.uniform(1.15, 1.4)
    colours = rng.choice(SKIN), rng.choice(HAIR), rng.choice(EYES)
    face = _Face(width / 2, height * 0.45, head_w, head_h, *colours, rng.choice(HAIR_STYLES))
    _body(draw, face, unit, _rgb(rng))
    _head(draw, face)
    _features(draw, face, rng)
    _caption(draw, prompt, width, height)
    return picture


def carry_references(keyframe: Path, references: list[Path]) -> None:
    """Draw each reference picture into the lower half of ``keyframe`` (in place)."""
    with Image.open(keyframe) as opened:
        frame = opened.convert("RGB")
    width, height = frame.size
    margin = max(2, int(height * MARGIN))
    cell_w = max(1, (width - margin) // len(references) - margin)
    cell_h = max(1, height // 2 - 2 * margin)
    draw = ImageDraw.Draw(frame)
    for index, path in enumerate(references):
        with Image.open(path) as opened:
            picture = opened.convert("RGB")
        scale = min(cell_w / picture.width, cell_h / picture.height)
        size = max(1, int(picture.width * scale)), max(1, int(picture.height * scale))
        left = margin + index * (cell_w + margin) + (cell_w - size[0]) // 2
        top = height // 2 + margin + (cell_h - size[1]) // 2
        border = max(1, margin // 3)
        draw.rectangle((left - border, top - border, left + size[0] + border - 1,
                        top + size[1] + border - 1), fill="white")  # fmt: skip
        frame.paste(picture.resize(size, Image.Resampling.LANCZOS), (left, top))
    frame.save(keyframe, "PNG")
