"""The figures a fleet run is judged by, from the simulators' own records and the films'
plans: prompts against planned renders, slot discipline, makespan against its lower bound,
model loads per server against the minimum. Used by tests/test_fleet.py and bench/fleet.py.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from prefect.client.schemas.objects import FlowRun

from sim.settings import SimSettings
from tasks.plan import plan_screenplay
from tasks.schema.film_plan import FilmPlan
from tasks.schema.options import FilmOptions
from tests.fleet_helpers import Fleet


@dataclass(frozen=True)
class ServerFigure:
    """One simulated GPU after the films: prompts, loads against the minimum, discipline."""

    url: str
    prompts: int
    loads: int
    minimum_loads: int
    load_order: tuple[str, ...]
    busy_s: float
    queued_behind: int
    overlapping: int


def graph_key(graph: Any) -> str:
    return hashlib.sha256(json.dumps(graph, sort_keys=True).encode()).hexdigest()


def server_figure(url: str) -> tuple[ServerFigure, list[dict[str, Any]]]:
    """A simulator's own record; also its executions with their prompt graphs' keys.

    `queued_behind`: prompts the server accepted while another was still on its GPU (a
    slot held by two renders); `overlapping`: executions that overlap in time.
    """
    stats = httpx.get(f"{url}/reelflow-sim/stats", timeout=30).json()
    jobs = httpx.get(f"{url}/api/jobs", params={"limit": 100000}, timeout=30).json()["jobs"]
    history = httpx.get(f"{url}/history", timeout=30).json()
    created = {job["id"]: job["create_time"] for job in jobs}
    runs = sorted(stats["executions"], key=lambda e: e["start"])
    for run in runs:
        entry = history.get(run["prompt_id"], {})
        run["graph"] = graph_key(entry.get("prompt", [None, None, None])[2])
    pairs = list(itertools.pairwise(runs))
    families = {run["family"] for run in runs if run["family"]}
    figure = ServerFigure(
        url=url,
        prompts=len(runs),
        loads=sum(stats["model_loads"].values()),
        minimum_loads=len(families),
        load_order=tuple(run["family"] for run in runs if run["load_s"] > 0),
        busy_s=round(stats["gpu_busy_seconds"], 3),
        queued_behind=sum(created[b["prompt_id"]] < a["end_ms"] for a, b in pairs),
        overlapping=sum(b["start"] < a["end"] for a, b in pairs),
    )
    return figure, runs


@dataclass(frozen=True)
class PlannedWork:
    """What a film asks of the GPUs: renders, their GPU seconds, its longest chain."""

    renders: int
    families: frozenset[str]
    work_s: float
    critical_path_s: float


def planned_work(plan: FilmPlan, rate: float) -> PlannedWork:
    """GPU seconds at `rate` per output second (a keyframe is one output second, as the
    simulator counts it). The critical path is the longest chain (its keyframe, then its
    sequences one after another) or the longest cue, whichever is longer: a bound whether
    cues wait for the sequences or not."""
    seconds = {sequence.index: sequence.seconds for sequence in plan.sequences}
    keyframes = [chain for chain in plan.chains if chain.keyframe.prompt is not None]
    chains = [
        (1.0 if chain.keyframe.prompt is not None else 0.0)
        + sum(seconds[index] for index in chain.sequences)
        for chain in plan.chains
    ]
    families = {"ltx", *(["image"] if keyframes else []), *(["ace_step"] if plan.cues else [])}
    output = len(keyframes) + sum(seconds.values()) + sum(cue.duration_s for cue in plan.cues)
    return PlannedWork(
        renders=len(keyframes) + len(plan.sequences) + len(plan.cues),
        families=frozenset(families),
        work_s=rate * output,
        critical_path_s=rate * max([*chains, *(cue.duration_s for cue in plan.cues)]),
    )


def plan_of(screenplay: Path) -> FilmPlan:
    return plan_screenplay(screenplay, FilmOptions())


@dataclass(frozen=True)
class FleetFigure:
    """Makespan against its lower bound, and model loads per server against the minimum.

    Lower bound: max(total GPU seconds / servers, the longest film's critical path), where
    the total is the planned work plus one load of each family used (each must be loaded
    somewhere) and the critical path starts with a load (the simulators start empty).
    """

    planned_renders: int
    prompts: int
    rerendered: int
    rerendered_s: float
    makespan_s: float
    gpu_phase_s: float
    total_gpu_s: float
    critical_path_s: float
    lower_bound_s: float
    servers: tuple[ServerFigure, ...]
    timeline: tuple[tuple[str, str, float, float, float], ...] = ()
    """(server, family, start, end, load seconds) of every prompt, seconds from the first
    flow run's start."""

    @property
    def ratio(self) -> float:
        return self.makespan_s / self.lower_bound_s

    @property
    def gpu_phase_ratio(self) -> float:
        return self.gpu_phase_s / self.lower_bound_s

    @property
    def loads(self) -> int:
        return sum(server.loads for server in self.servers)

    @property
    def minimum_loads(self) -> int:
        return sum(server.minimum_loads for server in self.servers)


def fleet_figure(
    fleet: Fleet, runs: Sequence[FlowRun], screenplays: Sequence[Path], settings: SimSettings
) -> FleetFigure:
    rate = settings.gpu_seconds_per_output_second
    plans = [planned_work(plan_of(path), rate) for path in screenplays]
    figures = [server_figure(url) for url in fleet.urls]
    executions = [run for _, server_runs in figures for run in server_runs]
    seen: set[str] = set()
    again = []
    for run in sorted(executions, key=lambda e: e["start"]):
        if run["graph"] in seen:
            again.append(run)
        seen.add(run["graph"])
    families = frozenset().union(*(plan.families for plan in plans))
    loads = settings.model_load_seconds
    total = sum(plan.work_s for plan in plans) + sum(getattr(loads, f) for f in families)
    first_load = max(getattr(loads, f) for f in families)
    critical = max(plan.critical_path_s for plan in plans) + first_load
    starts = [run.start_time.timestamp() for run in runs if run.start_time]
    ends = [run.end_time.timestamp() for run in runs if run.end_time]
    return FleetFigure(
        planned_renders=sum(plan.renders for plan in plans),
        prompts=len(executions),
        rerendered=len(again),
        rerendered_s=round(sum(run["end"] - run["start"] for run in again), 3),
        makespan_s=round(max(ends) - min(starts), 3),
        gpu_phase_s=round(
            max(e["end"] for e in executions) - min(e["start"] for e in executions), 3
        ),
        total_gpu_s=round(total, 3),
        critical_path_s=round(critical, 3),
        lower_bound_s=round(max(total / len(fleet.sims), critical), 3),
        servers=tuple(figure for figure, _ in figures),
        timeline=tuple(
            (
                url,
                run["family"],
                round(run["start"] - min(starts), 2),
                round(run["end"] - min(starts), 2),
                run["load_s"],
            )
            for (figure, server_runs), url in zip(figures, fleet.urls, strict=True)
            for run in server_runs
        ),
    )


def describe(figure: FleetFigure) -> list[str]:
    """The figure as a reader wants it: the ratio first, then each server's loads."""
    lines = [
        f"makespan {figure.makespan_s:.1f} s / lower bound {figure.lower_bound_s:.1f} s = "
        f"{figure.ratio:.2f} (GPU phase {figure.gpu_phase_s:.1f} s = "
        f"{figure.gpu_phase_ratio:.2f}); total GPU {figure.total_gpu_s:.1f} s, critical path "
        f"{figure.critical_path_s:.1f} s",
        f"prompts {figure.prompts} for {figure.planned_renders} planned renders, "
        f"{figure.rerendered} rendered again ({figure.rerendered_s:.1f} GPU s)",
        f"model loads {figure.loads} (minimum {figure.minimum_loads}, one per family a server ran)",
    ]
    for server in figure.servers:
        lines.append(
            f"  {server.url}: {server.prompts} prompts, {server.loads} loads (minimum "
            f"{server.minimum_loads}: {','.join(server.load_order) or '-'}), busy "
            f"{server.busy_s:.1f} s, queued behind another {server.queued_behind}"
        )
    return lines
