"""What a film run reports about its GPUs: model families, and the loads each server did."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

Family = Literal["image", "ltx", "ace_step"]


FAMILIES: tuple[Family, ...] = get_args(Family)
SCORE_FAMILY: Family = "ace_step"
"""The model family of score cues (ACE-Step)."""


LoadReason = Literal["needed", "starving", "unaware"]


class ServerLoads(BaseModel):
    """One server's model loads in a film run, against the fewest it could have done."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    server: str
    prompts: int
    families: tuple[Family, ...] = Field(description="The families it ran.")
    load_order: tuple[Family, ...] = Field(description="The family of each load, in order.")
    loads: int
    switches: int = Field(description="Loads that replaced a loaded family.")
    minimum_loads: int = Field(description="One load per family the server ran.")
    load_seconds: float = Field(description="Measured render time beyond the estimated work.")
    reasons: dict[LoadReason, int]


class ScheduleReport(BaseModel):
    """Model loads per server for one film, and the minimum: one per family per server used."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    policy: Literal["aware", "unaware"]
    servers: tuple[ServerLoads, ...]
    loads: int
    minimum_loads: int
    load_seconds: float
    minimum_load_seconds: float
    notes: tuple[str, ...] = Field(description="Why a server loaded more than its minimum.")
