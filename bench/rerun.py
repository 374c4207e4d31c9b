"""rerun: an unchanged film run again: prompts submitted (goal 0), wall / first run (<= 3 %).

Two chains of 3 sequences at the stress rate (1.5 GPU s per output s), of 2 at the
production rate (7), so the first render stays under 3 minutes.

    .venv/bin/python -m bench.rerun [--rate both] [--chains 2] [--length N]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import common
from bench.timeline import film_timeline

GOAL_PROMPTS = 0
GOAL_RATIO = 0.03
LENGTH = {"stress": 3, "production": 2}


def measure(folder: Path, chains: int, length: int, gpu_cost: float) -> dict[str, Any]:
    with common.prefect_api(), common.simulators(1, gpu_cost, folder) as sims:
        url = sims[0].url
        screenplay = common.write_screenplay(folder, common.film_scenes([length] * chains, 5.0))
        first = common.run_film(screenplay, folder / "out", [url])
        submitted = common.sim_stats(url)["prompts_submitted"]
        again = common.run_film(screenplay, folder / "out", [url])
        resubmitted = common.sim_stats(url)["prompts_submitted"] - submitted
        first_gpu = common.executions(url)
        rerun_timeline = film_timeline(again, [], common.task_runs(again.flow_run_id))
    ratio = again.wall_s / first.wall_s
    met = resubmitted <= GOAL_PROMPTS and ratio <= GOAL_RATIO
    return {
        "prompts_submitted": resubmitted,
        "ratio": round(ratio, 4),
        "percent": round(ratio * 100, 2),
        "load_average": common.load_average(),
        "goal": {"prompts": GOAL_PROMPTS, "ratio": GOAL_RATIO},
        "verdict": "met" if met else "MISSED",
        "first_wall_s": round(first.wall_s, 3),
        "first_prompts": len(first_gpu),
        "rerun_wall_s": round(again.wall_s, 3),
        "rerun": rerun_timeline,
    }


def main() -> None:
    arguments = common.parser(__doc__ or "")
    arguments.add_argument("--chains", type=int, default=2)
    arguments.add_argument("--length", type=int, default=None, help="sequences per chain")
    options = arguments.parse_args()
    figures = {}
    with common.workdir(options.workdir, "rerun") as folder:
        for rate in common.chosen_rates(options.rate):
            length = options.length or LENGTH[rate.name]
            figure = measure(folder / rate.name, options.chains, length, rate.gpu_cost)
            figures[rate.name] = figure
            rerun = figure["rerun"]
            print(
                f"[{rate.name}] first run: {options.chains} chains of {length}, "
                f"{figure['first_wall_s']} s, {figure['first_prompts']} prompts"
            )
            print(
                f"[{rate.name}] re-run: call -> flow start {rerun['call_to_flow_start_s']} s, "
                f"{rerun['task_runs']} task runs, stages {rerun['flow_stages_s']}"
            )
            print(f"[{rate.name}] re-run task durations: {rerun['task_durations_s']}")
            print(
                f"[{rate.name}] {figure['prompts_submitted']} prompts, wall "
                f"{figure['rerun_wall_s']:.2f} s / {figure['first_wall_s']:.2f} s"
            )
    print(f"results: {common.write_result('rerun', figures, {})}")
    print(
        common.at_rates(
            "rerun", figures, "{prompts_submitted} prompts, {percent:.1f} % ({verdict})"
        )
        + " (re-run wall / first run, goal 0 prompts and <= 3 %)"
    )


if __name__ == "__main__":
    main()
