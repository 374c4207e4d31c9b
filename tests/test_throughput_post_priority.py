"""Post work (ASR, normalize) yields the CPU to the GPU-feeding path: its thread, the threads
it starts and the ffmpeg processes it runs are nicer than the rest of the run."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading

import pytest

from tasks.runtime.workers import POST_NICENESS, off_the_critical_path

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
