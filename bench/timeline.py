"""Where a film run's wall time went: GPU executions against Prefect's task-run records.

All timestamps are unix seconds on this host: the simulator's `time.time()` and Prefect's
UTC datetimes share one clock.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import Execution, FilmRun, gpu_idle_gaps, summary


def task_kind(name: str) -> str:
    """`render-seq3` -> `render`, `carry-frame-1a2b3c4d5e6f` -> `carry-frame`."""
    return re.sub(r"-(seq|chain)[0-9]+$|(?<=cue)[0-9]+$|-[0-9a-f]{12}$", "", name)


def _by_name(runs: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        if run["name"] != "flow" and run["start"] is not None and run["end"] is not None:
            grouped[task_kind(run["name"])].append(run)
    return grouped


def task_durations(runs: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per task kind (render, carry-frame, check, ...): how long its runs took, as summaries."""
    return {
        name: summary([run["end"] - run["start"] for run in group])
        for name, group in sorted(_by_name(runs).items())
    }


def render_task_overheads(
    runs: Sequence[dict[str, Any]], gpu: Sequence[Execution]
) -> dict[str, dict[str, float]]:
    """For each GPU task run, the time before its prompt was accepted and after it ended.

    `before`: task start (Prefect) -> prompt accepted by the server (fetch inputs, take a
    slot, upload, open the websocket, submit). `after`: GPU end -> task end (download,
    verification, store, result persistence). A task run is matched to the execution
    that lies inside it.
    """
    before: list[float] = []
    after: list[float] = []
    tasks = [
        run
        for run in runs
        if run["name"] != "flow"
        and run["start"] is not None
        and run["end"] is not None
        and task_kind(run["name"]) in ("render", "keyframe", "render-cue")
    ]
    for execution in gpu:
        inside = [t for t in tasks if t["start"] <= execution.submitted + 0.002 <= t["end"] + 0.002]
        inside = [t for t in inside if t["end"] >= execution.end - 0.002]
        if not inside:
            continue
        task = min(inside, key=lambda t: t["end"] - t["start"])
        before.append(execution.submitted - task["start"])
        after.append(task["end"] - execution.end)
    return {"before_submit": summary(before), "after_gpu_end": summary(after)}


def film_timeline(
    run: FilmRun, gpu: Sequence[Execution], runs: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """The wall time of one film run split into GPU work and what surrounded it."""
    flow = next((r for r in runs if r["name"] == "flow"), {})
    first_submit = min(e.submitted for e in gpu) if gpu else run.ended
    last_end = max(e.end for e in gpu) if gpu else run.started
    busy = sum(e.gpu_s for e in gpu)
    gaps = []
    for server in {e.server for e in gpu}:
        gaps.extend(gpu_idle_gaps([e for e in gpu if e.server == server]))
    return {
        "wall_s": round(run.wall_s, 3),
        "gpu_busy_s": round(busy, 3),
        "prompts": len(gpu),
        "call_to_flow_start_s": round(flow["start"] - run.started, 3)
        if flow.get("start")
        else None,
        "call_to_first_submit_s": round(first_submit - run.started, 3),
        "gpu_idle_gaps_s": summary(gaps),
        "last_gpu_end_to_return_s": round(run.ended - last_end, 3),
        "flow_stages_s": flow_stages(run),
        "task_runs": len([r for r in runs if r["name"] != "flow"]),
        "task_durations_s": task_durations(runs),
        "gpu_task_overheads_s": render_task_overheads(runs, gpu),
    }


def flow_stages(run: FilmRun) -> dict[str, float]:
    """The flow's own stage timer (render, score, mux), as its manifest records it."""
    manifest = Path(run.result.folder) / "manifest.json"
    if not manifest.exists():
        return {}
    timings: dict[str, float] = json.loads(manifest.read_text()).get("timings_s", {})
    return timings
