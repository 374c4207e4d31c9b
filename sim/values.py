"""What flows between the nodes the simulator computes for real (the model-free ones).

Pictures, sound and latents are held as arrays, so a graph that loads an upload, scales
it and saves it writes that upload, scaled. Values the simulator does not compute (a
loaded model, a conditioning) travel as a ``StandIn`` naming where they came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Images:
    """A batch of RGB pictures, ``uint8`` shaped ``(batch, height, width, 3)``."""

    pixels: np.ndarray

    @property
    def megapixels(self) -> float:
        """Pixels in the whole batch, in millions."""
        batch, height, width = self.pixels.shape[:3]
        return batch * height * width / 1e6

    @classmethod
    def filled(cls, width: int, height: int, batch: int, rgb: tuple[int, int, int]) -> Images:
        """A batch of one flat colour."""
        pixels = np.empty((batch, height, width, 3), dtype=np.uint8)
        pixels[...] = rgb
        return cls(pixels)


@dataclass(frozen=True)
class Masks:
    """A batch of masks, ``float32`` in 0..1 shaped ``(batch, height, width)``."""

    values: np.ndarray

    @property
    def megapixels(self) -> float:
        """Mask pixels in the whole batch, in millions."""
        return self.values.size / 1e6


@dataclass(frozen=True)
class Audio:
    """Sound as ``float32`` samples shaped ``(channels, samples)``."""

    samples: np.ndarray
    rate: int

    @property
    def megasamples(self) -> float:
        """Samples over all channels, in millions."""
        return self.samples.size / 1e6

    @property
    def seconds(self) -> float:
        """Duration."""
        return self.samples.shape[1] / self.rate if self.rate else 0.0


@dataclass(frozen=True)
class Latent:
    """An (all-zero) latent: only its shape matters to the model-free nodes."""

    shape: tuple[int, ...]


@dataclass(frozen=True)
class Video:
    """Frames with an optional soundtrack, at a frame rate."""

    images: Images
    audio: Audio | None
    fps: float


@dataclass(frozen=True)
class StandIn:
    """A value of a type the simulator does not compute (a model, a conditioning...)."""

    kind: str
    node: str

    def __str__(self) -> str:
        return f"<{self.kind} from node {self.node}>"


def megapixels(value: Any) -> float:
    """Picture work in a node result (0 for values without pictures)."""
    if isinstance(value, Images | Masks):
        return value.megapixels
    if isinstance(value, Video):
        return value.images.megapixels
    return 0.0


def megasamples(value: Any) -> float:
    """Sound work in a node result (0 for values without sound)."""
    if isinstance(value, Audio):
        return value.megasamples
    if isinstance(value, Video) and value.audio is not None:
        return value.audio.megasamples
    return 0.0


def kind_of(value: Any) -> str | None:
    """The ComfyUI type name a value stands for, as ``/object_info`` spells it."""
    kinds = {Images: "IMAGE", Masks: "MASK", Audio: "AUDIO", Latent: "LATENT", Video: "VIDEO"}
    for cls, name in kinds.items():
        if isinstance(value, cls):
            return name
    if isinstance(value, StandIn):
        return value.kind
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, int):
        return "INT"
    if isinstance(value, float):
        return "FLOAT"
    if isinstance(value, str):
        return "STRING"
    return None


def describe(value: Any) -> str:
    """The text ``PreviewAny`` shows for a value."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return str(value)
    if isinstance(value, Images):
        batch, height, width = value.pixels.shape[:3]
        return f"IMAGE batch of {batch}, {width}x{height}"
    if isinstance(value, Masks):
        batch, height, width = value.values.shape
        return f"MASK batch of {batch}, {width}x{height}"
    if isinstance(value, Audio):
        return f"AUDIO {value.seconds:.3f} s, {value.samples.shape[0]} ch, {value.rate} Hz"
    if isinstance(value, Latent):
        return f"LATENT {list(value.shape)}"
    if isinstance(value, Video):
        return f"VIDEO {value.images.pixels.shape[0]} frames at {value.fps:g} fps"
    return str(value)
