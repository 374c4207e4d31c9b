"""Post work (ASR, loudness) runs one job at a time beside the GPU-feeding path, at a lower CPU
priority, so that downloads, carry frames and submissions are never starved of the CPU.

On Linux a thread has its own nice value, and every thread or process it starts inherits it:
the ASR engine's worker threads (created when the model loads, on this thread) and the ffmpeg
processes a post job runs all yield to the GPU-feeding path when the cores are busy, and run
at full speed when they are not.
"""

from __future__ import annotations

import asyncio
import functools
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

POST_NICENESS = 10
"""How much nicer post work is than the rest of the run (CFS gives it ~1/10 of a busy core)."""


def lower_this_threads_priority(by: int = POST_NICENESS) -> int | None:
    """Make the calling thread (and what it starts) `by` nicer; returns its new nice value.

    None where threads have no nice value of their own (not Linux) or the system refuses:
    the work then runs at normal priority, as before.
    """
    if sys.platform != "linux":
        return None
    thread = threading.get_native_id()
    try:
        nice = min(19, os.getpriority(os.PRIO_PROCESS, thread) + by)
        os.setpriority(os.PRIO_PROCESS, thread, nice)
    except OSError:
        return None
    return nice


_POST_WORKER = ThreadPoolExecutor(
    max_workers=1, thread_name_prefix="reelflow-post", initializer=lower_this_threads_priority
)


async def off_the_critical_path(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run `function` on the post worker thread (one job at a time, lower CPU priority)."""
    return await asyncio.get_running_loop().run_in_executor(
        _POST_WORKER, functools.partial(function, *args, **kwargs)
    )
