"""overhead: a film of >= 10 sequences on one server; film-flow wall time / simulated GPU busy.

Goal <= 1.03. One chain (every carry-forward is on the critical path: the worst case for a
single GPU), spoken 5 s scenes, a GPU cost per output second set by --gpu-cost.

    .venv/bin/python -m bench.overhead [--sequences 10] [--gpu-cost 1.5]
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
    arguments.add_argument("--sequences", type=int, default=10)
    arguments.add_argument("--gpu-cost", type=float, default=1.5, help="GPU s per output s")
    arguments.add_argument("--scene-seconds", type=float, default=5.0)
    options = arguments.parse_args()
    with common.workdir(options.workdir, "overhead") as folder:
        figure = measure(folder, options.sequences, options.gpu_cost, options.scene_seconds)
    timeline = figure["timeline"]
    path = common.write_result("overhead", figure, {})
    print(f"film: {options.sequences} sequences, one chain, {options.gpu_cost} GPU s/output s")
    print(f"fixed costs outside the flow: {figure['fixed_costs_s']}")
    print(f"call -> first prompt submitted: {timeline['call_to_first_submit_s']} s")
    print(f"GPU idle between prompts: {timeline['gpu_idle_gaps_s']}")
    print(f"last GPU end -> flow returned: {timeline['last_gpu_end_to_return_s']} s")
    print(f"GPU task overheads: {timeline['gpu_task_overheads_s']}")
    print(f"task durations: {timeline['task_durations_s']}")
    print(f"results: {path}")
    print(
        f"overhead: wall {timeline['wall_s']:.1f} s / GPU busy {timeline['gpu_busy_s']:.1f} s = "
        f"{figure['ratio']:.3f} (goal <= {GOAL}: {figure['verdict']})"
    )


if __name__ == "__main__":
    main()
