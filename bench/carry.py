"""carry: from sequence N's GPU end to sequence N+1's submission, median over a chain.

Goal <= 0.3 s. The simulator records each prompt's submission (`create_time` in
`/api/jobs`, whole milliseconds) and its execution start and end (`/reelflow-sim/stats`),
so the gap is measured directly, not inferred from idle GPU time.

A chain of 8 at the stress rate (1.5 GPU s per output s), of 4 at the production rate (7).
Every sequence is heard by the dialogue check while the next one is prepared.

    .venv/bin/python -m bench.carry [--rate both] [--sequences N]
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import Any

from bench import common
from bench.timeline import render_task_overheads, task_durations

GOAL = 0.3
SEQUENCES = {"stress": 8, "production": 4}


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
        "load_average": common.load_average(),
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
    arguments.add_argument("--sequences", type=int, default=None, help="default: 8, 4 at 7")
    options = arguments.parse_args()
    figures = {}
    with common.workdir(options.workdir, "carry") as folder:
        for rate in common.chosen_rates(options.rate):
            sequences = options.sequences or SEQUENCES[rate.name]
            figure = measure(folder / rate.name, sequences, rate.gpu_cost)
            figures[rate.name] = figure
            print(f"[{rate.name}] sequence prompts: {figure['sequence_prompts']} of {sequences}")
            print(f"[{rate.name}] gaps (s): {figure['gaps_s']}")
            overheads, durations = figure["gpu_task_overheads_s"], figure["task_durations_s"]
            print(f"[{rate.name}] render task before submit / after GPU end: {overheads}")
            print(f"[{rate.name}] carry-frame task: {durations.get('carry-frame')}")
    print(f"results: {common.write_result('carry', figures, {})}")
    print(
        common.at_rates("carry", figures, "{median_s:.3f} s ({verdict})")
        + f" (median GPU end -> next submission, goal <= {GOAL} s)"
    )


if __name__ == "__main__":
    main()
