"""GPU time before it is spent and after: the estimate of what remains, what each stage
actually spent, and rates that learn from the renders of the same server.

The plan's estimate (`plan.estimate`) uses the rates in config/defaults.toml. After each run
the GPU seconds measured per stage are compared with what those default rates said the same
renders would take, and the sums are kept in the store, with the cached results
(`results/estimates/<servers>.json`; in a bucket, under the results prefix). The next run on
the same servers scales each stage's default estimate by measured / estimated, so its
estimate is closer; the manifest reports how far off it was.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from prefect.filesystems import WritableFileSystem
from pydantic import BaseModel, ConfigDict

from tasks.runtime.store import call_filesystem
from tasks.schema.film_plan import FilmPlan
from tasks.schema.record import CostEntry, StageCost

Stage = Literal["keyframes", "sequences", "cues"]
STAGES: tuple[Stage, ...] = ("keyframes", "sequences", "cues")
RATES_FOLDER = "estimates"


class StageRecord(BaseModel):
    """Measured renders of one stage on one set of servers, beside their default estimate."""

    model_config = ConfigDict(extra="forbid")

    estimated_s: float = 0.0
    measured_s: float = 0.0
    renders: int = 0

    @property
    def factor(self) -> float | None:
        """Measured over estimated (None: nothing measured yet)."""
        if self.renders == 0 or self.estimated_s <= 0:
            return None
        return self.measured_s / self.estimated_s


class LearnedRates(BaseModel):
    """What the renders on one set of servers cost, relative to the default rates."""

    model_config = ConfigDict(extra="forbid")

    servers: list[str]
    mode: str
    stages: dict[Stage, StageRecord] = {}

    def factor(self, stage: Stage) -> float:
        record = self.stages.get(stage)
        return (record.factor if record is not None else None) or 1.0

    @property
    def renders(self) -> int:
        return sum(record.renders for record in self.stages.values())


def rates_key(servers: Iterable[str], mode: str) -> str:
    """The record's name: the same servers (in any order) and mode share one."""
    document = json.dumps({"servers": sorted(servers), "mode": mode})
    return f"{RATES_FOLDER}/{hashlib.sha256(document.encode()).hexdigest()[:24]}.json"


async def load_rates(results: WritableFileSystem, servers: list[str], mode: str) -> LearnedRates:
    """The rates learned on these servers so far (none yet: an empty record)."""
    try:
        data = await call_filesystem(results.read_path, rates_key(servers, mode))
        return LearnedRates.model_validate_json(data)
    except Exception:  # no record yet, or one this version cannot read: start afresh
        return LearnedRates(servers=sorted(servers), mode=mode)


async def save_rates(results: WritableFileSystem, rates: LearnedRates) -> None:
    key = rates_key(rates.servers, rates.mode)
    await call_filesystem(results.write_path, key, rates.model_dump_json(indent=2).encode())


def minutes(seconds: float) -> str:
    """GPU time as a person reads it: `0.4 s`, `45 s`, `12.5 min`, `3.2 h`."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def default_estimate(plan: FilmPlan, *, keyframes: bool) -> dict[Stage, float]:
    """The plan's estimate per stage at the default rates (no keyframes in text-to-video)."""
    estimate = plan.estimate
    return {
        "keyframes": estimate.keyframes_s if keyframes else 0.0,
        "sequences": estimate.sequences_s,
        "cues": estimate.cues_s,
    }


def render_counts(plan: FilmPlan, *, keyframes: bool) -> dict[Stage, int]:
    """Renders each stage needs when nothing is cached: every take counts."""
    generated = sum(1 for chain in plan.chains if chain.keyframe.source_image is None)
    return {
        "keyframes": generated if keyframes else 0,
        "sequences": sum(sequence.takes for sequence in plan.sequences),
        "cues": len(plan.cues),
    }


