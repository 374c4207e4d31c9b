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


class NodeCost(BaseModel):
    """Time a model-free node holds the worker, in proportion to the work it does."""

    model_config = ConfigDict(extra="forbid")

    seconds: float = Field(0.0, ge=0, description="Fixed seconds per execution.")
    per_megapixel: float = Field(
        0.0, ge=0, description="Seconds per million pixels it outputs (all frames)."
    )
    per_megasample: float = Field(
        0.0, ge=0, description="Seconds per million audio samples it outputs (all channels)."
    )


def _default_node_costs() -> dict[str, NodeCost]:
    # Capture 16: colour transfer of 150 frames of 512x512 runs for seconds on a CPU.
    return {"ColorTransfer": NodeCost(per_megapixel=0.5)}


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
    model_free_cost: NodeCost = Field(
        default_factory=lambda: NodeCost(per_megapixel=0.015, per_megasample=0.005),
        description="Cost of every model-free node the simulator computes (capture 16: "
        "an EmptyImage of 150 frames of 512x512 took 0.55 s).",
    )
    node_costs: dict[str, NodeCost] = Field(
        default_factory=_default_node_costs, description="Per class_type overrides."
    )
    faults: Faults = Field(default_factory=Faults)

    def cost_of(self, class_type: str) -> NodeCost:
        """The cost model of one node class."""
        return self.node_costs.get(class_type, self.model_free_cost)
