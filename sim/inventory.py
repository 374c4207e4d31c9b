"""The simulator's node catalogue and model inventory, combined into a live ``/object_info``.

The catalogue was captured from a real ComfyUI without model files, so every model COMBO is
empty there; the simulator fills those lists from ``sim/models.toml`` (or settings) and the
LoadImage/LoadVideo/LoadAudio lists from its upload folder, as ComfyUI does from disk.
"""

from __future__ import annotations

import copy
import json
import tomllib
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from sim.schema import declared_slots

_HERE = Path(__file__).parent

# Folder list exactly as ComfyUI 0.27.0 answers GET /models (fixture 03).
MODEL_FOLDERS: tuple[str, ...] = (
    "checkpoints", "configs", "loras", "vae", "text_encoders", "diffusion_models",
    "clip_vision", "style_models", "embeddings", "diffusers", "vae_approx", "controlnet",
    "gligen", "upscale_models", "latent_upscale_models", "custom_nodes", "hypernetworks",
    "photomaker", "classifiers", "model_patches", "audio_encoders", "background_removal",
    "frame_interpolation", "geometry_estimation", "optical_flow", "detection",
)  # fmt: skip

# (class_type, input) -> the model folder ComfyUI lists for it.
MODEL_INPUTS: dict[tuple[str, str], str] = {
    ("CheckpointLoaderSimple", "ckpt_name"): "checkpoints",
    ("CheckpointLoader", "ckpt_name"): "checkpoints",
    ("ImageOnlyCheckpointLoader", "ckpt_name"): "checkpoints",
    ("unCLIPCheckpointLoader", "ckpt_name"): "checkpoints",
    ("CreateHookModelAsLora", "ckpt_name"): "checkpoints",
    ("CreateHookModelAsLoraModelOnly", "ckpt_name"): "checkpoints",
    ("LTXVAudioVAELoader", "ckpt_name"): "checkpoints",
    ("LTXAVTextEncoderLoader", "ckpt_name"): "checkpoints",
    ("LTXAVTextEncoderLoader", "text_encoder"): "text_encoders",
    ("CLIPLoader", "clip_name"): "text_encoders",
    ("DualCLIPLoader", "clip_name1"): "text_encoders",
    ("DualCLIPLoader", "clip_name2"): "text_encoders",
    ("TripleCLIPLoader", "clip_name1"): "text_encoders",
    ("TripleCLIPLoader", "clip_name2"): "text_encoders",
    ("TripleCLIPLoader", "clip_name3"): "text_encoders",
    ("QuadrupleCLIPLoader", "clip_name1"): "text_encoders",
    ("QuadrupleCLIPLoader", "clip_name2"): "text_encoders",
    ("QuadrupleCLIPLoader", "clip_name3"): "text_encoders",
    ("QuadrupleCLIPLoader", "clip_name4"): "text_encoders",
    ("UNETLoader", "unet_name"): "diffusion_models",
    ("VAELoader", "vae_name"): "vae",
    ("LoraLoader", "lora_name"): "loras",
    ("LoraLoaderModelOnly", "lora_name"): "loras",
    ("LoraLoaderBypass", "lora_name"): "loras",
    ("LoraLoaderBypassModelOnly", "lora_name"): "loras",
    ("CreateHookLora", "lora_name"): "loras",
    ("CreateHookLoraModelOnly", "lora_name"): "loras",
    ("LatentUpscaleModelLoader", "model_name"): "latent_upscale_models",
    ("UpscaleModelLoader", "model_name"): "upscale_models",
    ("ControlNetLoader", "control_net_name"): "controlnet",
    ("DiffControlNetLoader", "control_net_name"): "controlnet",
    ("CLIPVisionLoader", "clip_name"): "clip_vision",
    ("StyleModelLoader", "style_model_name"): "style_models",
    ("GLIGENLoader", "gligen_name"): "gligen",
    ("HypernetworkLoader", "hypernetwork_name"): "hypernetworks",
    ("PhotoMakerLoader", "photomaker_model_name"): "photomaker",
    ("AudioEncoderLoader", "audio_encoder_name"): "audio_encoders",
    ("ModelPatchLoader", "name"): "model_patches",
    ("DiffusersLoader", "model_path"): "diffusers",
}

# (class_type, input) -> which uploaded files ComfyUI offers (by file extension).
UPLOAD_INPUTS: dict[tuple[str, str], tuple[str, ...]] = {
    ("LoadImage", "image"): (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"),
    ("LoadImageMask", "image"): (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif"),
    ("LoadVideo", "file"): (".mp4", ".webm", ".mov", ".mkv", ".avi", ".gif"),
    ("LoadAudio", "audio"): (".wav", ".mp3", ".flac", ".ogg", ".opus", ".m4a", ".mp4", ".webm"),
}


@cache
def catalogue() -> Mapping[str, Any]:
    """The captured ``/object_info`` (572 classes), read once."""
    with (_HERE / "catalogue" / "object_info.json").open(encoding="utf-8") as handle:
        return json.load(handle)  # type: ignore[no-any-return]


def default_models() -> dict[str, list[str]]:
    """The model inventory shipped in ``sim/models.toml``."""
    with (_HERE / "models.toml").open("rb") as handle:
        folders = tomllib.load(handle)["folders"]
    return {folder: sorted(names) for folder, names in folders.items()}


def uploaded_files(input_dir: Path, extensions: tuple[str, ...]) -> list[str]:
    """Top-level files of the upload folder with one of ``extensions``, sorted like ComfyUI."""
    if not input_dir.is_dir():
        return []
    return sorted(
        p.name for p in input_dir.iterdir() if p.is_file() and p.suffix.lower() in extensions
    )


def _set_options(spec: list[Any], options: list[str]) -> None:
    if isinstance(spec[0], list):
        spec[0] = options + [o for o in spec[0] if o not in options]
    else:
        spec[1]["options"] = options + [o for o in spec[1].get("options", []) if o not in options]


@cache
def _with_models(frozen_models: tuple[tuple[str, tuple[str, ...]], ...]) -> dict[str, Any]:
    models = dict(frozen_models)
    info = copy.deepcopy(dict(catalogue()))
    for (class_type, name), folder in MODEL_INPUTS.items():
        spec = _raw_spec(info, class_type, name)
        if spec is not None:
            _set_options(spec, list(models.get(folder, ())))
    return info


def live_object_info(models: Mapping[str, list[str]], input_dir: Path) -> dict[str, Any]:
    """``/object_info`` with model and upload COMBO lists filled from the inventory.

    The result shares unchanged class entries with a cache: treat it as read-only.
    """
    frozen = tuple(sorted((folder, tuple(names)) for folder, names in models.items()))
    # Model lists are fixed per inventory (cached); upload lists follow the folder live.
    info = dict(_with_models(frozen))
    for (class_type, name), extensions in UPLOAD_INPUTS.items():
        if class_type not in info:
            continue
        info[class_type] = copy.deepcopy(info[class_type])
        spec = _raw_spec(info, class_type, name)
        if spec is not None:
            files = uploaded_files(input_dir, extensions)
            if isinstance(spec[0], list):
                spec[0] = files
            else:
                spec[1]["options"] = files
    return info


def _raw_spec(info: Mapping[str, Any], class_type: str, name: str) -> list[Any] | None:
    class_info = info.get(class_type)
    slot = declared_slots(class_info).get(name) if class_info is not None else None
    if class_info is None or slot is None:
        return None
    return class_info["input"][slot.category][name]  # type: ignore[no-any-return]
