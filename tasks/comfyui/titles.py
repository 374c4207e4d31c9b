"""The ``reelflow.*`` title contract: what each kind of workflow template must carry.

reelflow finds the nodes it fills by their title, never by id or class, so any graph
exported with "Save (API)" works once a few nodes carry these titles. A title binds one or
more values; each value goes into the first of its input names that the titled node has,
so the same title fits the built-in LTX/ACE-Step graphs and a model-free graph made of
core nodes (``EmptyImage.batch_size`` takes the frame count where
``EmptyLTXVLatentVideo.length`` would). Required titles shape the media reelflow checks
(size, length, frame rate, where it is saved, the carried start frame); a template without
an optional title keeps its own values for it (its own prompt, seed or model files).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class TemplateKind(StrEnum):
    relay_i2v = "ltx23_relay_i2v"
    relay_t2v = "ltx23_relay_t2v"
    relay_i2v_voice = "ltx23_relay_i2v_voice"
    relay_t2v_voice = "ltx23_relay_t2v_voice"
    keyframe = "keyframe_t2i"
    keyframe_cast = "keyframe_cast"
    cue = "acestep15_cue"

    @classmethod
    def named(cls, word: str) -> TemplateKind | None:
        """The kind a user wrote, by short name (``relay_i2v``) or file stem."""
        for kind in cls:
            if word in (kind.name, kind.value):
                return kind
        return None


@dataclass(frozen=True)
class Slot:
    """One value a title takes: the first of ``inputs`` the node has receives it."""

    inputs: tuple[str, ...]
    optional: bool = False

    def target(self, node: Mapping[str, Any]) -> str | None:
        """The input of ``node`` that takes this value, if it has one."""
        present = node.get("inputs", {})
        return next((name for name in self.inputs if name in present), None)

    def spelled(self) -> str:
        return " or ".join(f"'{name}'" for name in self.inputs)


@dataclass(frozen=True)
class Title:
    """One ``reelflow.*`` title: the values it binds, and what it is for."""

    slots: dict[str, Slot]
    purpose: str
    required: bool = True
    kept: str = field(default="", compare=False)
    """For an optional title: what the template keeps when it has no node so titled."""


def _slots(*names: str, optional: tuple[str, ...] = ()) -> dict[str, Slot]:
    found = {name: Slot((name,)) for name in names}
    return {**found, **{name: Slot((name,), optional=True) for name in optional}}


def _model(*names: str) -> Title:
    return Title(_slots(*names), "a model loader", required=False, kept="its own model files")


_FRAMES = Title(
    {
        "width": Slot(("width",)),
        "height": Slot(("height",)),
        # An empty LTX latent counts frames in `length`; an EmptyImage batch in `batch_size`.
        "length": Slot(("length", "batch_size")),
    },
    "the picture size and frame count (EmptyLTXVLatentVideo, or EmptyImage)",
)
_SEED = {"noise_seed": Slot(("noise_seed", "seed"))}

_RELAY: dict[str, Title] = {
    "reelflow.frames": _FRAMES,
    "reelflow.video": Title(_slots("fps"), "the frame rate of the video (CreateVideo)"),
    "reelflow.output": Title(
        _slots("filename_prefix"), "the node that saves the video (SaveVideo)"
    ),
    "reelflow.audio_frames": Title(
        # LTXVEmptyLatentAudio counts video frames at a frame rate; EmptyAudio takes seconds.
        _slots(optional=("frames_number", "frame_rate", "duration")),
        "the length of the sound track",
        required=False,
        kept="its own sound length",
    ),
    "reelflow.prompt": Title(
        _slots(
            "global_prompt",
            "local_prompts",
            "segment_lengths",
            optional=("max_frames", "timeline_data"),
        ),
        "the Prompt Relay encoder",
        required=False,
        kept="its own prompt for every sequence",
    ),
    "reelflow.seed": Title(
        _SEED, "the noise seed", required=False, kept="its own seed (re-rolls change nothing)"
    ),
    "reelflow.negative": Title(
        _slots("text"), "the negative prompt", required=False, kept="its own negative prompt"
    ),
    "reelflow.conditioning": Title(
        _slots("frame_rate"), "LTXVConditioning", required=False, kept="its own frame rate"
    ),
    "reelflow.sigmas": Title(
        _slots("sigmas"), "the sigma schedule", required=False, kept="its own sigmas"
    ),
    "reelflow.guider": Title(_slots("cfg"), "the guider", required=False, kept="its own CFG"),
    "reelflow.checkpoint": _model("ckpt_name"),
    "reelflow.text_encoder": _model("text_encoder", "ckpt_name"),
    "reelflow.audio_vae": _model("ckpt_name"),
    "reelflow.distilled_lora": _model("lora_name", "strength_model"),
}

START_IMAGE = "reelflow.start_image"
VOICE = "reelflow.voice"
PORTRAITS = ("reelflow.portrait1", "reelflow.portrait2", "reelflow.portrait3")

_VOICE: dict[str, Title] = {
    VOICE: Title(_slots("audio"), "the dominant speaker's reference voice (LoadAudio)"),
    "reelflow.id_lora": _model("lora_name"),
    "reelflow.reference_audio": Title(
        _slots("identity_guidance_scale"),
        "LTXVReferenceAudio",
        required=False,
        kept="its own identity guidance",
    ),
}
_KEYFRAME_SEED = Title(
    {"seed": Slot(("seed", "noise_seed")), "steps": Slot(("steps",), optional=True)},
    "the sampler's seed",
    required=False,
    kept="its own seed",
)

TITLES: dict[TemplateKind, dict[str, Title]] = {
    TemplateKind.relay_t2v: _RELAY,
    TemplateKind.relay_i2v: {
        **_RELAY,
        START_IMAGE: Title(_slots("image"), "the carried start frame (LoadImage)"),
    },
    TemplateKind.relay_t2v_voice: {**_RELAY, **_VOICE},
    TemplateKind.relay_i2v_voice: {
        **_RELAY,
        **_VOICE,
        START_IMAGE: Title(_slots("image"), "the carried start frame (LoadImage)"),
    },
    TemplateKind.keyframe_cast: {
        "reelflow.size": Title(
            _slots("width", "height"), "the picture size (EmptySD3LatentImage, or EmptyImage)"
        ),
        "reelflow.output": Title(_slots("filename_prefix"), "the node that saves the image"),
        "reelflow.prompt": Title(
            {"prompt": Slot(("prompt", "text"))},
            "the edit prompt that takes the portraits (TextEncodeQwenImageEditPlus)",
            required=False,
            kept="its own prompt for every keyframe",
        ),
        "reelflow.seed": _KEYFRAME_SEED,
        PORTRAITS[0]: Title(_slots("image"), "the first cast portrait (LoadImage)"),
        PORTRAITS[1]: Title(
            _slots("image"), "a second cast portrait", required=False, kept="one portrait at most"
        ),
        PORTRAITS[2]: Title(
            _slots("image"), "a third cast portrait", required=False, kept="two portraits at most"
        ),
        "reelflow.checkpoint": _model("unet_name"),
        "reelflow.text_encoder": _model("clip_name"),
        "reelflow.vae": _model("vae_name"),
    },
    TemplateKind.keyframe: {
        "reelflow.size": Title(
            _slots("width", "height"), "the picture size (EmptySD3LatentImage, or EmptyImage)"
        ),
        "reelflow.output": Title(_slots("filename_prefix"), "the node that saves the image"),
        "reelflow.prompt": Title(
            _slots("text"), "the prompt", required=False, kept="its own prompt for every keyframe"
        ),
        "reelflow.seed": Title(
            {"seed": Slot(("seed", "noise_seed")), "steps": Slot(("steps",), optional=True)},
            "the sampler's seed",
            required=False,
            kept="its own seed",
        ),
        "reelflow.checkpoint": _model("unet_name"),
        "reelflow.text_encoder": _model("clip_name"),
        "reelflow.vae": _model("vae_name"),
    },
    TemplateKind.cue: {
        "reelflow.seconds": Title(
            # ACE-Step's empty latent takes `seconds`; a plain EmptyAudio takes `duration`.
            {"seconds": Slot(("seconds", "duration"))},
            "the cue length (EmptyAceStep1.5LatentAudio, or EmptyAudio)",
        ),
        "reelflow.output": Title(_slots("filename_prefix"), "the node that saves the cue"),
        "reelflow.prompt": Title(
            _slots(
                "tags",
                optional=("lyrics", "seed", "bpm", "duration", "timesignature", "keyscale"),
            ),
            "the ACE-Step text encoder",
            required=False,
            kept="its own music prompt for every cue",
        ),
        "reelflow.seed": Title(
            {
                "seed": Slot(("seed", "noise_seed")),
                "steps": Slot(("steps",), optional=True),
                "cfg": Slot(("cfg",), optional=True),
            },
            "the sampler's seed",
            required=False,
            kept="its own seed",
        ),
        "reelflow.checkpoint": _model("unet_name"),
        "reelflow.text_encoder": _model("clip_name1", "clip_name2"),
        "reelflow.vae": _model("vae_name"),
    },
}
