"""carry: from sequence N's GPU end to sequence N+1's submission, median over a chain.

Goal <= 0.3 s. The simulator records each prompt's submission (`create_time` in
`/api/jobs`, whole milliseconds) and its execution start and end (`/reelflow-sim/stats`),
so the gap is measured directly, not inferred from idle GPU time.

    .venv/bin/python -m bench.carry [--sequences 8] [--gpu-cost 0.5]
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import Any

from bench import common
from bench.timeline import render_task_overheads, task_durations

GOAL = 0.3


def measure(folder: Path, sequences: int, gpu_cost: float) -> dict[str, Any]:
    with common.prefect_api(), common.simulators(1, gpu_cost, folder) as sims:
        url = sims[0].url
        screenplay = common.write_screenplay(folder, common.film_scenes([sequences], 5.0))
        run = common.run_film(screenplay, folder / "out", [url])
        gpu = [e for e in common.executions(url) if e.kind == "sequence"]
        runs = common.task_runs(run.flow_run_id)
    gaps = [later.submitted - earlier.end for earlier, later in pairwise(gpu)]
    figure = common.summary(gaps)["median"]
    return {
        "median_s": figure,
        "goal": GOAL,
        "verdict": common.verdict(figure, GOAL),
        "gaps_s": [round(gap, 4) for gap in gaps],
        "summary_s": common.summary(gaps),
        "sequence_prompts": len(gpu),
        "planned_sequences": sequences,
        "gpu_task_overheads_s": render_task_overheads(runs, gpu),
        "task_durations_s": task_durations(runs),
    }


def main() -> None:
    arguments = common.parser(__doc__ or "")
    arguments.add_argument("--sequences", type=int, default=8)
    arguments.add_argument("--gpu-cost", type=float, default=0.5, help="GPU s per output s")
    options = arguments.parse_args()
    with common.workdir(options.workdir, "carry") as folder:
        figure = measure(folder, options.sequences, options.gpu_cost)
    path = common.write_result("carry", figure, {"gpu_cost": options.gpu_cost})
    print(f"sequence prompts: {figure['sequence_prompts']} (planned {options.sequences})")
    print(f"gaps (s): {figure['gaps_s']}")
    print(f"render task: before submit / after GPU end: {figure['gpu_task_overheads_s']}")
    print(f"carry-frame task: {figure['task_durations_s'].get('carry-frame')}")
    print(f"results: {path}")
    print(
        f"carry: median GPU end -> next submission {figure['median_s']:.3f} s "
        f"(goal <= {GOAL}: {figure['verdict']})"
    )


if __name__ == "__main__":
    main()
