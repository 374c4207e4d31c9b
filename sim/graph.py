"""Read what an output node would render by walking back through the prompt graph.

Nodes are found by ``class_type`` among the output node's ancestors, never by title, so
any workflow built from the same node classes renders the same animatic.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

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
RELAY_ENCODERS = ("PromptRelayEncodeTimeline", "PromptRelayEncode")
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

    @property
    def seconds(self) -> float:
        """Duration of the rendered media."""
        return self.frames / self.fps


@dataclass(frozen=True)
class ImageSpec:
    """A still (keyframe) render."""

    width: int
    height: int
    seed: int
    text: str


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


def ancestors(prompt: Prompt, node_id: str) -> list[str]:
    """``node_id`` and every node it depends on, nearest first."""
    seen: list[str] = []
    stack = [node_id]
    while stack:
        current = stack.pop(0)
        if current in seen or current not in prompt:
            continue
        seen.append(current)
        for value in prompt[current].get("inputs", {}).values():
            if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str):
                stack.append(value[0])
    return seen


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
    noise = _find(prompt, ids, "RandomNoise")
    seed = int(noise["noise_seed"]) if noise else 0
    i2v = [
        prompt[n]["inputs"]
        for n in ids
        if prompt[n]["class_type"] in ("LTXVImgToVideoInplace", "LTXVImgToVideo")
    ]
    loader = _find(prompt, ids, "LoadImage")
    uses_image = any(not bool(node.get("bypass", False)) for node in i2v)
    return VideoSpec(
        width=int(latent["width"]) * scale,
        height=int(latent["height"]) * scale,
        frames=frames,
        fps=fps,
        global_prompt=global_prompt,
        segments=segments,
        seed=seed,
        start_image=str(loader["image"]) if loader is not None and uses_image else None,
        with_audio=_find(prompt, ids, "LTXVAudioVAEDecode", "VAEDecodeAudio") is not None,
    )


def _image(prompt: Prompt, ids: list[str]) -> ImageSpec | None:
    latent = _find(prompt, ids, "EmptySD3LatentImage", "EmptyLatentImage")
    sampler = _find(prompt, ids, "KSampler")
    if latent is not None:
        text = _linked_text(prompt, sampler, "positive")
        if text is None:
            encoder = _find(prompt, ids, "CLIPTextEncode")
            text = str(encoder.get("text", "")) if encoder else ""
        seed = int(sampler["seed"]) if sampler else 0
        return ImageSpec(int(latent["width"]), int(latent["height"]), seed, text)
    return None


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
