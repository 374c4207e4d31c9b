"""overhead: a film on one server; film-flow wall time / simulated GPU busy. Goal <= 1.03.

One chain (every carry-forward is on the critical path: the worst case for a single GPU),
spoken 5 s scenes. At the stress rate (1.5 GPU s per output s) the film has 10 sequences;
at the production rate (7) 4, so the run stays under 3 minutes.

    .venv/bin/python -m bench.overhead [--rate both] [--sequences N]
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import common
from bench.timeline import film_timeline

GOAL = 1.03
SEQUENCES = {"stress": 10, "production": 4}


def import_seconds() -> float:
    """What `python -m flows.film` pays before any work: importing reelflow and Prefect."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import flows.film"], check=True)
    return time.perf_counter() - started


def measure(folder: Path, sequences: int, gpu_cost: float, seconds: float) -> dict[str, Any]:
    with common.prefect_api() as boot, common.simulators(1, gpu_cost, folder) as sims:
        url = sims[0].url
        screenplay = common.write_screenplay(folder, common.film_scenes([sequences], seconds))
        run = common.run_film(screenplay, folder / "out", [url])
        gpu = common.executions(url)
        timeline = film_timeline(run, gpu, common.task_runs(run.flow_run_id))
    ratio = run.wall_s / timeline["gpu_busy_s"]
    return {
        "ratio": round(ratio, 4),
        "load_average": common.load_average(),
        "goal": GOAL,
        "verdict": common.verdict(ratio, GOAL),
        "film": {"sequences": sequences, "chains": 1, "scene_s": seconds, "gpu_cost": gpu_cost},
        "timeline": timeline,
        "fixed_costs_s": {
            "prefect_server_start": round(boot, 3),
            "import_flows_film": round(import_seconds(), 3),
        },
    }


def main() -> None:
    arguments = common.parser(__doc__ or "")
    arguments.add_argument("--sequences", type=int, default=None, help="default: 10, 4 at 7")
    arguments.add_argument("--scene-seconds", type=float, default=5.0)
    options = arguments.parse_args()
    figures = {}
    with common.workdir(options.workdir, "overhead") as folder:
        for rate in common.chosen_rates(options.rate):
            sequences = options.sequences or SEQUENCES[rate.name]
            figure = measure(folder / rate.name, sequences, rate.gpu_cost, options.scene_seconds)
            figures[rate.name] = figure
            timeline = figure["timeline"]
            print(f"[{rate.name}] film: {sequences} sequences, one chain, {rate.gpu_cost} GPU s/s")
            print(f"[{rate.name}] fixed costs outside the flow: {figure['fixed_costs_s']}")
            print(f"[{rate.name}] call -> first prompt: {timeline['call_to_first_submit_s']} s")
            print(f"[{rate.name}] GPU idle between prompts: {timeline['gpu_idle_gaps_s']}")
            print(f"[{rate.name}] last GPU end -> return: {timeline['last_gpu_end_to_return_s']} s")
            print(f"[{rate.name}] GPU task overheads: {timeline['gpu_task_overheads_s']}")
            print(f"[{rate.name}] task durations: {timeline['task_durations_s']}")
            print(
                f"[{rate.name}] wall {timeline['wall_s']:.1f} s / GPU busy "
                f"{timeline['gpu_busy_s']:.1f} s = {figure['ratio']:.3f}"
            )
    print(f"results: {common.write_result('overhead', figures, {})}")
    print(
        common.at_rates("overhead", figures, "{ratio:.3f} ({verdict})")
        + f" (wall / GPU busy, goal <= {GOAL})"
    )


if __name__ == "__main__":
    main()
