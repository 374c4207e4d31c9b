"""Helpers for tests that render whole films: small screenplays, simulator processes, counts."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from uuid import UUID

import av
import httpx
import numpy as np
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

from flows.film import film
from sim.embedded import RunningSimulator, start_simulator
from sim.settings import SimSettings
from tasks.comfyui.workflow import TemplateKind, cue_prompt, keyframe_prompt
from tasks.runtime.studio import Studio
from tasks.schema.options import FilmOptions
from tasks.schema.outcomes import FilmResult

TINY_RENDER = {"width": 256, "height": 256, "fps": 24}


def write_screenplay(folder: Path, scenes: list[dict[str, Any]], **extra: Any) -> Path:
    document = {
        "title": "Test Reel",
        "style": "flat colours",
        "setting": "a quiet harbour",
        "characters": {"ANA": "a woman in a red coat", "BO": "a boy in a yellow hat"},
        "render": TINY_RENDER,
        "score": None,
        "scenes": scenes,
        **extra,
    }
    path = folder / "film.json"
    path.write_text(json.dumps(document))
    return path


def three_chain_scenes() -> list[dict[str, Any]]:
    """Three chains of two sequences each: six renders, three keyframes."""
    return chain_scenes(chains=3, shots=2)


def chain_scenes(*, chains: int, shots: int) -> list[dict[str, Any]]:
    """`chains` chains (each from its own keyframe) of `shots` hard-cut sequences each."""
    scenes: list[dict[str, Any]] = []
    for chain in range(chains):
        for shot in range(shots):
            scene: dict[str, Any] = {
                "description": f"Chain {chain} shot {shot}, waves roll.",
                "duration": 2.0,
                "relay_break": shot > 0,
            }
            if shot == 0 and chain > 0:
                scene["tags"] = ["keyframe"]
            scenes.append(scene)
    return scenes


def render(screenplay: Path, out: Path, servers: list[str], **options: Any) -> FilmResult:
    """Run the film flow in this process; `options` by their flat names (`fix=True`)."""
    chosen = FilmOptions.of(comfyui=tuple(servers), out=str(out), **options)
    return asyncio.run(film(screenplay=str(screenplay), options=chosen))


@contextmanager
def instant_simulator(folder: Path) -> Iterator[RunningSimulator]:
    """A simulator that renders without its simulated GPU wait, working in `folder`/sim."""
    with start_simulator(
        SimSettings(gpu_seconds_per_output_second=0), workdir=folder / "sim"
    ) as running:
        yield running


def sim_stats(url: str) -> dict[str, Any]:
    return httpx.get(f"{url}/reelflow-sim/stats", timeout=10).json()  # type: ignore[no-any-return]


def film_command(screenplay: Path, out: Path, servers: list[str], *extra: str) -> list[str]:
    """`python -m flows.film` as a user would type it, for runs in their own process."""
    command = [sys.executable, "-m", "flows.film", str(screenplay), "--out", str(out), *extra]
    for url in servers:
        command += ["--comfyui", url]
    return command


def harness_environment() -> dict[str, str]:
    """This process's environment, pointed at the test session's Prefect API."""
    from prefect.settings import PREFECT_API_URL

    return {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}


def frame_rgb(path: Path, index: int) -> np.ndarray:
    """Frame `index` of a video as RGB, in int16 so that differences may go negative."""
    with av.open(str(path)) as container:
        for number, frame in enumerate(container.decode(video=0)):
            if number == index:
                return frame.to_ndarray(format="rgb24").astype(np.int16)
    raise AssertionError(f"{path} has no frame {index}")


def task_run_times(flow_run_id: UUID) -> dict[str, tuple[float | None, float | None]]:
    """When each task run of a flow run started and ended (unix seconds), by task run name."""

    async def read() -> dict[str, tuple[float | None, float | None]]:
        async with get_client() as client:
            runs = await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
            )
        return {
            run.name: (
                run.start_time.timestamp() if run.start_time else None,
                run.end_time.timestamp() if run.end_time else None,
            )
            for run in runs
        }

    return asyncio.run(read())


def keyframe_of(studio: Studio, seed: int, *, size: int = 256) -> dict[str, Any]:
    """A keyframe prompt for `studio`'s templates: one output second of GPU work."""
    return keyframe_prompt(
        studio.templates[TemplateKind.keyframe],
        prompt=f"a harbour at dawn, boat {seed}",
        width=size,
        height=size,
        seed=seed,
        models=studio.models,
        output_prefix="reelflow/keyframe",
    )


def cue_of(studio: Studio, seed: int, seconds: float) -> dict[str, Any]:
    """A score cue prompt for `studio`'s templates: `seconds` of music."""
    return cue_prompt(
        studio.templates[TemplateKind.cue],
        tags="cinematic strings, calm",
        bpm=80,
        keyscale="C major",
        seconds=seconds,
        seed=seed,
        models=studio.models,
        output_prefix="reelflow/cue",
    )
