"""Output nodes fed by model-free values: the files they write and what history lists.

File names follow ComfyUI: ``prefix_00001_.png`` for pictures, animations, video and
latents, ``prefix_00001.flac`` for sound, the counter one past the highest already in the
folder; previews go to ``temp`` under ``ComfyUI_temp_<5 letters>``.
"""

from __future__ import annotations

import json
import random
import string
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sim.folders import Folders
from sim.media_io import write_animated, write_audio, write_png, write_video
from sim.render import Rendered, next_counter, split_prefix
from sim.values import Audio, Images, Latent, Video, describe

# A picture or sound the simulator cannot compute (a decoded latent) is written as this.
_PLACEHOLDER_SIDE = 64


@dataclass(frozen=True)
class Target:
    """Where one output node writes: its folder, file stem, counter and ``type``."""

    folder: Path
    subfolder: str
    stem: str
    counter: int
    kind: str

    def item(self, name: str) -> dict[str, str]:
        return {"filename": name, "subfolder": self.subfolder, "type": self.kind}


def target(folders: Folders, inputs: Mapping[str, Any], temp: bool) -> Target:
    """The file naming for one output node run."""
    prefix = str(inputs.get("filename_prefix", "ComfyUI"))
    if temp:
        prefix = "ComfyUI_temp_" + "".join(random.choices(string.ascii_lowercase, k=5))
    subfolder, stem = split_prefix(prefix)
    folder = (folders.temp if temp else folders.output) / subfolder
    folder.mkdir(parents=True, exist_ok=True)
    kind = "temp" if temp else "output"
    return Target(folder, subfolder, stem, next_counter(folder, stem), kind)


def as_images(value: Any) -> Images:
    """Pictures to save; a stand-in becomes one grey frame."""
    if isinstance(value, Images):
        return value
    if isinstance(value, Video):
        return value.images
    return Images.filled(_PLACEHOLDER_SIDE, _PLACEHOLDER_SIDE, 1, (128, 128, 128))


def as_audio(value: Any) -> Audio:
    """Sound to save; a stand-in becomes a second of stereo silence."""
    if isinstance(value, Audio) and value.samples.shape[1] > 0:
        return value
    if isinstance(value, Video) and value.audio is not None:
        return value.audio
    return Audio(np.zeros((2, 44100), dtype=np.float32), 44100)


def _pictures(t: Target, inputs: Mapping[str, Any], out: Rendered) -> dict[str, Any]:
    items = []
    for index, frame in enumerate(as_images(inputs["images"]).pixels):
        name = f"{t.stem}_{t.counter + index:05}_.png"
        write_png(frame, out.stage(t.folder / name))
        items.append(t.item(name))
    return {"images": items}


def _animation(suffix: str) -> Callable[[Target, Mapping[str, Any], Rendered], dict[str, Any]]:
    def save(t: Target, inputs: Mapping[str, Any], out: Rendered) -> dict[str, Any]:
        name = f"{t.stem}_{t.counter:05}_.{suffix}"
        images = as_images(inputs["images"])
        fps = float(inputs.get("fps", 6.0))
        if suffix == "webm":
            write_video(Video(images, None, fps), out.stage(t.folder / name))
        else:
            write_animated(images, fps, out.stage(t.folder / name))
        return {"images": [t.item(name)], "animated": [True]}

    return save


def _video(t: Target, inputs: Mapping[str, Any], out: Rendered) -> dict[str, Any]:
    value = inputs["video"]
    video = value if isinstance(value, Video) else Video(as_images(value), None, 24.0)
    name = f"{t.stem}_{t.counter:05}_.mp4"
    write_video(video, out.stage(t.folder / name))
    return {"images": [t.item(name)], "animated": [True]}


def _sound(codec: str | None) -> Callable[[Target, Mapping[str, Any], Rendered], dict[str, Any]]:
    def save(t: Target, inputs: Mapping[str, Any], out: Rendered) -> dict[str, Any]:
        chosen = codec or str(inputs.get("format", "flac"))
        name = f"{t.stem}_{t.counter:05}.{chosen}"
        write_audio(as_audio(inputs["audio"]), chosen, out.stage(t.folder / name))
        return {"audio": [t.item(name)]}

    return save


def write_latent(latent: Latent, path: Path) -> None:
    """A zero latent in safetensors layout, as ComfyUI's SaveLatent writes it."""
    size = int(np.prod(latent.shape)) * 4
    header = {
        "latent_tensor": {"dtype": "F32", "shape": list(latent.shape), "data_offsets": [0, size]},
        "latent_format_version_0": {"dtype": "F32", "shape": [0], "data_offsets": [size, size]},
        "__metadata__": {"format": "reelflow simulator: all zeros"},
    }
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)
    with path.open("wb") as handle:
        handle.write(struct.pack("<Q", len(encoded)) + encoded)
        handle.truncate(8 + len(encoded) + size)  # the zeros, without holding them in memory


def _latent(t: Target, inputs: Mapping[str, Any], out: Rendered) -> dict[str, Any]:
    value = inputs["samples"]
    latent = value if isinstance(value, Latent) else Latent((1, 4, 8, 8))
    name = f"{t.stem}_{t.counter:05}_.latent"
    write_latent(latent, out.stage(t.folder / name))
    return {"latents": [t.item(name)]}


Writer = Callable[[Target, Mapping[str, Any], Rendered], dict[str, Any]]
WRITERS: dict[str, tuple[Writer, bool]] = {
    "SaveImage": (_pictures, False),
    "PreviewImage": (_pictures, True),
    "SaveAnimatedWEBP": (_animation("webp"), False),
    "SaveAnimatedPNG": (_animation("png"), False),
    "SaveWEBM": (_animation("webm"), False),
    "SaveVideo": (_video, False),
    "SaveAudio": (_sound("flac"), False),
    "SaveAudioMP3": (_sound("mp3"), False),
    "SaveAudioOpus": (_sound("opus"), False),
    "SaveAudioAdvanced": (_sound(None), False),
    "PreviewAudio": (_sound("flac"), True),
    "SaveLatent": (_latent, False),
}


def write_output(class_type: str, inputs: Mapping[str, Any], folders: Folders) -> Rendered:
    """Write what an output node saves; ``output`` None for a node that saves nothing."""
    if class_type == "PreviewAny":
        return Rendered({"text": [describe(inputs.get("source"))]})
    if class_type not in WRITERS:
        return Rendered(None)
    writer, temp = WRITERS[class_type]
    rendered = Rendered(None)
    rendered.output = writer(target(folders, inputs, temp), inputs, rendered)
    return rendered
