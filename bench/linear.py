"""linear: orchestration cost per sequence for films of 10, 30 and 100 sequences. Goal: flat.

Each film (chains of 10 hard-cut 2 s scenes at 256x256, the smallest a screenplay may ask,
on one fast simulator at 0.05 GPU s per output s, dialogue check on) is planned and rendered
in a fresh process, which reports:
- CPU seconds per sequence of the flow's own process (Python: Prefect's engine, scheduling,
  the store, results, ASR and loudness measurement; not ffmpeg, not the simulator);
- wall seconds per sequence, and how much of it the GPU sat idle;
- the process's peak memory.
Per-sequence cost must not grow with film length. A film's fixed costs (the ASR model load,
the first task runs, delivery) flatter a long film's average, so the figure compares what
each added sequence costs: CPU seconds per sequence added from 30 to 100 sequences over
those added from 10 to 30 (goal <= 1.10; quadratic work shows as a ratio well above 1).
GPU rates do not enter: the GPU is made nearly free so that orchestration is all there is.

    .venv/bin/python -m bench.linear [--sizes 10 30 100]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import common

GOAL = 1.10
GPU_COST = 0.05
CHAIN = 10
SIZE = 256
SCENE_S = 2.0


def one_film(folder: Path, sequences: int) -> dict[str, Any]:
    """Render one film of `sequences` in this process; its per-sequence costs."""
    chains = [CHAIN] * (sequences // CHAIN) + ([sequences % CHAIN] if sequences % CHAIN else [])
    scenes = common.film_scenes(chains, SCENE_S, spoken=False)
    screenplay = common.write_screenplay(folder, scenes, size=SIZE)
    with common.prefect_api(), common.simulators(1, GPU_COST, folder) as sims:
        url = sims[0].url
        cpu = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        run = common.run_film(screenplay, folder / "out", [url])
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_SELF)
        busy = sum(e.gpu_s for e in common.executions(url))
    cpu_s = (after.ru_utime - cpu.ru_utime) + (after.ru_stime - cpu.ru_stime)
    return {
        "sequences": sequences,
        "chains": len(chains),
        "prompts": run.result.prompts,
        "wall_s": round(wall, 3),
        "gpu_busy_s": round(busy, 3),
        "cpu_s_per_sequence": round(cpu_s / sequences, 4),
        "wall_s_per_sequence": round(wall / sequences, 4),
        "gpu_idle_s_per_sequence": round((wall - busy) / sequences, 4),
        # Linux reports the peak resident set in KiB.
        "peak_rss_mb": round(after.ru_maxrss / 1024, 1),
        "load_average": common.load_average(),
    }


def measure(folder: Path, sizes: list[int]) -> dict[str, Any]:
    films = []
    for size in sizes:
        # A fresh process per film: its peak memory is this film's, its caches start cold.
        done = subprocess.run(
            [sys.executable, "-m", "bench.linear", "--one", str(size), "--workdir",
             str(folder / f"n{size}")],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise common.BenchError(f"the {size}-sequence film failed:\n{done.stderr[-3000:]}")
        films.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"{size} sequences: {films[-1]}", flush=True)
    added = [_added(films[n], films[n + 1]) for n in range(len(films) - 1)]
    growth = added[-1]["cpu_s"] / added[0]["cpu_s"]
    return {
        "growth": round(growth, 4),
        "goal": GOAL,
        "verdict": common.verdict(growth, GOAL),
        "per_added_sequence": added,
        "films": films,
        "load_average": common.load_average(),
    }


def _added(smaller: dict[str, Any], larger: dict[str, Any]) -> dict[str, Any]:
    """What each sequence between two film sizes added: CPU seconds and peak megabytes."""
    count = larger["sequences"] - smaller["sequences"]

    def total(film: dict[str, Any]) -> float:
        return float(film["cpu_s_per_sequence"] * film["sequences"])

    return {
        "from": smaller["sequences"],
        "to": larger["sequences"],
        "cpu_s": round((total(larger) - total(smaller)) / count, 4),
        "peak_mb": round((larger["peak_rss_mb"] - smaller["peak_rss_mb"]) / count, 2),
    }


def main() -> None:
    arguments = common.parser(__doc__ or "", rates=False)
    arguments.add_argument("--sizes", type=int, nargs="+", default=[10, 30, 100])
    # --one N: render one film of N sequences in this process (what the main run starts).
    arguments.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    options = arguments.parse_args()
    if options.one is not None:
        options.workdir.mkdir(parents=True, exist_ok=True)
        print(json.dumps(one_film(options.workdir, options.one)))
        return
    with common.workdir(options.workdir, "linear") as folder:
        figure = measure(folder, options.sizes)
    print(f"results: {common.write_result('linear', figure, {'gpu_cost': GPU_COST})}")
    per_size = ", ".join(
        f"{f['sequences']}: {f['cpu_s_per_sequence']:.3f} CPU s/seq, "
        f"{f['wall_s_per_sequence']:.2f} wall s/seq, {f['peak_rss_mb']:.0f} MB"
        for f in figure["films"]
    )
    steps = ", ".join(
        f"{a['from']}->{a['to']}: {a['cpu_s']:.3f} CPU s, {a['peak_mb']:.1f} MB"
        for a in figure["per_added_sequence"]
    )
    print(f"linear: {per_size}")
    print(
        f"linear: each added sequence {steps}; CPU growth {figure['growth']:.2f} (goal <= "
        f"{GOAL}: {figure['verdict']}; any GPU rate; load {figure['load_average']})"
    )


if __name__ == "__main__":
    main()
