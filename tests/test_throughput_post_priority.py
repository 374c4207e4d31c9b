"""Post work (ASR, normalize) yields the CPU to the GPU-feeding path: its thread, the threads
it starts and the ffmpeg processes it runs are nicer than the rest of the run, and a sequence
is heard only once the next sequence's prompt is on its GPU."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from flows.film import film
from sim.embedded import start_simulator
from sim.settings import SimSettings
from tasks.runtime.workers import (
    IDLE_POST_WORKERS,
    LANES,
    POST_NICENESS,
    POST_WORKERS,
    off_the_critical_path,
)
from tasks.schema.options import FilmOptions
from tests.film_helpers import task_run_times, write_screenplay

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice is Linux's")


def _nice_of_this_thread() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def _nice_of_a_thread_started_here() -> int:
    seen: list[int] = []
    worker = threading.Thread(target=lambda: seen.append(_nice_of_this_thread()))
    worker.start()
    worker.join()
    return seen[0]


def _nice_of_a_process_started_here() -> int:
    # `nice` without a command prints the niceness it runs at.
    return int(subprocess.run(["nice"], capture_output=True, text=True, check=True).stdout)


def test_post_work_and_everything_it_starts_run_nicer_than_the_gpu_feeding_path() -> None:
    feeding = _nice_of_this_thread()
    expected = min(19, feeding + POST_NICENESS)

    async def post() -> tuple[int, int, int]:
        return (
            await off_the_critical_path(_nice_of_this_thread),
            await off_the_critical_path(_nice_of_a_thread_started_here),
            await off_the_critical_path(_nice_of_a_process_started_here),
        )

    assert asyncio.run(post()) == (expected, expected, expected)
    # The GPU-feeding path itself (this thread, the event loop's other threads) is untouched.
    assert _nice_of_this_thread() == feeding
    assert asyncio.run(asyncio.to_thread(_nice_of_this_thread)) == feeding


def _most_at_once(feeding: bool) -> int:
    """How many of IDLE_POST_WORKERS post jobs ran at once, with a render under way or not."""

    def job() -> tuple[float, float]:
        started = time.monotonic()
        time.sleep(0.3)
        return started, time.monotonic()

    async def jobs() -> list[tuple[float, float]]:
        async with contextlib.AsyncExitStack() as stack:
            if feeding:
                await stack.enter_async_context(LANES.feeding())
            return list(
                await asyncio.gather(
                    *(off_the_critical_path(job) for _ in range(IDLE_POST_WORKERS))
                )
            )

    spans = asyncio.run(jobs())
    return max(sum(1 for s, e in spans if s <= start < e) for start, _ in spans)


def test_post_work_leaves_a_core_to_renders_under_way_and_takes_every_core_after() -> None:
    assert _most_at_once(feeding=True) == POST_WORKERS
    assert _most_at_once(feeding=False) == IDLE_POST_WORKERS


@pytest.mark.usefixtures("prefect_api")
def test_a_sequence_is_heard_once_the_next_one_is_on_its_gpu(tmp_path: Path) -> None:
    scenes = [
        {"description": f"Shot {n}: waves roll in under a grey sky.", "duration": 2.0}
        | {"relay_break": True}
        for n in range(3)
    ]
    screenplay = write_screenplay(tmp_path, scenes)
    settings = SimSettings(gpu_seconds_per_output_second=0.5)
    with start_simulator(settings, workdir=tmp_path / "sim") as sim:
        options = FilmOptions.of(comfyui=(sim.url,), out=str(tmp_path / "out"))
        state = asyncio.run(film(screenplay=str(screenplay), options=options, return_state=True))
        stats = httpx.get(f"{sim.url}/reelflow-sim/stats", timeout=10).json()
        jobs = httpx.get(f"{sim.url}/api/jobs", params={"limit": 100}, timeout=10).json()["jobs"]
    # ComfyUI's create_time: when the server accepted the prompt (whole milliseconds).
    accepted = {job["id"]: job["create_time"] / 1000 for job in jobs}
    runs = stats["executions"]
    sequences = [accepted[run["prompt_id"]] for run in runs if run["family"] == "ltx"]
    times = task_run_times(state.state_details.flow_run_id)
    assert len(sequences) == 3
    for index in (0, 1):
        # The ASR and the check's bookkeeping never compete with the next submission.
        assert times[f"check-dialogue-seq{index}"][0] >= sequences[index + 1] - 0.001
