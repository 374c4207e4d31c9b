"""Post work (ASR, loudness) runs beside the GPU-feeding path on a few worker threads, at a
lower CPU priority, so that downloads, carry frames and submissions are never starved of the
CPU; and a sequence's check starts only once the next sequence's prompt is accepted
(`Acceptances`). Where there are cores to spare, several workers: chains on several GPUs finish
sequences at the same moments, and one worker makes their checks wait in line.

On Linux a thread has its own nice value, and every thread or process it starts inherits it:
the ASR engine's worker threads (created when the model loads, on this thread) and the ffmpeg
processes a post job runs all yield to the GPU-feeding path when the cores are busy, and run
at full speed when they are not.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import sys
import threading
from asyncio import FIRST_COMPLETED
from collections.abc import AsyncIterator, Callable, Sequence
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


POST_WORKERS = max(1, min(4, (os.cpu_count() or 1) - 1))
"""Post jobs at once while a GPU is being fed: one per core but one, up to four (the ASR engine
runs one transcription at a time whatever the count; loudness, normalize encodes and voice
checks run beside it). On two cores that is one: a second one made the 4-GPU bench film slower
(makespan / bound 1.39 -> 1.52 at the stress rate), its checks taking the core the
submissions need."""
IDLE_POST_WORKERS = POST_WORKERS + 1
"""Post jobs at once while no render is on its way or on a GPU (the film's last checks and
normalizes, before the cut): every core."""


class Lanes:
    """How many post jobs may run: fewer while renders are being fed to the GPUs.

    Thread-safe and loop-free: renders enter and leave from any event loop, and post jobs
    wait on their own worker threads.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._feeding = 0
        self._running = 0

    @contextlib.asynccontextmanager
    async def feeding(self) -> AsyncIterator[None]:
        """Around a render, from its request for a GPU to its outputs downloaded."""
        with self._changed:
            self._feeding += 1
        try:
            yield
        finally:
            with self._changed:
                self._feeding -= 1
                self._changed.notify_all()

    def run(self, job: Callable[[], T]) -> T:
        """Run `job` (on a post worker thread) once a lane is free."""
        with self._changed:
            self._changed.wait_for(
                lambda: self._running < (POST_WORKERS if self._feeding else IDLE_POST_WORKERS)
            )
            self._running += 1
        try:
            return job()
        finally:
            with self._changed:
                self._running -= 1
                self._changed.notify_all()


LANES = Lanes()
_POST_WORKERS = ThreadPoolExecutor(
    max_workers=IDLE_POST_WORKERS,
    thread_name_prefix="reelflow-post",
    initializer=lower_this_threads_priority,
)


async def off_the_critical_path(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run `function` on a post worker thread (lower CPU priority), in a free lane."""
    return await asyncio.get_running_loop().run_in_executor(
        _POST_WORKERS, LANES.run, functools.partial(function, *args, **kwargs)
    )


FEED_WAIT_S = 1.0
"""How long post work waits for a prompt on its way to a GPU: the way from a finished render
to the next submission takes ~0.1-0.3 s; a prompt still waiting for a GPU slot after this
is not on its way, and post work starts without it."""


class Acceptances:
    """Prompts on their way to a GPU, by label ("sequence 4"), until their server accepts them.

    The dialogue check of a sequence starts once the next sequence's prompt is accepted, so
    the ASR and the check's own bookkeeping never compete with that submission.
    """

    def __init__(self) -> None:
        self._waiting: dict[str, asyncio.Event] = {}

    def expect(self, label: str) -> asyncio.Event:
        """Call before starting the render: its acceptance sets the returned event."""
        event = self._waiting[label] = asyncio.Event()
        return event

    def arrived(self, label: str) -> None:
        """A server accepted the prompt labelled `label`."""
        if (event := self._waiting.pop(label, None)) is not None:
            event.set()

    @staticmethod
    async def wait(
        accepted: asyncio.Event, renders: Sequence[asyncio.Task[Any]], within: float = FEED_WAIT_S
    ) -> None:
        """Until `accepted` is set, a render ends (cached, failed) or `within` seconds pass."""
        waiter = asyncio.ensure_future(accepted.wait())
        try:
            await asyncio.wait([waiter, *renders], timeout=within, return_when=FIRST_COMPLETED)
        finally:
            waiter.cancel()