@dataclass
class GpuLedger:
    """One run's GPU time: estimated per stage before any work, charged per stage as it goes.

    `charge(stage, prompts, gpu_seconds)` is given the run's running totals; whatever they
    grew by since the last charge belongs to `stage`.
    """

    plan: FilmPlan
    learned: LearnedRates
    keyframes: bool = True
    prompts: dict[Stage, int] = field(default_factory=lambda: dict.fromkeys(STAGES, 0))
    spent: dict[Stage, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    _seen: tuple[int, float] = (0, 0.0)

    def planned(self, plan: FilmPlan | None = None) -> dict[Stage, float]:
        """The estimate per stage with the learned rates (of `plan`, else the first plan)."""
        base = default_estimate(plan or self.plan, keyframes=self.keyframes)
        return {stage: base[stage] * self.learned.factor(stage) for stage in STAGES}

    def per_render(self, plan: FilmPlan | None = None) -> dict[Stage, float]:
        """The estimate of one render of each stage (its mean), learned rates applied."""
        planned = self.planned(plan)
        counts = render_counts(plan or self.plan, keyframes=self.keyframes)
        return {stage: planned[stage] / counts[stage] if counts[stage] else 0.0 for stage in STAGES}

    def remaining(self, plan: FilmPlan, done: Iterable[Stage]) -> dict[Stage, float]:
        """The estimate of the stages not done yet, for the plan as it stands now."""
        finished = set(done)
        planned = self.planned(plan)
        return {stage: planned[stage] for stage in STAGES if stage not in finished}

    def charge(
        self,
        stage: Stage,
        prompts: int,
        gpu_seconds: float,
        *,
        score_prompts: int = 0,
        score_gpu_seconds: float = 0.0,
    ) -> None:
        """Charge `stage` with the run's GPU work since the last charge (totals so far given).

        The score's cues render beside the chains, so their share (`score_*`, totals so far,
        included in the totals) is charged to the cues by model, whenever it was spent.
        """
        prompts, gpu_seconds = prompts - score_prompts, gpu_seconds - score_gpu_seconds
        seen_prompts, seen_seconds = self._seen
        self.prompts[stage] += prompts - seen_prompts
        self.spent[stage] += gpu_seconds - seen_seconds
        self._seen = (prompts, gpu_seconds)
        self.prompts["cues"], self.spent["cues"] = score_prompts, score_gpu_seconds

    def entry(self) -> CostEntry:
        """Estimate beside spending, per stage, for the manifest and the end report."""
        planned, each = self.planned(), self.per_render()
        stages = [
            StageCost(
                stage=stage,
                planned_s=round(planned[stage], 1),
                renders=self.prompts[stage],
                estimated_s=round(each[stage] * self.prompts[stage], 1),
                spent_s=round(self.spent[stage], 1),
            )
            for stage in STAGES
        ]
        estimated = sum(s.estimated_s for s in stages)
        spent = sum(self.spent.values())
        return CostEntry(
            stages=stages,
            planned_s=round(sum(planned.values()), 1),
            estimated_s=round(estimated, 1),
            spent_s=round(spent, 1),
            error_pct=round(100 * (estimated - spent) / spent, 1) if spent > 0 else None,
            rates=self.rates_source(),
        )

    def rates_source(self) -> str:
        renders = self.learned.renders
        if renders == 0:
            return "default rates (config/defaults.toml); none measured on these servers yet"
        return f"learned from {renders} earlier render(s) on these servers"

    def learn(self) -> LearnedRates:
        """The learned rates with this run's measured renders added."""
        base = default_estimate(self.plan, keyframes=self.keyframes)
        counts = render_counts(self.plan, keyframes=self.keyframes)
        stages = dict(self.learned.stages)
        for stage in STAGES:
            ran = self.prompts[stage]
            if ran == 0 or counts[stage] == 0:
                continue
            before = stages.get(stage, StageRecord())
            stages[stage] = StageRecord(
                estimated_s=before.estimated_s + base[stage] / counts[stage] * ran,
                measured_s=before.measured_s + self.spent[stage],
                renders=before.renders + ran,
            )
        return self.learned.model_copy(update={"stages": stages})


def remaining_line(remaining: Mapping[Stage, float], plan: FilmPlan) -> str:
    """`GPU estimate of what remains: 4.1 min (sequences 3.9 min for 6 takes, cues 12 s)`."""
    takes = sum(sequence.takes for sequence in plan.sequences)
    parts = []
    for stage, seconds in remaining.items():
        if seconds <= 0:  # no cues without a score, no keyframes in text-to-video
            continue
        extra = (
            f" for {takes} takes of {len(plan.sequences)} sequences"
            if stage == "sequences" and takes > len(plan.sequences)
            else ""
        )
        parts.append(f"{stage} {minutes(seconds)}{extra}")
    total = sum(remaining.values())
    return f"GPU estimate of what remains: {minutes(total)} ({', '.join(parts) or 'nothing'})"


def cost_lines(cost: CostEntry) -> list[str]:
    """The estimate beside what was spent, per stage, for a report."""
    lines = [
        f"{s.stage}: estimated {minutes(s.planned_s)} for the stage, {minutes(s.estimated_s)} "
        f"for the {s.renders} render(s) that ran; spent {minutes(s.spent_s)}"
        for s in cost.stages
        if s.planned_s or s.renders  # no cues without a score, no keyframes in t2v
    ]
    error = "n/a (nothing rendered)" if cost.error_pct is None else f"{cost.error_pct:+.0f}%"
    lines.append(
        f"total: estimated {minutes(cost.estimated_s)}, spent {minutes(cost.spent_s)}; "
        f"estimate error {error}; {cost.rates}"
    )
    return lines
