"""Workflow templates (ComfyUI API-format JSON) filled through node-title bindings.

A user can export their own tuned graph with "Save (API)", give a few nodes the
``reelflow.*`` titles below, and reelflow fills it exactly like the built-in ones.
"""

from __future__ import annotations

import copy
import hashlib
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from tasks.comfyui.errors import TemplateError

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
WORKFLOWS_DIR = CONFIG_DIR / "workflows"
MODELS_TOML = CONFIG_DIR / "models.toml"

RenderMode = Literal["fast", "quality"]
Bindings = Mapping[str, Mapping[str, Any]]

# Colours only matter to the browser timeline editor, which reads timeline_data.
_SEGMENT_COLOURS = ("#4f8edc", "#e07b3a", "#5fb36b", "#c75ac2", "#d9c24a", "#46b9c0")
# ACE-Step generates at most about this much music per prompt (PRODUCTION_NOTES).
MAX_CUE_SECONDS = 240.0


class TemplateKind(StrEnum):
    relay_i2v = "ltx23_relay_i2v"
    relay_t2v = "ltx23_relay_t2v"
    keyframe = "keyframe_t2i"
    cue = "acestep15_cue"


_LTX_TITLES: dict[str, tuple[str, ...]] = {
    "reelflow.checkpoint": ("ckpt_name",),
    "reelflow.text_encoder": ("text_encoder", "ckpt_name"),
    "reelflow.audio_vae": ("ckpt_name",),
    "reelflow.distilled_lora": ("lora_name", "strength_model"),
    "reelflow.frames": ("width", "height", "length"),
    "reelflow.audio_frames": ("frames_number", "frame_rate"),
    "reelflow.prompt": (
        "global_prompt",
        "local_prompts",
        "segment_lengths",
        "max_frames",
        "timeline_data",
    ),
    "reelflow.negative": ("text",),
    "reelflow.conditioning": ("frame_rate",),
    "reelflow.seed": ("noise_seed",),
    "reelflow.sigmas": ("sigmas",),
    "reelflow.guider": ("cfg",),
    "reelflow.video": ("fps",),
    "reelflow.output": ("filename_prefix",),
}

REQUIRED_TITLES: dict[TemplateKind, dict[str, tuple[str, ...]]] = {
    TemplateKind.relay_t2v: _LTX_TITLES,
    TemplateKind.relay_i2v: {**_LTX_TITLES, "reelflow.start_image": ("image",)},
    TemplateKind.keyframe: {
        "reelflow.checkpoint": ("unet_name",),
        "reelflow.text_encoder": ("clip_name",),
        "reelflow.vae": ("vae_name",),
        "reelflow.prompt": ("text",),
        "reelflow.size": ("width", "height"),
        "reelflow.seed": ("seed", "steps"),
        "reelflow.output": ("filename_prefix",),
    },
    TemplateKind.cue: {
        "reelflow.checkpoint": ("unet_name",),
        "reelflow.text_encoder": ("clip_name1", "clip_name2"),
        "reelflow.vae": ("vae_name",),
        "reelflow.prompt": ("tags", "lyrics", "seed", "bpm", "duration", "timesignature"),
        "reelflow.seconds": ("seconds",),
        "reelflow.seed": ("seed", "steps", "cfg"),
        "reelflow.output": ("filename_prefix",),
    },
}


