"""What every benchmark shares: bench films, simulators, a Prefect API, timed runs, results.

Benchmarks print ratios measured inside one run (the machine is noisy), print their
headline figure last, and write it with the details to `bench/results/<name>.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import statistics
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import soundfile
from PIL import Image

# Quiet, private Prefect for the benchmarks, set before Prefect is imported.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "WARNING")

from flows.film import film
from sim.embedded import RunningSimulator, start_simulator
from sim.settings import SimSettings
from sim.voices import PALETTE, SAMPLE_RATE, synthesise
from tasks.runtime.schedule.policy import SchedulePolicy
from tasks.schema.options import FilmOptions
from tasks.schema.outcomes import FilmResult

RESULTS = Path(__file__).resolve().parent / "results"
SIZE = 256
"""Frame edge in pixels: small keeps the simulator's real encodes far below its GPU time."""


@dataclass(frozen=True)
class Rate:
    """A simulated GPU cost per second of output, and what it stands for."""

    name: str
    gpu_cost: float
    meaning: str


STRESS = Rate("stress", 1.5, "the simulator's stress rate: orchestration costs show")
PRODUCTION = Rate(
    "production",
    7.0,
    "LTX 2.3 relay screenplays, 6-8 GPU s per output s (shared/PRODUCTION_NOTES.md)",
)
RATES = {rate.name: rate for rate in (STRESS, PRODUCTION)}


LINES = (
    "Find the captain.",
    "Row faster, please.",
    "Follow the light.",
    "Turn around slowly.",
    "Bring the lamp.",
    "Wait for me.",
    "Stay right here.",
)
"""Three words each (a 5 s scene meets words + 2 s), lines the embedded ASR hears as written
in Ana's cast voice (`VOICE`) at loud and quiet render levels, and whose voice check scores
0.84-0.93 against her reference (threshold 0.80), so the dialogue check keeps every render
(measured on 2026-11-26; shorter lines of other voices dipped to 0.69)."""

VOICE = PALETTE[5]
"""Ana's cast voice: every render speaks in it. Uncast, the simulator draws a voice per render
(as LTX does), and a line misheard in one of them makes the check re-render GPU work the
benchmark did not ask for."""
VOICE_TEXT = (
    "I have kept this harbour light burning every night for twenty years, through every storm."
)


class BenchError(RuntimeError):
    """A benchmark could not measure what it set out to measure."""


def film_scenes(
    chains: Sequence[int], seconds: float, *, spoken: bool = True
) -> list[dict[str, Any]]:
    """One scene per sequence (hard cuts), `chains[i]` sequences in chain i, short lines."""
    scenes: list[dict[str, Any]] = []
    for chain, length in enumerate(chains):
        for shot in range(length):
            scene: dict[str, Any] = {
                "description": f"Chain {chain} shot {shot}: Ana turns to the sea. After "
                "speaking she walks along the harbour wall as gulls wheel overhead.",
                "duration": seconds,
                "relay_break": True,
                "characters": ["ANA"],
            }
            if spoken:
                scene["dialogue"] = [
                    {"character": "ANA", "line": LINES[(chain + shot) % len(LINES)]}
                ]
            if shot == 0 and chain > 0:
                scene["tags"] = ["keyframe"]
            scenes.append(scene)
    return scenes


def write_screenplay(
    folder: Path, scenes: list[dict[str, Any]], *, size: int = SIZE, scored: bool = False
) -> Path:
    """The bench film, Ana cast (a portrait and a voice, so casting costs no GPU time);
    `scored` gives it reelflow's default score (cues on the GPU)."""
    folder.mkdir(parents=True, exist_ok=True)
    cast = folder / "cast"
    cast.mkdir(exist_ok=True)
    soundfile.write(cast / "ana.wav", 0.5 * synthesise(VOICE_TEXT, VOICE), SAMPLE_RATE)
    Image.new("RGB", (size, size), (180, 40, 40)).save(cast / "ana.png")
    document = {
        "title": "Bench Reel",
        "style": "flat colours, soft light",
        "setting": "a harbour at dawn",
        "characters": {
            "ANA": {
                "description": "a woman in a red coat",
                "portrait": "cast/ana.png",
                "voice": "cast/ana.wav",
            }
        },
        "render": {"width": size, "height": size, "fps": 24},
        "score": None,
        "scenes": scenes,
    }
    if scored:
        del document["score"]
    path = folder / "film.json"
    path.write_text(json.dumps(document, indent=1))
    return path


