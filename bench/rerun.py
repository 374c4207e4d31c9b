"""rerun: an unchanged film run again: prompts submitted (goal 0), wall / first run (<= 3 %).

.venv/bin/python -m bench.rerun [--chains 2] [--length 3] [--gpu-cost 1.0]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import common
from bench.timeline import film_timeline

GOAL_PROMPTS = 0
GOAL_RATIO = 0.03


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
    arguments.add_argument("--length", type=int, default=3, help="sequences per chain")
    arguments.add_argument("--gpu-cost", type=float, default=1.0, help="GPU s per output s")
    options = arguments.parse_args()
    with common.workdir(options.workdir, "rerun") as folder:
        figure = measure(folder, options.chains, options.length, options.gpu_cost)
    path = common.write_result("rerun", figure, {"gpu_cost": options.gpu_cost})
    print(f"first run: {figure['first_wall_s']} s, {figure['first_prompts']} prompts")
    print(
        f"re-run: call -> flow start {figure['rerun']['call_to_flow_start_s']} s, "
        f"{figure['rerun']['task_runs']} task runs"
    )
    print(f"re-run task durations: {figure['rerun']['task_durations_s']}")
    print(f"results: {path}")
    print(
        f"rerun: {figure['prompts_submitted']} prompts submitted, wall "
        f"{figure['rerun_wall_s']:.2f} s / {figure['first_wall_s']:.2f} s = "
        f"{figure['ratio'] * 100:.1f} % (goal 0 and <= 3 %: {figure['verdict']})"
    )


if __name__ == "__main__":
    main()
