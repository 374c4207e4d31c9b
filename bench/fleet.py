"""fleet: three films started together on a studio, at the stress and at the production GPU rate.

A real `prefect server start` (SQLite) with a process work pool and two workers (at most two
films each), the film deployment from `deployments/prefect.yaml`, three simulator processes
(one GPU each, `--load-s` charged whenever a GPU changes model family) and an S3 bucket
(moto). Three scored films (keyframes, sequences, a cue: all three model families) are
started as deployment runs at once, with `gpu_slots: prefect`.

Each rate runs twice: with cross-run routing (every run's scheduler asks the servers what
they run) and blind (`"observe": false`: each run sees only its own renders, as before).
Printed per run: makespan / lower bound, where the lower bound is max(total GPU seconds /
servers, the longest film's critical path), and model loads per server against the minimum
(one per family the server ran). Last lines: one figure per rate.

    .venv/bin/python -m bench.fleet [--rates 1.5,7] [--load-s 3] [--stagger-s 0]
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench import common
from sim.settings import ModelLoadSeconds, SimSettings
from tasks.runtime.schedule.policy import SchedulePolicy
from tests.fleet_figures import describe, fleet_figure
from tests.fleet_helpers import Fleet, fleet, write_film

FILMS = ("Harbour", "Lantern", "Orchard")
WORKERS = ("gpu-box-1", "gpu-box-2")
MODES = ("routed", "blind")


def settings_at(rate: float, load_s: float) -> SimSettings:
    return SimSettings(
        gpu_seconds_per_output_second=rate,
        model_load_seconds=ModelLoadSeconds(image=load_s, ltx=load_s, ace_step=load_s),
    )


def measure(
    studio: Fleet,
    folder: Path,
    settings: SimSettings,
    mode: str,
    options: Any,
) -> dict[str, Any]:
    """Three films on fresh simulators and an empty store prefix, under one routing mode."""
    rate = settings.gpu_seconds_per_output_second
    label = f"{rate:g}-{mode}"
    studio.start_over(settings, prefix=label)
    policy = SchedulePolicy(
        load_s=settings.model_load_seconds.ltx,
        gpu_s_per_output_s=rate,
        observe=mode == "routed",
    )
    for name in WORKERS:
        studio.start_worker(name, limit=2, REELFLOW_SCHEDULE=policy.model_dump_json())
    films = [
        write_film(folder / label, name, options.chains, options.shots, 2.0, scored=True)
        for name in FILMS
    ]
    ids = studio.start_films(films, stagger_s=options.stagger_s)
    runs = studio.wait_final(ids, timeout=3600)
    failed = [run.state_name for run in runs if not run.state or not run.state.is_completed()]
    if failed:
        raise common.BenchError(f"{label}: films ended {failed}\n{studio.server.log_tail()}")
    figure = fleet_figure(studio, runs, films, settings)
    print(f"\n{rate:g} GPU s per output s, {mode}:")
    for line in describe(figure):
        print(f"  {line}")
    began = min(run.start_time.timestamp() for run in runs if run.start_time)
    return {
        "films": [
            (
                run.name,
                round(run.start_time.timestamp() - began, 2),
                round(run.end_time.timestamp() - began, 2),
            )
            for run in runs
            if run.start_time and run.end_time
        ],
        "rate": rate,
        "mode": mode,
        "ratio": round(figure.ratio, 4),
        "gpu_phase_ratio": round(figure.gpu_phase_ratio, 4),
        **asdict(figure),
    }


def main() -> None:
    arguments = common.parser(__doc__ or "", rates=False)
    arguments.add_argument("--rates", default="1.5,7", help="GPU s per output s, comma-separated")
    arguments.add_argument("--load-s", type=float, default=3.0, help="load time per family")
    arguments.add_argument("--chains", type=int, default=2, help="chains per film")
    arguments.add_argument("--shots", type=int, default=2, help="2 s sequences per chain")
    arguments.add_argument(
        "--stagger-s", type=float, default=0.0, help="seconds between film starts (0: at once)"
    )
    options = arguments.parse_args()
    rates = [float(rate) for rate in options.rates.split(",")]
    runs: list[dict[str, Any]] = []
    with (
        common.workdir(options.workdir, "fleet") as folder,
        fleet(folder, sims=3, settings=settings_at(rates[0], options.load_s)) as studio,
    ):
        for rate in rates:
            for mode in MODES:
                settings = settings_at(rate, options.load_s)
                runs.append(measure(studio, folder, settings, mode, options))
    figure = {f"{rate:g}": _compare(runs, rate) for rate in rates}
    details = {
        "load_s": options.load_s,
        "chains": options.chains,
        "shots": options.shots,
        "stagger_s": options.stagger_s,
    }
    name = "fleet" if not options.stagger_s else f"fleet-stagger{options.stagger_s:g}"
    path = common.write_result(name, figure, {**details, "runs": runs})
    print(f"\nresults: {path}")
    started = f", films started {options.stagger_s:g} s apart" if options.stagger_s else ""
    for rate in rates:
        f = figure[f"{rate:g}"]
        print(
            f"fleet at {rate:g} GPU s per output s{started}: makespan / lower bound "
            f"{f['ratio']:.2f} (GPU phase {f['gpu_phase_ratio']:.2f}); model loads "
            f"{f['loads']} (minimum {f['minimum_loads']}) routed across runs vs "
            f"{f['blind_loads']} (minimum {f['blind_minimum_loads']}) blind"
        )


def _compare(runs: list[dict[str, Any]], rate: float) -> dict[str, Any]:
    routed = next(r for r in runs if r["rate"] == rate and r["mode"] == "routed")
    blind = next(r for r in runs if r["rate"] == rate and r["mode"] == "blind")
    return {
        "ratio": routed["ratio"],
        "gpu_phase_ratio": routed["gpu_phase_ratio"],
        "loads": sum(s["loads"] for s in routed["servers"]),
        "minimum_loads": sum(s["minimum_loads"] for s in routed["servers"]),
        "blind_ratio": blind["ratio"],
        "blind_loads": sum(s["loads"] for s in blind["servers"]),
        "blind_minimum_loads": sum(s["minimum_loads"] for s in blind["servers"]),
    }


if __name__ == "__main__":
    main()
