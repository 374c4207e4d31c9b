"""model_switches: model loads and makespan with and without model-aware GPU scheduling.

A scored film of 8 chains renders keyframes (image model), sequences (LTX) and score cues
(ACE-Step). Every time a simulated GPU changes family it pays `--load-s` (60 s of weights
at the simulator's time scale: GPU cost 0.3 s per output second). The same DAG runs with the
policy on (`REELFLOW_SCHEDULE` set to a policy with the simulator's load time and GPU cost)
and off (`unaware`: first free slot wins), on one server and on three. Loads are read from
each simulator (`/reelflow-sim/stats`); the minimum is one load per family per server used.
Goals: on one server, one load per family; on three, no server loads a family twice; the
aware makespan no longer than the unaware one.

    .venv/bin/python -m bench.model_switches [--load-s 2.0] [--gpu-cost 0.3]
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench import common
from sim.embedded import start_simulator
from sim.settings import ModelLoadSeconds, SimSettings
from tasks.runtime.schedule.policy import SchedulePolicy

CHAINS = [3, 3, 2, 2, 2, 2, 1, 1]
SCENE_S = 5.0
SERVERS = (1, 3)
POLICIES = ("unaware", "aware")


def server_loads(stats: dict[str, Any]) -> dict[str, Any]:
    """One simulator's loads, their seconds, and the minimum for the families it ran."""
    runs = [e for e in stats["executions"] if e.get("family")]
    families = sorted({e["family"] for e in runs})
    order = [e["family"] for e in sorted(runs, key=lambda e: e["start"]) if e["load_s"] > 0]
    return {
        "prompts": len(runs),
        "loads": sum(stats["model_loads"].values()),
        "load_order": order,
        "load_s": round(sum(stats["model_load_seconds"].values()), 3),
        "families": families,
        "minimum_loads": len(families),
    }


def measure(folder: Path, servers: int, policy: str, settings: SimSettings) -> dict[str, Any]:
    """One film on fresh simulators (nothing loaded, nothing cached) under one policy.

    The aware run is told the GPU's figures, as an operator would configure them; it
    measures its own as renders end.
    """
    os.environ["REELFLOW_SCHEDULE"] = (
        SchedulePolicy(
            load_s=settings.model_load_seconds.ltx,
            gpu_s_per_output_s=settings.gpu_seconds_per_output_second,
        ).model_dump_json()
        if policy == "aware"
        else policy
    )
    run_dir = folder / f"{servers}x-{policy}"
    with ExitStack() as stack:
        sims = [
            stack.enter_context(start_simulator(settings, workdir=run_dir / f"sim{n}"))
            for n in range(servers)
        ]
        urls = [sim.url for sim in sims]
        screenplay = common.write_screenplay(
            run_dir, common.film_scenes(CHAINS, SCENE_S), scored=True
        )
        run = common.run_film(screenplay, run_dir / "out", urls)
        stats = [common.sim_stats(url) for url in urls]
    per_server = [server_loads(one) for one in stats]
    runs = [e for one in stats for e in one["executions"]]
    used = [s for s in per_server if s["prompts"]]
    load_s = settings.model_load_seconds
    minimum_s = sum(getattr(load_s, f) for s in used for f in s["families"])
    return {
        "policy": policy,
        "servers": servers,
        "makespan_s": round(run.wall_s, 3),
        "gpu_phase_s": round(max(e["end"] for e in runs) - min(e["start"] for e in runs), 3),
        "gpu_busy_s": round(sum(one["gpu_busy_seconds"] for one in stats), 3),
        "loads": sum(s["loads"] for s in used),
        "minimum_loads": sum(s["minimum_loads"] for s in used),
        "load_s": round(sum(s["load_s"] for s in used), 3),
        "minimum_load_s": round(minimum_s, 3),
        "prompts": run.result.prompts,
        "per_server": per_server,
    }


def main() -> None:
    arguments = common.parser(__doc__ or "", rates=False)
    arguments.add_argument("--load-s", type=float, default=2.0, help="load time per family")
    arguments.add_argument("--gpu-cost", type=float, default=0.3, help="GPU s per output s")
    options = arguments.parse_args()
    load = options.load_s
    settings = SimSettings(
        gpu_seconds_per_output_second=options.gpu_cost,
        model_load_seconds=ModelLoadSeconds(ltx=load, image=load, ace_step=load),
    )
    runs: list[dict[str, Any]] = []
    with common.workdir(options.workdir, "model-switches") as folder, common.prefect_api():
        for servers in SERVERS:
            for policy in POLICIES:
                runs.append(measure(folder, servers, policy, settings))
    figure = {str(n): _compare(runs, n) for n in SERVERS}
    details = {"chains": CHAINS, "scene_s": SCENE_S, "load_s": load, "gpu_cost": options.gpu_cost}
    path = common.write_result("model_switches", figure, {**details, "runs": runs})
    for run in runs:
        orders = " | ".join(",".join(s["load_order"]) or "-" for s in run["per_server"])
        print(
            f"{run['servers']} server(s), {run['policy']:>7}: {run['loads']} loads "
            f"(minimum {run['minimum_loads']}), {run['load_s']:.1f} s loading "
            f"(minimum {run['minimum_load_s']:.1f} s), GPU busy {run['gpu_busy_s']:.1f} s, "
            f"GPU phase {run['gpu_phase_s']:.1f} s, makespan {run['makespan_s']:.1f} s; "
            f"loads per server: {orders}"
        )
    print(f"results: {path}")
    for n in SERVERS:
        f = figure[str(n)]
        print(
            f"model_switches {n} server(s): aware {f['aware_loads']} loads / minimum "
            f"{f['minimum_loads']} vs unaware {f['unaware_loads']}; loading "
            f"{f['aware_load_s']:.1f} s vs {f['unaware_load_s']:.1f} s; makespan "
            f"{f['aware_makespan_s']:.1f} s vs {f['unaware_makespan_s']:.1f} s "
            f"({f['makespan_ratio']:.3f}; goal <= 1.0: {f['verdict']})"
        )


def _compare(runs: list[dict[str, Any]], servers: int) -> dict[str, Any]:
    aware = next(r for r in runs if r["servers"] == servers and r["policy"] == "aware")
    unaware = next(r for r in runs if r["servers"] == servers and r["policy"] == "unaware")
    ratio = aware["makespan_s"] / unaware["makespan_s"]
    return {
        "aware_loads": aware["loads"],
        "minimum_loads": aware["minimum_loads"],
        "unaware_loads": unaware["loads"],
        "aware_load_s": aware["load_s"],
        "unaware_load_s": unaware["load_s"],
        "aware_makespan_s": aware["makespan_s"],
        "unaware_makespan_s": unaware["makespan_s"],
        "makespan_ratio": round(ratio, 4),
        "verdict": common.verdict(ratio, 1.0),
    }


if __name__ == "__main__":
    main()
