"""The simulator's single GPU: one prompt executes at a time, the rest wait in a heap.

Execution emits ComfyUI's websocket events in the captured order, caches node results
by input signature like ComfyUI's default cache, and holds the "GPU" for the configured
time per output second (real encode time counts towards it), so benchmarks can measure
how well an orchestrator keeps it busy.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import os
import time
from dataclasses import dataclass, field
from typing import Any

from sim.folders import Folders
from sim.graph import execution_order, plan_output
from sim.hub import Hub
from sim.jobs import Job, now_ms
from sim.render import render_output, signature
from sim.settings import SimSettings
from sim.speech import SoundtrackFaults

SAMPLER_CLASSES = ("SamplerCustomAdvanced", "SamplerCustom", "KSampler", "KSamplerAdvanced")
PROGRESS_STEPS = 20
OOM_MESSAGE = (
    "CUDA out of memory. Tried to allocate 4.50 GiB. GPU 0 has a total capacity of 79.19 GiB "
    "of which 1.21 GiB is free. Of the allocated memory 74.02 GiB is allocated by PyTorch, and "
    "2.11 GiB is reserved by PyTorch but unallocated. If reserved but unallocated memory is "
    "large try setting PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation."
)


class Interrupted(Exception):
    """The running prompt was interrupted by a client."""


class OutOfMemory(Exception):
    """The simulated GPU ran out of memory (an injected fault)."""


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
        self.stats = Stats()
        self.cache: dict[str, dict[str, Any] | None] = {}
        self.loaded_family: str | None = None
        self._family_now: str | None = None
        self._load_now = 0.0
        self._counter = itertools.count()
        self._wakeup = asyncio.Event()
        self._interrupt = False

    @property
    def remaining(self) -> int:
        """``queue_remaining``: pending plus running."""
        return len(self.pending) + (1 if self.running else 0)

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
            try:
                await self._execute(job)
            finally:
                self.running = None
                self.history[job.prompt_id] = job
                await self.hub.status(self.remaining)
                if job.client_id is not None:
                    await self.hub.send(
                        "executing", {"node": None, "prompt_id": job.prompt_id}, job.client_id
                    )

    async def _message(self, job: Job, event: str, data: dict[str, Any], record: bool) -> None:
        data = {**data, "prompt_id": job.prompt_id}
        if event.startswith("execution_"):
            data["timestamp"] = now_ms()
        if record:
            job.messages.append([event, data])
        if job.client_id is not None:
            await self.hub.send(event, data, job.client_id)

    async def _progress_state(self, job: Job, states: dict[str, dict[str, Any]]) -> None:
        data = {"prompt_id": job.prompt_id, "nodes": {k: dict(v) for k, v in states.items()}}
        await self.hub.send("progress_state", data, job.client_id)

    def _node_state(self, job: Job, node: str, value: float, state: str) -> dict[str, Any]:
        return {
            "value": value,
            "max": 1.0 if isinstance(value, float) else 1,
            "state": state,
            "node_id": node,
            "prompt_id": job.prompt_id,
            "display_node_id": node,
            "parent_node_id": None,
            "real_node_id": node,
        }

    async def _execute(self, job: Job) -> None:
        started = time.time()
        self._family_now, self._load_now = None, 0.0
        job.status = "in_progress"
        job.start_ms = now_ms()
        self.stats.prompts_executed += 1
        number = self.stats.prompts_executed
        faults = self.settings.faults
        dropper = None
        if faults.drop_ws_after_s is not None:
            dropper = asyncio.create_task(self._drop_later(faults.drop_ws_after_s))
        await self.hub.status(self.remaining)
        await self._message(job, "execution_start", {}, record=True)
        order = execution_order(job.prompt, job.outputs_to_execute)
        signatures = {node: signature(job.prompt, node, self.folders) for node in order}
        cached = [node for node in order if signatures[node] in self.cache]
        await self._message(job, "execution_cached", {"nodes": cached}, record=True)
        oom_node = None
        if faults.oom_on_prompt_n == number:
            samplers = [n for n in order if job.prompt[n]["class_type"] in SAMPLER_CLASSES]
            oom_node = (samplers or [n for n in order if n not in cached] or [order[-1]])[0]
        states: dict[str, dict[str, Any]] = {}
        executed: list[str] = []
        current = order[0]
        try:
            for node in order:
                current = node
                if self._interrupt:
                    raise Interrupted
                if node in cached:
                    await self._replay_cached(job, node, self.cache[signatures[node]], states)
                    continue
                states[node] = self._node_state(job, node, 0.0, "running")
                await self._progress_state(job, states)
                await self._message(job, "executing", {"node": node, "display_node": node}, False)
                if node == oom_node:
                    raise OutOfMemory
                output = None
                if node in job.outputs_to_execute:
                    output = await self._render(job, node, states, number)
                    await self._send_executed(job, node, output)
                self.cache[signatures[node]] = output
                executed.append(node)
                states[node] = self._node_state(job, node, 1.0, "finished")
                await self._progress_state(job, states)
            job.status = "completed"
            await self._message(job, "execution_success", {}, record=True)
        except Interrupted:
            job.status = "cancelled"
            await self._failure(job, "execution_interrupted", current, executed, None)
        except OutOfMemory:
            job.status = "failed"
            await self._failure(job, "execution_error", current, executed, order)
        finally:
            if dropper is not None:
                dropper.cancel()
            job.end_ms = now_ms()
            self._account(job, started)
            # ComfyUI's default cache keeps only the nodes of the latest prompt.
            keep = {signatures[n] for n in order}
            self.cache = {k: v for k, v in self.cache.items() if k in keep}

    async def _replay_cached(
        self, job: Job, node: str, output: dict[str, Any] | None, states: dict[str, Any]
    ) -> None:
        if node not in job.outputs_to_execute:
            return
        await self._send_executed(job, node, output)
        states[node] = self._node_state(job, node, 1, "finished")
        await self._progress_state(job, {node: states[node]})

    async def _send_executed(self, job: Job, node: str, output: dict[str, Any] | None) -> None:
        if output is None:
            return
        job.outputs[node] = output
        data = {"node": node, "display_node": node, "output": output}
        await self._message(job, "executed", data, record=False)

    async def _failure(
        self, job: Job, event: str, node: str, executed: list[str], order: list[str] | None
    ) -> None:
        data: dict[str, Any] = {
            "node_id": node,
            "node_type": job.prompt[node]["class_type"],
            "executed": executed,
        }
        if order is not None:
            inputs = job.prompt[node].get("inputs", {})
            data |= {
                "exception_message": OOM_MESSAGE,
                "exception_type": "torch.OutOfMemoryError",
                "traceback": [
                    '  File "sim/queue.py", in _execute\n    (simulated GPU out of memory)\n'
                ],
                "current_inputs": {k: [v] for k, v in inputs.items() if not isinstance(v, list)},
                "current_outputs": order,
            }
        await self._message(job, event, data, record=True)
        job.error = job.messages[-1][1] if event == "execution_error" else None

    def _account(self, job: Job, started: float) -> None:
        ended = time.time()
        self.stats.gpu_busy_seconds += ended - started
        self.stats.executions.append(
            {
                "prompt_id": job.prompt_id,
                "start": started,
                "end": ended,
                "outputs": list(job.outputs),
                "family": self._family_now,
                "load_s": self._load_now,
            }
        )

    async def _drop_later(self, delay: float) -> None:
        await asyncio.sleep(delay)
        await self.hub.drop_all()

    async def _render(
        self, job: Job, node: str, states: dict[str, dict[str, Any]], number: int
    ) -> dict[str, Any] | None:
        plan = plan_output(job.prompt, node)
        target = plan.output_seconds * self.settings.gpu_seconds_per_output_second
        self._family_now = plan.family or self._family_now
        if plan.family is not None and plan.family != self.loaded_family:
            load = float(getattr(self.settings.model_load_seconds, plan.family))
            target += load
            self.loaded_family = plan.family
            self._load_now += load
            loads, seconds = self.stats.model_loads, self.stats.model_load_seconds
            loads[plan.family] = loads.get(plan.family, 0) + 1
            seconds[plan.family] = seconds.get(plan.family, 0.0) + load
        faults = self.settings.faults
        voice_faults = SoundtrackFaults(
            narration=faults.narration_in_silent_segments,
            word_salad=faults.word_salad_in_silent_segments,
            title_card=faults.title_card,
        )
        began = time.monotonic()
        work = asyncio.create_task(
            asyncio.to_thread(render_output, plan, self.folders, voice_faults)
        )
        crash = faults.crash_mid_prompt_n == number
        sent = 0
        while True:
            elapsed = time.monotonic() - began
            if crash and elapsed >= target / 2:
                os._exit(70)  # a hard crash mid-prompt: no cleanup, no answer
            step = (
                PROGRESS_STEPS
                if target <= 0
                else min(PROGRESS_STEPS, int(elapsed / target * PROGRESS_STEPS))
            )
            # Only model renders have a sampler progress bar; plain saves send none.
            if plan.family and step > sent and (step < PROGRESS_STEPS or work.done()):
                sent = step
                data = {
                    "value": step,
                    "max": PROGRESS_STEPS,
                    "prompt_id": job.prompt_id,
                    "node": node,
                }
                await self.hub.send("progress", data, job.client_id)
                states[node] = self._node_state(job, node, step / PROGRESS_STEPS, "running")
                await self._progress_state(job, states)
            if work.done() and elapsed >= target:
                break
            if self._interrupt:
                await asyncio.wait({work})
                raise Interrupted
            await asyncio.sleep(min(0.05, max(target - elapsed, 0.005)))
        return work.result().commit()
