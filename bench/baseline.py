"""baseline: the overhead film driven peer-style (bench/peer.py) vs by reelflow, one run each.

Prints reelflow's ratios against the peer script: wall time of a first render, GPU idle
share, and the cost of an unchanged re-run (the peer script has no cache, so its re-run
submits every prompt again and costs a full render; that is by construction, not re-run).
Reelflow also checks dialogue, normalizes and muxes; the peer script only concatenates.

10 sequences at the stress rate (1.5 GPU s per output s), 4 at the production rate (7).

    .venv/bin/python -m bench.baseline [--rate both] [--sequences N]
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bench import common, peer
from bench.edit import plan_of

GOAL_NOTE = "lower is better; < 1 means reelflow is faster"
SEQUENCES = {"stress": 10, "production": 4}


def _idle_share(wall: float, busy: float) -> float:
    return round(1 - busy / wall, 4)


def measure(folder: Path, sequences: int, gpu_cost: float) -> dict[str, Any]:
    screenplay = common.write_screenplay(folder, common.film_scenes([sequences], 5.0))
    with common.simulators(1, gpu_cost, folder / "peer") as sims:
        started = time.perf_counter()
        peer.render_film(sims[0].url, plan_of(screenplay), folder / "peer" / "film")
        peer_wall = time.perf_counter() - started
        peer_gpu = common.executions(sims[0].url)
    with common.prefect_api(), common.simulators(1, gpu_cost, folder / "reelflow") as sims:
        url = sims[0].url
        first = common.run_film(screenplay, folder / "out", [url])
        reel_gpu = common.executions(url)
        again = common.run_film(screenplay, folder / "out", [url])
    peer_busy = sum(e.gpu_s for e in peer_gpu)
    reel_busy = sum(e.gpu_s for e in reel_gpu)
    return {
        "peer": {
            "wall_s": round(peer_wall, 3),
            "gpu_busy_s": round(peer_busy, 3),
            "prompts": len(peer_gpu),
            "gpu_idle_share": _idle_share(peer_wall, peer_busy),
            "rerun_prompts": len(peer_gpu),
        },
        "reelflow": {
            "wall_s": round(first.wall_s, 3),
            "gpu_busy_s": round(reel_busy, 3),
            "prompts": len(reel_gpu),
            "gpu_idle_share": _idle_share(first.wall_s, reel_busy),
            "rerun_wall_s": round(again.wall_s, 3),
            "rerun_prompts": again.result.prompts,
        },
        "ratios": {
            "first_render_wall": round(first.wall_s / peer_wall, 4),
            "rerun_wall": round(again.wall_s / peer_wall, 4),
            "gpu_idle_share": round(
                _idle_share(first.wall_s, reel_busy) / max(_idle_share(peer_wall, peer_busy), 1e-9),
                4,
            ),
        },
        "note": GOAL_NOTE,
        "load_average": common.load_average(),
    }


def main() -> None:
    arguments = common.parser(__doc__ or "")
    arguments.add_argument("--sequences", type=int, default=None, help="default: 10, 4 at 7")
    options = arguments.parse_args()
    figures = {}
    with common.workdir(options.workdir, "baseline") as folder:
        for rate in common.chosen_rates(options.rate):
            sequences = options.sequences or SEQUENCES[rate.name]
            figure = measure(folder / rate.name, sequences, rate.gpu_cost)
            ratios = figure["ratios"]
            figures[rate.name] = {
                **figure,
                "first": ratios["first_render_wall"],
                "again": ratios["rerun_wall"],
                "idle": ratios["gpu_idle_share"],
            }
            print(f"[{rate.name}] {sequences} sequences; peer script: {figure['peer']}")
            print(f"[{rate.name}] reelflow:    {figure['reelflow']}")
    print(f"results: {common.write_result('baseline', figures, {})}")
    print(
        common.at_rates(
            "baseline",
            figures,
            "first render {first:.3f}x, unchanged re-run {again:.3f}x, GPU idle share {idle:.2f}x",
        )
        + f" (reelflow / peer script; {GOAL_NOTE})"
    )


if __name__ == "__main__":
    main()
