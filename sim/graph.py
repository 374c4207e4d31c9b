"""Read what an output node would render by walking back through the prompt graph.

Nodes are found by ``class_type`` among the output node's ancestors, never by title, so
any workflow built from the same node classes renders the same animatic.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sim.graph_refs import (
    Guide,
    image_guides,
    positive_side,
    reference_images,
    reference_voice,
    start_image,
)
from sim.graph_refs import upstream as ancestors

__all__ = ["Guide", "ImageSpec", "MusicSpec", "OutputPlan", "Segment", "VideoSpec", "ancestors"]

Prompt = Mapping[str, Mapping[str, Any]]

VIDEO_OUTPUTS = frozenset({"SaveVideo", "SaveWEBM", "SaveAnimatedWEBP", "SaveAnimatedPNG"})
IMAGE_OUTPUTS = frozenset({"SaveImage", "PreviewImage"})
AUDIO_OUTPUTS: dict[str, str] = {
    "SaveAudio": "flac",
    "SaveAudioMP3": "mp3",
    "SaveAudioOpus": "opus",
    "SaveAudioAdvanced": "mp3",
    "PreviewAudio": "flac",
}
_IMAGE_SAMPLERS = ("KSampler", "KSamplerAdvanced", "SamplerCustomAdvanced", "SamplerCustom")
_TEXT_ENCODERS = ("CLIPTextEncode", "TextEncodeQwenImageEditPlus", "TextEncodeQwenImageEdit")
RELAY_ENCODERS = ("PromptRelayEncodeTimeline", "PromptRelayEncode")
_PORTRAIT = re.compile(r"\bportrait\b", re.IGNORECASE)
_SMART_SHOT = re.compile(r"^Shot\s+(\d+)\s*-\s*(\d+)\s*:\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Segment:
    """One timed part of a relay prompt."""

    prompt: str
    frames: int


@dataclass(frozen=True)
class VideoSpec:
    """An LTX sequence render: picture size, timing, prompts and the optional start frame."""

    width: int
    height: int
    frames: int
    fps: float
    global_prompt: str
    segments: tuple[Segment, ...]
    seed: int
    start_image: str | None
    with_audio: bool
    reference_audio: str | None = None
    guides: tuple[Guide, ...] = ()

    @property
    def seconds(self) -> float:
        """Duration of the rendered media."""
        return self.frames / self.fps


@dataclass(frozen=True)
class ImageSpec:
    """A still (keyframe) render, and the uploaded pictures it puts into its shot."""

    width: int
    height: int
    seed: int
    text: str
    references: tuple[str, ...] = ()

    @property
    def portrait(self) -> bool:
        """A text-to-image portrait: ``portrait`` is among the prompt's first eight words
        ("Portrait of EDDA, ...") and no picture is given."""
        opening = " ".join(self.text.split()[:8])
        return not self.references and _PORTRAIT.search(opening) is not None


@dataclass(frozen=True)
class MusicSpec:
    """An ACE-Step cue render."""

    seconds: float
    bpm: int
    keyscale: str
    seed: int
    tags: str
    extension: str


@dataclass(frozen=True)
class OutputPlan:
    """What one output node of a model graph renders (``media`` None: not a model graph,
    so its picture or sound is computed from the model-free nodes instead)."""

    node_id: str
    class_type: str
    media: VideoSpec | ImageSpec | MusicSpec | None
    filename_prefix: str
    temp: bool = field(default=False)

    @property
    def output_seconds(self) -> float:
        """Seconds of media the GPU generates (a model-made still counts as one)."""
        if isinstance(self.media, VideoSpec | MusicSpec):
            return self.media.seconds
        if isinstance(self.media, ImageSpec):
            return 1.0
        return 0.0

    @property
    def family(self) -> str | None:
        """The model family that must be loaded: ``ltx``, ``ace_step`` or ``image``."""
        if isinstance(self.media, VideoSpec):
            return "ltx"
        if isinstance(self.media, MusicSpec):
            return "ace_step"
        if isinstance(self.media, ImageSpec):
            return "image"
        return None


def _find(prompt: Prompt, ids: list[str], *classes: str) -> Mapping[str, Any] | None:
    for node_id in ids:
        if prompt[node_id]["class_type"] in classes:
            return prompt[node_id]["inputs"]
    return None


def _linked_text(prompt: Prompt, inputs: Mapping[str, Any] | None, name: str) -> str | None:
    link = inputs.get(name) if inputs else None
    if isinstance(link, list) and link and link[0] in prompt:
        source = prompt[link[0]]
        if source["class_type"] == "CLIPTextEncode":
            return str(source["inputs"].get("text", ""))
    return None


def parse_segments(local_prompts: str, segment_lengths: str, total: int) -> tuple[Segment, ...]:
    """Split the relay encoder's ``" | "``-joined prompts and ``"97, 96"`` frame lengths."""
    prompts = [p.strip() for p in local_prompts.split("|")]
    lengths = [int(float(x)) for x in re.split(r"[,\s]+", segment_lengths.strip()) if x]
    if len(lengths) != len(prompts) or not prompts:
        return (Segment(local_prompts.strip(), total),)
    return tuple(Segment(p, n) for p, n in zip(prompts, lengths, strict=True))