@dataclass(frozen=True)
class Workflow:
    """One API-format template; ``template_hash`` is the sha256 of its canonical JSON."""

    name: str
    nodes: dict[str, Any]
    template_hash: str = field(compare=False)

    @classmethod
    def load(cls, path: Path) -> Workflow:
        try:
            nodes = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise TemplateError(f"{path}: cannot read workflow template: {exc}") from exc
        if not isinstance(nodes, dict) or not all(
            isinstance(n, dict) and "class_type" in n for n in nodes.values()
        ):
            raise TemplateError(f"{path}: not an API-format workflow (use 'Save (API)')")
        canonical = json.dumps(nodes, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return cls(path.name, nodes, hashlib.sha256(canonical.encode()).hexdigest())

    def titled(self, title: str) -> tuple[str, dict[str, Any]]:
        """The id and node carrying ``title``; exactly one must."""
        found = [
            (node_id, node)
            for node_id, node in self.nodes.items()
            if (node.get("_meta") or {}).get("title") == title
        ]
        if not found:
            raise TemplateError(f"{self.name}: no node is titled '{title}'")
        if len(found) > 1:
            ids = ", ".join(node_id for node_id, _ in found)
            raise TemplateError(f"{self.name}: title '{title}' is on several nodes ({ids})")
        return found[0]

    def require(self, kind: TemplateKind) -> None:
        """Refuse a template that lacks any title or input ``kind`` binds."""
        for title, inputs in REQUIRED_TITLES[kind].items():
            self._check(title, inputs)

    def _check(self, title: str, inputs: tuple[str, ...] | Mapping[str, Any]) -> dict[str, Any]:
        node_id, node = self.titled(title)
        for name in inputs:
            if name not in node.get("inputs", {}):
                raise TemplateError(
                    f"{self.name}: node {node_id} '{title}' ({node['class_type']}) "
                    f"has no input '{name}'"
                )
        return node

    def bind(self, values: Bindings) -> dict[str, Any]:
        """A fresh prompt with ``{title: {input: value}}`` written in; the template is untouched."""
        for title, inputs in values.items():
            self._check(title, inputs)
        prompt = copy.deepcopy(self.nodes)
        for title, inputs in values.items():
            node_id, _ = self.titled(title)
            prompt[node_id]["inputs"].update(inputs)
        return prompt


def load_template(kind: TemplateKind, directory: Path = WORKFLOWS_DIR) -> Workflow:
    """The template for ``kind`` from ``directory``, checked for its required titles."""
    workflow = Workflow.load(directory / f"{kind.value}.json")
    workflow.require(kind)
    return workflow


# --- model sets ----------------------------------------------------------------------


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LtxModels(_Frozen):
    checkpoint: str
    text_encoder: str
    distilled_lora: str
    distilled_lora_strength: float
    sigmas: str
    cfg: float


class KeyframeModels(_Frozen):
    diffusion_model: str
    text_encoder: str
    vae: str
    steps: int


class CueModels(_Frozen):
    variant: str
    diffusion_model: str
    text_encoder_small: str
    text_encoder_large: str
    vae: str
    steps: int
    cfg: float


class ModelSet(_Frozen):
    """Every model file name one render mode uses, by family."""

    mode: RenderMode
    ltx23: LtxModels
    keyframe: KeyframeModels
    acestep15: CueModels


def load_models(mode: RenderMode, path: Path = MODELS_TOML) -> ModelSet:
    with path.open("rb") as fh:
        table = tomllib.load(fh)
    try:
        families = {family: table[family][mode] for family in ("ltx23", "keyframe", "acestep15")}
    except KeyError as exc:
        raise TemplateError(f"{path}: no [{exc.args[0]}] models for mode '{mode}'") from exc
    return ModelSet.model_validate({"mode": mode, **families})


def model_folders(path: Path = MODELS_TOML) -> dict[str, str]:
    """``"Class.input" -> models folder``, for naming where a missing file belongs."""
    with path.open("rb") as fh:
        return dict(tomllib.load(fh).get("model_folders", {}))


# --- fill functions the render tasks call --------------------------------------------


def relay_prompt(
    workflow: Workflow,
    *,
    global_prompt: str,
    segment_prompts: list[str],
    segment_frames: list[int],
    width: int,
    height: int,
    frames: int,
    fps: int,
    seed: int,
    negative: str,
    start_image: str | None,
    models: ModelSet,
    output_prefix: str,
) -> dict[str, Any]:
    """A Prompt Relay sequence prompt (I2V when ``start_image`` is given, else T2V)."""
    _check_segments(workflow.name, segment_prompts, segment_frames, frames)
    ltx = models.ltx23
    timeline = {
        "segments": [
            {"prompt": text, "length": length, "color": _SEGMENT_COLOURS[i % 6]}
            for i, (text, length) in enumerate(zip(segment_prompts, segment_frames, strict=True))
        ]
    }
    values: dict[str, dict[str, Any]] = {
        "reelflow.checkpoint": {"ckpt_name": ltx.checkpoint},
        "reelflow.text_encoder": {"text_encoder": ltx.text_encoder, "ckpt_name": ltx.checkpoint},
        "reelflow.audio_vae": {"ckpt_name": ltx.checkpoint},
        "reelflow.distilled_lora": {
            "lora_name": ltx.distilled_lora,
            "strength_model": ltx.distilled_lora_strength,
        },
        "reelflow.frames": {"width": width, "height": height, "length": frames},
        # The node derives the audio latent count (25 Hz) from video frames and fps itself.
        "reelflow.audio_frames": {"frames_number": frames, "frame_rate": fps},
        "reelflow.prompt": {
            "global_prompt": global_prompt,
            "local_prompts": " | ".join(p.strip() for p in segment_prompts),
            "segment_lengths": ", ".join(str(n) for n in segment_frames),
            "max_frames": frames,
            "timeline_data": json.dumps(timeline, ensure_ascii=False),
        },
        "reelflow.negative": {"text": negative},
        "reelflow.conditioning": {"frame_rate": float(fps)},
        "reelflow.seed": {"noise_seed": seed},
        "reelflow.sigmas": {"sigmas": ltx.sigmas},
        "reelflow.guider": {"cfg": ltx.cfg},
        "reelflow.video": {"fps": float(fps)},
        "reelflow.output": {"filename_prefix": output_prefix},
    }
    if start_image is not None:
        values["reelflow.start_image"] = {"image": start_image}
    else:
        _refuse_title(workflow, "reelflow.start_image", "a text-to-video render")
    return workflow.bind(values)


def keyframe_prompt(
    workflow: Workflow,
    *,
    prompt: str,
    width: int,
    height: int,
    seed: int,
    models: ModelSet,
    output_prefix: str,
) -> dict[str, Any]:
    """A text-to-image keyframe prompt (the start frame of a chain)."""
    image = models.keyframe
    return workflow.bind(
        {
            "reelflow.checkpoint": {"unet_name": image.diffusion_model},
            "reelflow.text_encoder": {"clip_name": image.text_encoder},
            "reelflow.vae": {"vae_name": image.vae},
            "reelflow.prompt": {"text": prompt},
            "reelflow.size": {"width": width, "height": height},
            "reelflow.seed": {"seed": seed, "steps": image.steps},
            "reelflow.output": {"filename_prefix": output_prefix},
        }
    )


def cue_prompt(
    workflow: Workflow,
    *,
    tags: str,
    bpm: int,
    keyscale: str,
    seconds: float,
    seed: int,
    models: ModelSet,
    output_prefix: str,
    timesignature: str = "4",
    lyrics: str = "[Instrumental]",
) -> dict[str, Any]:
    """An ACE-Step 1.5 score cue prompt."""
    if not 0 < seconds <= MAX_CUE_SECONDS:
        raise TemplateError(
            f"{workflow.name}: a cue of {seconds:g} s is outside 0-{MAX_CUE_SECONDS:g} s; "
            "split longer score zones into several cues"
        )
    ace = models.acestep15
    return workflow.bind(
        {
            "reelflow.checkpoint": {"unet_name": ace.diffusion_model},
            "reelflow.text_encoder": {
                "clip_name1": ace.text_encoder_small,
                "clip_name2": ace.text_encoder_large,
            },
            "reelflow.vae": {"vae_name": ace.vae},
            "reelflow.prompt": {
                "tags": tags,
                "lyrics": lyrics,
                "seed": seed,
                "bpm": bpm,
                "duration": float(seconds),
                "timesignature": timesignature,
                "keyscale": keyscale,
            },
            "reelflow.seconds": {"seconds": float(seconds)},
            "reelflow.seed": {"seed": seed, "steps": ace.steps, "cfg": ace.cfg},
            "reelflow.output": {"filename_prefix": output_prefix},
        }
    )


def _check_segments(name: str, prompts: list[str], frames_each: list[int], frames: int) -> None:
    if not prompts or len(prompts) != len(frames_each):
        raise TemplateError(
            f"{name}: {len(prompts)} segment prompts but {len(frames_each)} segment lengths"
        )
    for index, text in enumerate(prompts):
        if "|" in text:
            raise TemplateError(
                f"{name}: segment {index} prompt contains '|', which Prompt Relay reads as "
                f"a segment separator: {text!r}"
            )
    if any(n <= 0 for n in frames_each) or sum(frames_each) != frames:
        raise TemplateError(
            f"{name}: segment lengths {frames_each} must be positive and sum to {frames} frames"
        )
    if (frames - 1) % 8:
        raise TemplateError(f"{name}: LTX needs 8k+1 frames, got {frames}")


def _refuse_title(workflow: Workflow, title: str, what: str) -> None:
    """A template with a start image slot cannot render without an image."""
    try:
        workflow.titled(title)
    except TemplateError:
        return
    raise TemplateError(f"{workflow.name}: has '{title}' but {what} was asked for (no image)")
