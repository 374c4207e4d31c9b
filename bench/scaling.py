"""scaling: 4 servers, 8 independent chains; makespan / max(longest chain, GPU work / 4).

Goal <= 1.10. The makespan is the film flow's wall time (what the user waits for); the
GPU phase (first submission to last GPU end) is reported beside it. Chain GPU time is
summed from the simulators' execution records.

The same film at both rates (stress 1.5 and production 7 GPU s per output s; the
production run takes about 4 minutes).

    .venv/bin/python -m bench.scaling [--servers 4] [--rate both]
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from bench import common
from bench.timeline import film_timeline

GOAL = 1.10
CHAINS = [3, 3, 2, 2, 2, 2, 1, 1]


def measure(folder: Path, servers: int, gpu_cost: float) -> dict[str, Any]:
    with common.prefect_api(), common.simulators(servers, gpu_cost, folder) as sims:
        urls = [sim.url for sim in sims]
        screenplay = common.write_screenplay(folder, common.film_scenes(CHAINS, 5.0))
        run = common.run_film(screenplay, folder / "out", urls)
        gpu = [e for url in urls for e in common.executions(url)]
        timeline = film_timeline(run, gpu, common.task_runs(run.flow_run_id))
    busy = sum(e.gpu_s for e in gpu)
    per_chain = chain_seconds(gpu, CHAINS)
    bound = max(max(per_chain), busy / servers)
    phase = max(e.end for e in gpu) - min(e.submitted for e in gpu)
    ratio = run.wall_s / bound
    per_server: dict[str, float] = defaultdict(float)
    for e in gpu:
        per_server[e.server] += e.gpu_s
    return {
        "ratio": round(ratio, 4),
        "load_average": common.load_average(),
        "goal": GOAL,
        "verdict": common.verdict(ratio, GOAL),
        "makespan_s": round(run.wall_s, 3),
        "gpu_phase_s": round(phase, 3),
        "gpu_phase_ratio": round(phase / bound, 4),
        "bound_s": round(bound, 3),
        "longest_chain_s": round(max(per_chain), 3),
        "gpu_work_s": round(busy, 3),
        "gpu_per_server_s": {url: round(s, 3) for url, s in per_server.items()},
        "timeline": timeline,
    }


def chain_seconds(gpu: list[common.Execution], chains: list[int]) -> list[float]:
    """GPU seconds of each chain: its keyframe plus its sequences, from the planned shape.

    Every sequence of the bench film has the same length and every keyframe the same
    cost, so a chain's GPU time is its share of the measured per-kind averages.
    """
    sequences = [e.gpu_s for e in gpu if e.kind == "sequence"]
    keyframes = [e.gpu_s for e in gpu if e.kind == "keyframe"]
    per_sequence = sum(sequences) / len(sequences)
    per_keyframe = sum(keyframes) / len(keyframes) if keyframes else 0.0
    return [per_keyframe + length * per_sequence for length in chains]


def main() -> None:
    arguments = common.parser(__doc__ or "")
    arguments.add_argument("--servers", type=int, default=4)
    options = arguments.parse_args()
    figures = {}
    with common.workdir(options.workdir, "scaling") as folder:
        for rate in common.chosen_rates(options.rate):
            figure = measure(folder / rate.name, options.servers, rate.gpu_cost)
            figures[rate.name] = figure
            print(f"[{rate.name}] GPU per server (s): {figure['gpu_per_server_s']}")
            print(
                f"[{rate.name}] GPU phase {figure['gpu_phase_s']} s "
                f"({figure['gpu_phase_ratio']} of the bound)"
            )
            print(
                f"[{rate.name}] last GPU end -> flow returned: "
                f"{figure['timeline']['last_gpu_end_to_return_s']} s"
            )
            print(
                f"[{rate.name}] makespan {figure['makespan_s']:.1f} s / bound "
                f"{figure['bound_s']:.1f} s (longest chain {figure['longest_chain_s']:.1f} s, "
                f"GPU work/{options.servers} {figure['gpu_work_s'] / options.servers:.1f} s)"
            )
    print(f"results: {common.write_result('scaling', figures, {'chains': CHAINS})}")
    print(
        common.at_rates("scaling", figures, "{ratio:.3f} ({verdict})")
        + f" (makespan / bound, goal <= {GOAL})"
    )


if __name__ == "__main__":
    main()
