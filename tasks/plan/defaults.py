"""Typed settings, loaded once from config/defaults.toml and passed down."""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from tasks.runtime.files import CONFIG_DIR


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PlanRules(_Frozen):
    """The production rules the planner encodes."""

    seconds_per_word: float = Field(gt=0)
    dialogue_margin_seconds: float = Field(ge=0)
    min_dialogue_scene_seconds: float = Field(gt=0)
    max_line_seconds: float = Field(gt=0)
    no_music_clause: str
    negative_music_terms: tuple[str, ...]
    negative_defect_terms: tuple[str, ...]


class CueRules(_Frozen):
    """How the film is split into score cues."""

    seconds_per_cue: float = Field(gt=0)
    feature_seconds: float = Field(gt=0)
    min_cues_feature: int = Field(ge=1)
    max_cues: int = Field(ge=1)
    tail_seconds: float = Field(ge=0)
    max_generation_seconds: float = Field(gt=10)
    min_zone_seconds: float = Field(gt=0)


class EstimateRates(_Frozen):
    """GPU seconds per output second, used for the plan's estimate."""

    relay_fast: float = Field(gt=0)
    relay_quality: float = Field(gt=0)
    relay_startup_seconds: float = Field(ge=0)
    keyframe_seconds: float = Field(ge=0)
    cue_per_second: float = Field(gt=0)


class Defaults(_Frozen):
    plan: PlanRules
    cues: CueRules
    estimate: EstimateRates


@cache
def load_defaults(path: Path = CONFIG_DIR / "defaults.toml") -> Defaults:
    with path.open("rb") as handle:
        return Defaults.model_validate(tomllib.load(handle))
