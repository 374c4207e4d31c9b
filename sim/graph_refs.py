"""The references a model graph conditions on: uploaded portraits, guide images, a voice clip.

Read from the prompt graph by class, like ``sim.graph``; each reference resolves to the
file of the nearest loader upstream of the input that takes it, whatever nodes lie between
(scaling, ``LTXVPreprocess``, trimming: the simulator draws or listens to the file itself).

* Reference images of a keyframe (``reference_images``): ``image1``, ``image2``, ``image3``
  of ``TextEncodeQwenImageEditPlus`` (``image`` of ``TextEncodeQwenImageEdit``), then the
  ``latent`` of each ``ReferenceLatent`` traced through its ``VAEEncode`` to a
  ``LoadImage``, all on the sampler's positive side (``KSampler.positive``, or the guider's
  ``positive``/``conditioning``/``cond1`` for ``SamplerCustomAdvanced``); a file used twice
  counts once. The negative side is ignored, as an edit model does.
* Image guides of a video (``image_guides``): each ``LTXVAddGuide`` upstream of the output,
  its ``image``'s file and its ``frame_idx``.
* The reference voice of a video (``reference_voice``): the ``LoadAudio`` file upstream of
  ``reference_audio`` of an ``LTXVReferenceAudio`` that the output depends on (through the
  model or the conditioning it passes on).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

Prompt = Mapping[str, Mapping[str, Any]]

IMAGE_LOADERS = {"LoadImage": "image", "LoadImageOutput": "image"}
AUDIO_LOADERS = {"LoadAudio": "audio"}
EDIT_ENCODERS = {
    "TextEncodeQwenImageEditPlus": ("image1", "image2", "image3"),
    "TextEncodeQwenImageEdit": ("image",),
}
_POSITIVE_INPUTS = ("positive", "conditioning", "cond1")


@dataclass(frozen=True)
class Guide:
    """An image a video render is conditioned on, at a frame (negative: from the end)."""

    image: str
    frame_idx: int


def _link(value: Any, prompt: Prompt) -> str | None:
    if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str):
        return value[0] if value[0] in prompt else None
    return None


def upstream(prompt: Prompt, node_id: str) -> list[str]:
    """``node_id`` and everything it depends on, nearest first (breadth first)."""
    seen: list[str] = []
    queue = [node_id]
    while queue:
        current = queue.pop(0)
        if current in seen or current not in prompt:
            continue
        seen.append(current)
        for value in prompt[current].get("inputs", {}).values():
            source = _link(value, prompt)
            if source is not None:
                queue.append(source)
    return seen


def loaded_file(prompt: Prompt, value: Any, loaders: Mapping[str, str]) -> str | None:
    """The file of the nearest loader upstream of an input's link, if any."""
    source = _link(value, prompt)
    if source is None:
        return None
    for node_id in upstream(prompt, source):
        node = prompt[node_id]
        key = loaders.get(node["class_type"])
        if key is not None and isinstance(node.get("inputs", {}).get(key), str):
            return str(node["inputs"][key])
    return None


def positive_side(prompt: Prompt, sampler_id: str) -> list[str]:
    """The nodes on a sampler's positive conditioning (through a guider if it has one)."""
    inputs = prompt[sampler_id].get("inputs", {})
    guider = _link(inputs.get("guider"), prompt)
    if guider is not None:
        inputs = prompt[guider].get("inputs", {})
    for name in _POSITIVE_INPUTS:
        source = _link(inputs.get(name), prompt)
        if source is not None:
            return upstream(prompt, source)
    return []


def reference_images(prompt: Prompt, side: list[str]) -> tuple[str, ...]:
    """The uploaded pictures an edit keyframe puts into its shot, in slot order."""
    found: list[str] = []
    for node_id in side:
        node = prompt[node_id]
        for slot in EDIT_ENCODERS.get(node["class_type"], ()):
            found.append(loaded_file(prompt, node["inputs"].get(slot), IMAGE_LOADERS) or "")
    # Chained ReferenceLatents: the one applied first lies farthest from the sampler.
    for node_id in reversed(side):
        node = prompt[node_id]
        if node["class_type"] == "ReferenceLatent":
            found.append(loaded_file(prompt, node["inputs"].get("latent"), IMAGE_LOADERS) or "")
    return tuple(dict.fromkeys(name for name in found if name))


def image_guides(prompt: Prompt, ids: list[str]) -> tuple[Guide, ...]:
    """Every ``LTXVAddGuide`` among ``ids`` with a loaded image, by frame index."""
    guides = []
    for node_id in ids:
        node = prompt[node_id]
        if node["class_type"] != "LTXVAddGuide":
            continue
        image = loaded_file(prompt, node["inputs"].get("image"), IMAGE_LOADERS)
        if image is not None:
            guides.append(Guide(image, int(node["inputs"].get("frame_idx", 0))))
    return tuple(guides)


def reference_voice(prompt: Prompt, ids: list[str]) -> str | None:
    """The voice clip of the nearest ``LTXVReferenceAudio`` among ``ids``."""
    for node_id in ids:
        node = prompt[node_id]
        if node["class_type"] == "LTXVReferenceAudio":
            clip = loaded_file(prompt, node["inputs"].get("reference_audio"), AUDIO_LOADERS)
            if clip is not None:
                return clip
    return None


def start_image(prompt: Prompt, ids: list[str]) -> str | None:
    """The picture an image-to-video node (not bypassed) starts from."""
    for node_id in ids:
        node = prompt[node_id]
        i2v = node["class_type"] in ("LTXVImgToVideoInplace", "LTXVImgToVideo")
        if i2v and not bool(node["inputs"].get("bypass", False)):
            found = loaded_file(prompt, node["inputs"].get("image"), IMAGE_LOADERS)
            if found is not None:
                return found
    return None
