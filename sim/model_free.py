"""The model-free nodes the simulator computes for real, and a pass-through for the rest.

A node without a handler here hands each of its outputs the first input value of the same
type (an image filter returns its image unchanged), or a ``StandIn`` when it has none: the
graph still runs and its output nodes still write files, as on a server without models.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from sim.folders import Folders
from sim.media_io import load_audio, load_picture, load_video
from sim.values import Audio, Images, Latent, StandIn, Video, kind_of

Inputs = Mapping[str, Any]


@dataclass(frozen=True)
class Context:
    """Where a node runs: its id, the server's folders, its declared output types."""

    node: str
    folders: Folders
    output_types: tuple[str, ...]

    def file(self, name: str) -> Any:
        """The file a loader value names (annotations allowed); FileNotFoundError if none."""
        path = self.folders.resolve(str(name))
        if path is None:
            raise FileNotFoundError(f"[Errno 2] No such file or directory: '{name}'")
        return path


_RESAMPLE = {
    "nearest-exact": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "area": Image.Resampling.BOX,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}


def _rgb(color: int) -> tuple[int, int, int]:
    return (color >> 16) & 255, (color >> 8) & 255, color & 255


def _resize(images: Images, width: int, height: int, method: str, crop: str) -> Images:
    _, old_h, old_w = images.pixels.shape[:3]
    if width == 0 and height == 0:
        return images
    width = width or max(1, round(old_w * height / old_h))
    height = height or max(1, round(old_h * width / old_w))
    box = (0, 0, old_w, old_h)
    if crop == "center":
        # Cut the source to the target's aspect first, so nothing is stretched.
        if old_w * height > width * old_h:
            keep = round(old_h * width / height)
            box = ((old_w - keep) // 2, 0, (old_w - keep) // 2 + keep, old_h)
        else:
            keep = round(old_w * height / width)
            box = (0, (old_h - keep) // 2, old_w, (old_h - keep) // 2 + keep)
    resample = _RESAMPLE.get(method, Image.Resampling.BILINEAR)
    frames = [
        np.asarray(Image.fromarray(frame).resize((width, height), resample, box=box))
        for frame in images.pixels
    ]
    return Images(np.stack(frames))


def _batch(parts: list[Images]) -> Images:
    _, height, width = parts[0].pixels.shape[:3]
    same = [_resize(p, width, height, "bilinear", "disabled") for p in parts]
    return Images(np.concatenate([p.pixels for p in same]))


def _empty_image(i: Inputs, _: Context) -> tuple[Any, ...]:
    size = (int(i["width"]), int(i["height"]), int(i["batch_size"]))
    return (Images.filled(*size, _rgb(int(i["color"]))),)


def _load_image(i: Inputs, c: Context) -> tuple[Any, ...]:
    return load_picture(c.file(i["image"]))


def _scale(i: Inputs, _: Context) -> tuple[Any, ...]:
    images = i["image"]
    return (_resize(images, int(i["width"]), int(i["height"]), i["upscale_method"], i["crop"]),)


def _scale_by(i: Inputs, _: Context) -> tuple[Any, ...]:
    images: Images = i["image"]
    _, height, width = images.pixels.shape[:3]
    factor = float(i["scale_by"])
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return (_resize(images, *size, i["upscale_method"], "disabled"),)


def _invert(i: Inputs, _: Context) -> tuple[Any, ...]:
    return (Images(255 - i["image"].pixels),)


def _batch_images(i: Inputs, _: Context) -> tuple[Any, ...]:
    grown = [v for k, v in i.items() if k.startswith("images.") and isinstance(v, Images)]
    return (_batch(grown),)


def _empty_audio(i: Inputs, _: Context) -> tuple[Any, ...]:
    rate = int(i["sample_rate"])
    count = round(float(i["duration"]) * rate)
    return (Audio(np.zeros((int(i["channels"]), count), dtype=np.float32), rate),)


def _components(i: Inputs, _: Context) -> tuple[Any, ...]:
    video: Video = i["video"]
    silence = Audio(np.zeros((1, 0), dtype=np.float32), 44100)
    return video.images, video.audio or silence, video.fps


def _create_video(i: Inputs, _: Context) -> tuple[Any, ...]:
    audio = i.get("audio") if isinstance(i.get("audio"), Audio) else None
    return (Video(i["images"], audio, float(i["fps"])),)


def _latent(channels: int, down: int) -> Callable[[Inputs, Context], tuple[Any, ...]]:
    def empty(i: Inputs, _: Context) -> tuple[Any, ...]:
        height, width = int(i["height"]) // down, int(i["width"]) // down
        return (Latent((int(i["batch_size"]), channels, height, width)),)

    return empty


def _ltxv_latent(i: Inputs, _: Context) -> tuple[Any, ...]:
    frames = (int(i["length"]) - 1) // 8 + 1
    shape = (int(i["batch_size"]), 128, frames, int(i["height"]) // 32, int(i["width"]) // 32)
    return (Latent(shape),)


def _ace_latent(i: Inputs, _: Context) -> tuple[Any, ...]:
    # ACE-Step 1.5 latents run at 25 frames a second over 64 channels.
    return (Latent((int(i["batch_size"]), 64, math.ceil(float(i["seconds"]) * 25))),)


def _switch(i: Inputs, _: Context) -> tuple[Any, ...]:
    return (i.get("on_true") if i.get("switch") else i.get("on_false"),)


def _primitive(i: Inputs, _: Context) -> tuple[Any, ...]:
    return (i["value"],)


HANDLERS: dict[str, Callable[[Inputs, Context], tuple[Any, ...]]] = {
    "EmptyImage": _empty_image,
    "LoadImage": _load_image,
    "LoadImageOutput": _load_image,
    "ImageScale": _scale,
    "ImageScaleBy": _scale_by,
    "ImageInvert": _invert,
    "ImageBatch": lambda i, _: (_batch([i["image1"], i["image2"]]),),
    "BatchImagesNode": _batch_images,
    "RepeatImageBatch": lambda i, _: (Images(np.tile(i["image"].pixels, (i["amount"], 1, 1, 1))),),
    "EmptyAudio": _empty_audio,
    "LoadAudio": lambda i, c: (load_audio(c.file(i["audio"])),),
    "LoadVideo": lambda i, c: (load_video(c.file(i["file"])),),
    "GetVideoComponents": _components,
    "CreateVideo": _create_video,
    "EmptyLatentImage": _latent(4, 8),
    "EmptySD3LatentImage": _latent(16, 8),
    "EmptyLTXVLatentVideo": _ltxv_latent,
    "EmptyAceStep1.5LatentAudio": _ace_latent,
    "ComfySwitchNode": _switch,
    "PrimitiveInt": _primitive,
    "PrimitiveFloat": _primitive,
    "PrimitiveString": _primitive,
    "PrimitiveStringMultiline": _primitive,
    "PrimitiveBoolean": _primitive,
}


def _accepts(declared: str, value: Any) -> bool:
    kind = kind_of(value)
    return kind is not None and kind in {t.strip() for t in declared.split(",")}


def pass_through(inputs: Inputs, context: Context) -> tuple[Any, ...]:
    """Each output takes the first input value of its type, else a stand-in."""
    values = list(inputs.values())
    results: list[Any] = []
    for declared in context.output_types:
        found = next((v for v in values if _accepts(declared, v)), None)
        if found is None and declared == "COMFY_MATCHTYPE_V3":
            found = next((v for v in values if kind_of(v) is not None), None)
        results.append(found if found is not None else StandIn(declared, context.node))
    return tuple(results)


def evaluate(class_type: str, inputs: Inputs, context: Context) -> tuple[Any, ...]:
    """The outputs of one node, given its resolved inputs."""
    handler = HANDLERS.get(class_type)
    return handler(inputs, context) if handler else pass_through(inputs, context)
