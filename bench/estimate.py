"""estimate: how far the GPU estimate is from what the renders spent, run after run on one
server, as the rates learn from measured renders (goal: within 25 % once learned).

.venv/bin/python -m bench.estimate [--films 3] [--gpu-cost 1.0]

Each film is new content (nothing cached), rendered on the same simulator; the estimate the
run started with is compared with the GPU seconds its renders spent (`manifest.json` cost).
The first run uses the default rates of config/defaults.toml (set for a DGX Spark class GPU,
so far off on a simulator); every later run uses the rates learned from the runs before.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench import common

GOAL_PCT = 25.0


def measure(folder: Path, films: int, gpu_cost: float) -> dict[str, Any]:
    runs = []
    with common.prefect_api(), common.simulators(1, gpu_cost, folder) as sims:
        url = sims[0].url
        for number in range(films):
            scenes = common.film_scenes([2 + number % 2], 5.0)
            for scene in scenes:  # new content each film: every render is fresh
                scene["description"] = f"Film {number}. " + str(scene["description"])
            screenplay = common.write_screenplay(folder / f"film{number}", scenes)
            run = common.run_film(screenplay, folder / "out", [url], takes=1 + number % 2)
            cost = json.loads((Path(run.result.folder) / "manifest.json").read_text())["cost"]
            runs.append(
                {
                    "film": number,
                    "renders": sum(stage["renders"] for stage in cost["stages"]),
                    "estimated_s": cost["estimated_s"],
                    "spent_s": cost["spent_s"],
                    "error_pct": cost["error_pct"],
                    "rates": cost["rates"],
                    "stages": cost["stages"],
                }
            )
    learned = runs[-1]["error_pct"]
    return {
        "runs": runs,
        "first_error_pct": runs[0]["error_pct"],
        "learned_error_pct": learned,
        "goal_pct": GOAL_PCT,
        "verdict": "met" if learned is not None and abs(learned) <= GOAL_PCT else "MISSED",
    }


def main() -> None:
    arguments = common.parser(__doc__ or "", rates=False)
    arguments.add_argument("--films", type=int, default=3, help="films rendered one after another")
    arguments.add_argument("--gpu-cost", type=float, default=1.0, help="GPU s per output s")
    options = arguments.parse_args()
    with common.workdir(options.workdir, "estimate") as folder:
        figure = measure(folder, options.films, options.gpu_cost)
    path = common.write_result("estimate", figure, {"gpu_cost": options.gpu_cost})
    for run in figure["runs"]:
        print(
            f"film {run['film']}: {run['renders']} renders, estimated {run['estimated_s']:.1f} "
            f"GPU s, spent {run['spent_s']:.1f} s, error {run['error_pct']:+.1f} % "
            f"({run['rates']})"
        )
    print(f"results: {path}")
    print(
        f"estimate: error {figure['first_error_pct']:+.1f} % with the default rates, "
        f"{figure['learned_error_pct']:+.1f} % once learned (goal within {GOAL_PCT:.0f} %: "
        f"{figure['verdict']})"
    )


if __name__ == "__main__":
    main()