@contextmanager
def prefect_api() -> Iterator[float]:
    """A temporary Prefect server and database; yields how long the server took to start.

    This is the same server `python -m flows.film` starts on its own when no
    PREFECT_API_URL is set (Prefect's ephemeral mode), started once up front so that
    film wall times measure the flow and not the server's boot.
    """
    from prefect.testing.utilities import prefect_test_harness

    started = time.perf_counter()
    with prefect_test_harness(server_startup_timeout=120):
        yield time.perf_counter() - started


@contextmanager
def simulators(count: int, gpu_cost: float, workdir: Path) -> Iterator[list[RunningSimulator]]:
    """`count` simulator processes, each one GPU costing `gpu_cost` s per output second.

    While they run, the films' GPU scheduler is told what these GPUs cost, as a studio tells
    it about its own (`REELFLOW_SCHEDULE`): `gpu_cost` per output second and no model loads
    (the scheduler otherwise assumes 60 s loads and keeps a family on one GPU to save them).
    """
    settings = SimSettings(gpu_seconds_per_output_second=gpu_cost)
    policy = SchedulePolicy(load_s=NO_LOAD_S, gpu_s_per_output_s=max(gpu_cost, NO_LOAD_S))
    before = os.environ.get("REELFLOW_SCHEDULE")
    os.environ["REELFLOW_SCHEDULE"] = policy.model_dump_json()
    with ExitStack() as stack:
        stack.callback(_restore_environment, "REELFLOW_SCHEDULE", before)
        yield [
            stack.enter_context(start_simulator(settings, workdir=workdir / f"sim{n}"))
            for n in range(count)
        ]


NO_LOAD_S = 0.001
"""The model load time the scheduler is told for the bench simulators (they charge none)."""


def _restore_environment(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


@dataclass(frozen=True)
class FilmRun:
    """One timed film flow run."""

    result: FilmResult
    wall_s: float
    started: float
    ended: float
    flow_run_id: str


def run_film(screenplay: Path, out: Path, servers: list[str], **options: Any) -> FilmRun:
    """The film flow, timed from the call to its return (unix timestamps, like the sim's)."""
    started = time.time()
    begin = time.perf_counter()
    chosen = FilmOptions.of(comfyui=tuple(servers), out=str(out), **options)
    state = asyncio.run(film(screenplay=str(screenplay), options=chosen, return_state=True))
    wall = time.perf_counter() - begin
    result = state.result()
    if not isinstance(result, FilmResult):
        raise BenchError(f"the film flow returned {type(result).__name__}, not a FilmResult")
    flow_run_id = str(state.state_details.flow_run_id)
    return FilmRun(result, wall, started, started + wall, flow_run_id)


def sim_stats(url: str) -> dict[str, Any]:
    """The simulator's GPU accounting (`/reelflow-sim/stats`)."""
    stats: dict[str, Any] = httpx.get(f"{url}/reelflow-sim/stats", timeout=30).json()
    return stats


@dataclass(frozen=True)
class Execution:
    """One prompt on a simulated GPU: accepted, started and ended (unix seconds)."""

    prompt_id: str
    server: str
    submitted: float
    start: float
    end: float
    kind: str

    @property
    def gpu_s(self) -> float:
        return self.end - self.start


def executions(url: str) -> list[Execution]:
    """Every executed prompt of a simulator, in execution order, with its submission time.

    `start`/`end` come from `/reelflow-sim/stats` (float seconds); the submission time is
    the prompt's `create_time` from `/api/jobs` (ComfyUI's field, whole milliseconds).
    """
    stats = sim_stats(url)
    jobs = httpx.get(f"{url}/api/jobs", params={"limit": 100000}, timeout=30).json()["jobs"]
    created = {job["id"]: job["create_time"] / 1000 for job in jobs}
    history = httpx.get(f"{url}/history", timeout=30).json()
    rows = []
    for run in stats["executions"]:
        rows.append(
            Execution(
                prompt_id=run["prompt_id"],
                server=url,
                submitted=created[run["prompt_id"]],
                start=run["start"],
                end=run["end"],
                kind=_prompt_kind(history.get(run["prompt_id"], {})),
            )
        )
    return sorted(rows, key=lambda row: row.start)


def _prompt_kind(entry: dict[str, Any]) -> str:
    """`sequence`, `keyframe` or `cue`, read from the output file names the GPU wrote."""
    names = json.dumps(entry.get("outputs", {}))
    for kind in ("sequence", "keyframe", "cue"):
        if f"reelflow/{kind}" in names or f"{kind}_" in names:
            return kind
    return "other"


async def _task_runs(flow_run_id: str) -> list[dict[str, Any]]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.sorting import TaskRunSort

    async with get_client() as client:
        runs = await client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
            sort=TaskRunSort.EXPECTED_START_TIME_ASC,
            limit=200,
        )
        flow_run = await client.read_flow_run(flow_run_id)
    rows = [
        {
            "name": run.name,
            "state": run.state_name,
            "start": run.start_time.timestamp() if run.start_time else None,
            "end": run.end_time.timestamp() if run.end_time else None,
            "created": run.created.timestamp() if run.created else None,
        }
        for run in runs
    ]
    rows.append(
        {
            "name": "flow",
            "state": flow_run.state_name,
            "start": flow_run.start_time.timestamp() if flow_run.start_time else None,
            "end": flow_run.end_time.timestamp() if flow_run.end_time else None,
            "created": flow_run.created.timestamp() if flow_run.created else None,
        }
    )
    return rows


