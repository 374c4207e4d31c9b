"""Typed settings of the ComfyUI-compatible simulator, including its injectable faults."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Faults(BaseModel):
    """Failures the simulator can be told to produce, for tests and benchmarks."""

    model_config = ConfigDict(extra="forbid")

    refuse_connections_for_s: float = Field(
        0.0, ge=0, description="After start, keep the port closed for this long."
    )
    fail_submit_status: int | None = Field(
        None, description="HTTP status answered to POST /prompt while fail_submit_count > 0."
    )
    fail_submit_count: int = Field(1, ge=0, description="How many submissions fail.")
    oom_on_prompt_n: int | None = Field(
        None, ge=1, description="The Nth executed prompt fails with torch.OutOfMemoryError."
    )
    drop_ws_after_s: float | None = Field(
        None, ge=0, description="Close client websockets this long into each prompt."
    )
    crash_mid_prompt_n: int | None = Field(
        None, ge=1, description="The process exits hard halfway through the Nth prompt."
    )
    narration_in_silent_segments: bool = Field(
        False, description="Speak the segment's scene text where it has no dialogue."
    )
    word_salad_in_silent_segments: bool = Field(
        False, description="Speak nonsense words where a segment has no dialogue."
    )
    title_card: str | None = Field(
        None, description="A title phrase spoken at the very start of every video."
    )


class ModelLoadSeconds(BaseModel):
    """Simulated weight-loading time, paid when the loaded model family changes."""

    model_config = ConfigDict(extra="forbid")

    ltx: float = Field(0.0, ge=0)
    ace_step: float = Field(0.0, ge=0)
    image: float = Field(0.0, ge=0)


class SimSettings(BaseModel):
    """Everything that shapes one simulator process."""

    model_config = ConfigDict(extra="forbid")

    gpu_seconds_per_output_second: float = Field(
        0.05, ge=0, description="Simulated GPU occupancy per second of output media."
    )
    models: dict[str, list[str]] | None = Field(
        None, description="Model folder -> file names; replaces sim/models.toml when set."
    )
    model_load_seconds: ModelLoadSeconds = Field(default_factory=ModelLoadSeconds)
    faults: Faults = Field(default_factory=Faults)
