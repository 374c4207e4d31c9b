"""Model file names per render mode and family, from config/models.toml."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from tasks.comfyui.errors import TemplateError
from tasks.runtime.files import CONFIG_DIR

MODELS_TOML = CONFIG_DIR / "models.toml"
RenderMode = Literal["fast", "quality"]
FAMILIES = ("ltx23", "keyframe", "keyframe_cast", "acestep15")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LtxModels(_Frozen):
    checkpoint: str
    text_encoder: str
    distilled_lora: str
    distilled_lora_strength: float
    sigmas: str
    cfg: float
    id_lora: str
    identity_guidance: float


class KeyframeModels(_Frozen):
    diffusion_model: str
    text_encoder: str
    vae: str
    steps: int


class CastKeyframeModels(_Frozen):
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
    keyframe_cast: CastKeyframeModels
    acestep15: CueModels


def load_models(mode: RenderMode, path: Path = MODELS_TOML) -> ModelSet:
    with path.open("rb") as fh:
        table = tomllib.load(fh)
    try:
        families = {family: table[family][mode] for family in FAMILIES}
    except KeyError as exc:
        raise TemplateError(f"{path}: no [{exc.args[0]}] models for mode '{mode}'") from exc
    return ModelSet.model_validate({"mode": mode, **families})


def model_folders(path: Path = MODELS_TOML) -> dict[str, str]:
    """``"Class.input" -> models folder``, for naming where a missing file belongs."""
    with path.open("rb") as fh:
        return dict(tomllib.load(fh).get("model_folders", {}))