def parse_smart_prompt(smart_prompt: str, total: int) -> tuple[Segment, ...]:
    """Read ``Shot A-B:`` blocks of PromptRelaySmartEncode into segments."""
    marks = list(_SMART_SHOT.finditer(smart_prompt))
    if not marks:
        return (Segment(smart_prompt.strip(), total),)
    segments = []
    for index, mark in enumerate(marks):
        end = marks[index + 1].start() if index + 1 < len(marks) else len(smart_prompt)
        text = smart_prompt[mark.end() : end].strip()
        segments.append(Segment(text, int(mark.group(2)) - int(mark.group(1))))
    return tuple(segments)


def _video(prompt: Prompt, ids: list[str]) -> VideoSpec | None:
    latent = _find(prompt, ids, "EmptyLTXVLatentVideo")
    if latent is None:
        return None
    frames = int(latent["length"])
    scale = 2 if _find(prompt, ids, "LTXVLatentUpsampler") is not None else 1
    video = _find(prompt, ids, "CreateVideo")
    fps = float(video["fps"]) if video and not isinstance(video.get("fps"), list) else 24.0
    relay = _find(prompt, ids, *RELAY_ENCODERS)
    smart = _find(prompt, ids, "PromptRelaySmartEncode")
    if relay is not None:
        global_prompt = str(relay.get("global_prompt", ""))
        lengths = relay.get("segment_lengths", str(frames))
        segments = parse_segments(str(relay.get("local_prompts", "")), str(lengths), frames)
    elif smart is not None:
        global_prompt = str(smart.get("global_prompt", ""))
        segments = parse_smart_prompt(str(smart.get("smart_prompt", "")), frames)
    else:
        conditioning = _find(prompt, ids, "LTXVConditioning")
        text = _linked_text(prompt, conditioning, "positive")
        global_prompt = text if text is not None else ""
        segments = (Segment(global_prompt, frames),)
    return VideoSpec(
        width=int(latent["width"]) * scale,
        height=int(latent["height"]) * scale,
        frames=frames,
        fps=fps,
        global_prompt=global_prompt,
        segments=segments,
        seed=_seed(prompt, ids),
        start_image=start_image(prompt, ids),
        with_audio=_find(prompt, ids, "LTXVAudioVAEDecode", "VAEDecodeAudio") is not None,
        reference_audio=reference_voice(prompt, ids),
        guides=image_guides(prompt, ids),
    )


def _seed(prompt: Prompt, ids: list[str]) -> int:
    """The render's seed: ``RandomNoise.noise_seed``, else a sampler's own seed input."""
    noise = _find(prompt, ids, "RandomNoise")
    if noise is not None:
        return int(noise["noise_seed"])
    sampler = _find(prompt, ids, "KSampler", "KSamplerAdvanced", "SamplerCustom")
    if sampler is not None:
        value = sampler.get("seed", sampler.get("noise_seed", 0))
        return int(value) if isinstance(value, int | float | str) else 0
    return 0


def _image(prompt: Prompt, ids: list[str]) -> ImageSpec | None:
    latent = _find(prompt, ids, "EmptySD3LatentImage", "EmptyLatentImage")
    if latent is None:
        return None
    sampler = next((n for n in ids if prompt[n]["class_type"] in _IMAGE_SAMPLERS), None)
    side = positive_side(prompt, sampler) if sampler is not None else []
    encoder = _find(prompt, side or ids, *_TEXT_ENCODERS)
    text = ""
    if encoder is not None:
        text = str(encoder.get("text", encoder.get("prompt", "")))
    size = int(latent["width"]), int(latent["height"])
    return ImageSpec(*size, _seed(prompt, ids), text, reference_images(prompt, side))


def _music(prompt: Prompt, ids: list[str], extension: str) -> MusicSpec | None:
    encoder = _find(prompt, ids, "TextEncodeAceStepAudio1.5")
    latent = _find(prompt, ids, "EmptyAceStep1.5LatentAudio")
    if encoder is None or latent is None:
        return None
    return MusicSpec(
        seconds=float(latent["seconds"]),
        bpm=int(encoder.get("bpm", 120)),
        keyscale=str(encoder.get("keyscale", "C major")),
        seed=int(encoder.get("seed", 0)),
        tags=str(encoder.get("tags", "")),
        extension=extension,
    )


def plan_output(prompt: Prompt, node_id: str) -> OutputPlan:
    """What ``node_id`` (an output node) will write when executed."""
    node = prompt[node_id]
    class_type = node["class_type"]
    inputs = node.get("inputs", {})
    prefix = str(inputs.get("filename_prefix", "ComfyUI"))
    ids = ancestors(prompt, node_id)
    media: VideoSpec | ImageSpec | MusicSpec | None = None
    if class_type in VIDEO_OUTPUTS:
        media = _video(prompt, ids)
    elif class_type in IMAGE_OUTPUTS:
        media = _image(prompt, ids)
    elif class_type in AUDIO_OUTPUTS:
        media = _music(prompt, ids, str(inputs.get("format", AUDIO_OUTPUTS[class_type])))
    temp = class_type in ("PreviewImage", "PreviewAudio")
    return OutputPlan(node_id, class_type, media, "ComfyUI_temp" if temp else prefix, temp)