def task_runs(flow_run_id: str) -> list[dict[str, Any]]:
    """The flow run and its task runs as Prefect recorded them (unix-second timestamps)."""
    return asyncio.run(_task_runs(flow_run_id))


def gpu_idle_gaps(rows: Sequence[Execution]) -> list[float]:
    """Seconds one GPU sat idle between consecutive executions."""
    ordered = sorted(rows, key=lambda row: row.start)
    return [later.start - earlier.end for earlier, later in pairwise(ordered)]


def summary(values: Sequence[float]) -> dict[str, float]:
    """Median, mean, min, max and total of a list of seconds (zeros when empty)."""
    if not values:
        return {"n": 0, "median": 0.0, "mean": 0.0, "min": 0.0, "max": 0.0, "total": 0.0}
    return {
        "n": len(values),
        "median": round(statistics.median(values), 4),
        "mean": round(statistics.fmean(values), 4),
        "min": round(min(values), 4),
        "max": round(max(values), 4),
        "total": round(sum(values), 4),
    }


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "system": platform.platform(),
    }


def write_result(name: str, figure: dict[str, Any], details: dict[str, Any]) -> Path:
    """`bench/results/<name>.json`: the figure, the details, the date and the machine."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": name,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "figure": figure,
        "details": details,
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(document, indent=2))
    return path


def verdict(value: float, goal: float, *, at_most: bool = True) -> str:
    met = value <= goal if at_most else value >= goal
    return "met" if met else "MISSED"


def parser(description: str, *, rates: bool = True) -> argparse.ArgumentParser:
    """An argument parser with the options every benchmark takes."""
    arguments = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    arguments.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="where films, simulators and stores go (default: a fresh temporary folder)",
    )
    if rates:
        arguments.add_argument(
            "--rate",
            choices=[*RATES, "both"],
            default="both",
            help="GPU cost to simulate: stress (1.5 GPU s per output s), production (7), or "
            "both, one after the other (default)",
        )
    return arguments


def chosen_rates(choice: str) -> list[Rate]:
    """The rates a `--rate` choice stands for, stress first."""
    return list(RATES.values()) if choice == "both" else [RATES[choice]]


def load_average() -> float:
    """This machine's 1-minute load average: other work sharing the cores inflates figures."""
    return round(os.getloadavg()[0], 2)


def at_rates(name: str, figures: dict[str, dict[str, Any]], shown: str) -> str:
    """The last line: `name: <figure at each rate> (load ...)`, `shown` formatting one figure
    (a str.format template over the figure's fields)."""
    parts = [
        f"{rate} {RATES[rate].gpu_cost:g} GPU s/s: {shown.format(**figure)} "
        f"(load {figure['load_average']})"
        for rate, figure in figures.items()
    ]
    return f"{name}: " + " | ".join(parts)


@contextmanager
def workdir(chosen: Path | None, name: str) -> Iterator[Path]:
    """The given folder, or a temporary one removed afterwards."""
    import shutil
    import tempfile

    if chosen is not None:
        chosen.mkdir(parents=True, exist_ok=True)
        yield chosen
        return
    folder = Path(tempfile.mkdtemp(prefix=f"reelflow-bench-{name}-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
