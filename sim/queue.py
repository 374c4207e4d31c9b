"""The simulator's single GPU: one prompt executes at a time, the rest wait in a heap.

Prompts leave the heap lowest ``number`` first (``front`` submits a negative number, a
client may give its own). A client may delete pending prompts, clear the queue, or
interrupt the running prompt (any, or only a given ``prompt_id``). Execution itself is
``sim.run.PromptRun``; its node results are cached by input signature like ComfyUI's
default cache, so benchmarks can measure how well an orchestrator keeps the GPU busy.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from dataclasses import dataclass, field
from typing import Any

from sim.folders import Folders
from sim.hub import Hub
from sim.jobs import Job
from sim.run import CachedNode, PromptRun
from sim.settings import SimSettings

log = logging.getLogger(__name__)


@dataclass
class Stats:
    """GPU work done, for tests and benchmarks (``GET /reelflow-sim/stats``)."""

    prompts_submitted: int = 0
    prompts_executed: int = 0
    gpu_busy_seconds: float = 0.0
    executions: list[dict[str, Any]] = field(default_factory=list)
    model_loads: dict[str, int] = field(default_factory=dict)
    """Family -> how many times its weights were loaded (a switch, or the first load)."""
    model_load_seconds: dict[str, float] = field(default_factory=dict)
    """Family -> GPU seconds spent loading its weights."""


class GpuQueue:
    """Pending prompts, the running one, finished history, and the worker that runs them."""

    def __init__(self, settings: SimSettings, hub: Hub, folders: Folders) -> None:
        self.settings = settings
        self.hub = hub
        self.folders = folders
        self.pending: list[tuple[float, int, Job]] = []
        self.jobs: dict[str, Job] = {}
        self.history: dict[str, Job] = {}
        self.running: Job | None = None
        self.current_node: str | None = None
        """The node the running prompt's client was last told about (for a reconnect)."""
        self.stats = Stats()
        self.cache: dict[str, CachedNode] = {}
        self.loaded_family: str | None = None
        self._counter = itertools.count()
        self._wakeup = asyncio.Event()
        self._interrupt = False

    @property
    def remaining(self) -> int:
        """``queue_remaining``: pending plus running."""
        return len(self.pending) + (1 if self.running else 0)

    @property
    def interrupt_requested(self) -> bool:
        """Whether the running prompt has been asked to stop."""
        return self._interrupt

    async def submit(self, job: Job) -> None:
        """Queue an accepted prompt and tell every client the queue grew."""
        if job.prompt_id in self.history:
            del self.history[job.prompt_id]
        self.jobs[job.prompt_id] = job
        heapq.heappush(self.pending, (job.number, next(self._counter), job))
        self.stats.prompts_submitted += 1
        await self.hub.status(self.remaining)
        self._wakeup.set()

    async def delete_pending(self, prompt_ids: list[str] | None) -> bool:
        """Drop pending prompts (all when ``prompt_ids`` is None); True if any was dropped."""
        kept = [
            e for e in self.pending if prompt_ids is not None and e[2].prompt_id not in prompt_ids
        ]
        dropped = [e[2] for e in self.pending if e not in kept]
        for job in dropped:
            self.jobs.pop(job.prompt_id, None)
        self.pending = kept
        heapq.heapify(self.pending)
        if dropped:
            await self.hub.status(self.remaining)
        return bool(dropped)

    def interrupt(self, prompt_id: str | None = None) -> bool:
        """Interrupt the running prompt (only if it is ``prompt_id``, when given)."""
        if self.running is None or prompt_id not in (None, self.running.prompt_id):
            return False
        self._interrupt = True
        return True

    async def run_forever(self) -> None:
        """The GPU worker: take the lowest-numbered prompt and execute it, forever."""
        while True:
            while not self.pending:
                self._wakeup.clear()
                await self._wakeup.wait()
            _, _, job = heapq.heappop(self.pending)
            self.running = job
            self._interrupt = False
            self.stats.prompts_executed += 1
            try:
                await PromptRun(self, job, self.stats.prompts_executed).execute()
            except Exception:  # a simulator bug must not stop the worker for good
                log.exception("simulator failed while running prompt %s", job.prompt_id)
                job.status = "failed"
            finally:
                self.running = None
                self.history[job.prompt_id] = job
                await self.hub.status(self.remaining)
                if job.client_id is not None:
                    await self.hub.send(
                        "executing", {"node": None, "prompt_id": job.prompt_id}, job.client_id
                    )
