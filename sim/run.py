"""One prompt on the simulated GPU: ComfyUI's execution order, messages and bookkeeping.

Nodes run in dependency order, one at a time. A node whose result is cached (same class,
values and upstream) is skipped; an interrupt is noticed before each node, and inside
nodes that report progress (samplers, colour transfer), as ComfyUI's progress hook does.
Outputs of model graphs are rendered as animatics (``sim.work.render_planned``); every
other output is computed from its model-free ancestors (``sim.work.compute``).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sim.graph import ancestors, plan_output
from sim.inventory import catalogue
from sim.jobs import Job, now_ms
from sim.render import signature
from sim.schedule import execution_order
from sim.values import describe
from sim.work import Interrupted, NodeFailed, compute, render_planned

if TYPE_CHECKING:
    from sim.queue import GpuQueue

SAMPLER_CLASSES = ("SamplerCustomAdvanced", "SamplerCustom", "KSampler", "KSamplerAdvanced")
OOM_MESSAGE = (
    "CUDA out of memory. Tried to allocate 4.50 GiB. GPU 0 has a total capacity of 79.19 GiB "
    "of which 1.21 GiB is free. Of the allocated memory 74.02 GiB is allocated by PyTorch, and "
    "2.11 GiB is reserved by PyTorch but unallocated. If reserved but unallocated memory is "
    "large try setting PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation."
)


class OutOfMemory(Exception):
    """The simulated GPU ran out of memory (an injected fault)."""


@dataclass
class CachedNode:
    """What the cache keeps of an executed node: its history output and its values."""

    ui: dict[str, Any] | None
    values: tuple[Any, ...] | None


def _is_output(class_type: str) -> bool:
    return bool(catalogue().get(class_type, {}).get("output_node"))


def _shown(value: Any) -> Any:
    plain = value is None or isinstance(value, bool | int | float | str)
    return value if plain else describe(value)


def _error_details(
    type_name: str, message: str, trace: list[str], inputs: dict[str, Any], order: list[str]
) -> dict[str, Any]:
    return {
        "exception_message": message,
        "exception_type": type_name,
        "traceback": trace,
        "current_inputs": inputs,
        "current_outputs": order,
    }


@dataclass
class PromptRun:
    """The execution of one job; the queue lends it the GPU, the cache and the hub."""

    queue: GpuQueue
    job: Job
    number: int
    states: dict[str, dict[str, Any]] = field(default_factory=dict)
    values: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    family: str | None = None
    load_seconds: float = 0.0

    @property
    def interrupted(self) -> bool:
        """Whether a client asked to stop this prompt."""
        return self.queue.interrupt_requested

    async def message(self, event: str, data: dict[str, Any], record: bool) -> None:
        """Send an event to the job's client (and keep ``execution_*`` ones in history)."""
        data = {**data, "prompt_id": self.job.prompt_id}
        if event.startswith("execution_"):
            data["timestamp"] = now_ms()
        if record:
            self.job.messages.append([event, data])
        if self.job.client_id is not None:
            await self.queue.hub.send(event, data, self.job.client_id)

    async def progress(self, node: str, value: int, maximum: int) -> None:
        """A node's progress bar moved: ``progress`` and ``progress_state``."""
        data = {"value": value, "max": maximum, "prompt_id": self.job.prompt_id, "node": node}
        await self.queue.hub.send("progress", data, self.job.client_id)
        await self.node_state(node, value / maximum if maximum else 1.0, "running")

    async def node_state(self, node: str, value: float, state: str, alone: bool = False) -> None:
        """Update one node's entry and send ``progress_state`` (broadcast without a client)."""
        self.states[node] = {
            "value": value,
            "max": 1.0 if isinstance(value, float) else 1,
            "state": state,
            "node_id": node,
            "prompt_id": self.job.prompt_id,
            "display_node_id": node,
            "parent_node_id": None,
            "real_node_id": node,
        }
        shown = {node: self.states[node]} if alone else self.states
        data = {"prompt_id": self.job.prompt_id, "nodes": {k: dict(v) for k, v in shown.items()}}
        await self.queue.hub.send("progress_state", data, self.job.client_id)

    async def execute(self) -> None:
        """Run the job to success, interruption or failure, recording it for history."""
        job, queue = self.job, self.queue
        started = time.time()
        job.status = "in_progress"
        job.start_ms = now_ms()
        faults = queue.settings.faults
        dropper = None
        if faults.drop_ws_after_s is not None:
            dropper = asyncio.create_task(self._drop_later(faults.drop_ws_after_s))
        await queue.hub.status(queue.remaining)
        await self.message("execution_start", {}, record=True)
        order = execution_order(job.prompt, job.outputs_to_execute, _is_output)
        signatures = {node: signature(job.prompt, node, queue.folders) for node in order}
        plans = {o: plan_output(job.prompt, o) for o in job.outputs_to_execute}
        computed = {
            n for o, p in plans.items() if p.media is None for n in ancestors(job.prompt, o)
        }
        # A result cached by a model graph holds no values, so a computed node reruns.
        cached = [
            node
            for node in order
            if signatures[node] in queue.cache
            and (node not in computed or queue.cache[signatures[node]].values is not None)
        ]
        await self.message("execution_cached", {"nodes": cached}, record=True)
        oom_node = self._oom_node(order, cached)
        executed: list[str] = []
        current = order[0]
        try:
            for node in order:
                current = node
                if self.interrupted:
                    raise Interrupted
                if node in cached:
                    await self._replay(node, queue.cache[signatures[node]])
                    continue
                await self.node_state(node, 0.0, "running")
                queue.current_node = node if job.client_id is not None else None
                await self.message("executing", {"node": node, "display_node": node}, False)
                if node == oom_node:
                    raise OutOfMemory
                ui = None
                if node in computed:
                    self.values[node], ui = await compute(self, node, node in plans)
                elif node in plans:
                    ui = await render_planned(self, node, plans[node])
                await self._send_executed(node, ui)
                queue.cache[signatures[node]] = CachedNode(ui, self.values.get(node))
                executed.append(node)
                await self.node_state(node, 1.0, "finished")
            job.status = "completed"
            await self.message("execution_success", {}, record=True)
        except Interrupted:
            job.status = "cancelled"
            await self._failure("execution_interrupted", current, executed, {})
        except OutOfMemory:
            job.status = "failed"
            inputs = job.prompt[current].get("inputs", {})
            shown = {k: [v] for k, v in inputs.items() if not isinstance(v, list)}
            trace = ['  File "sim/run.py", in execute\n    (simulated GPU out of memory)\n']
            details = _error_details("torch.OutOfMemoryError", OOM_MESSAGE, trace, shown, order)
            await self._failure("execution_error", current, executed, details)
        except NodeFailed as failed:
            job.status = "failed"
            shown = {k: [_shown(v)] for k, v in failed.inputs.items()}
            details = _error_details(
                failed.type_name, str(failed.error), failed.traceback, shown, order
            )
            await self._failure("execution_error", current, executed, details)
        finally:
            queue.current_node = None
            if dropper is not None:
                dropper.cancel()
            job.end_ms = now_ms()
            self._account(started)
            # ComfyUI's default cache keeps only the nodes of the latest prompt.
            keep = {signatures[n] for n in order}
            queue.cache = {k: v for k, v in queue.cache.items() if k in keep}

    def _oom_node(self, order: list[str], cached: list[str]) -> str | None:
        if self.queue.settings.faults.oom_on_prompt_n != self.number:
            return None
        prompt = self.job.prompt
        samplers = [n for n in order if prompt[n]["class_type"] in SAMPLER_CLASSES]
        return (samplers or [n for n in order if n not in cached] or [order[-1]])[0]

    async def _replay(self, node: str, cached: CachedNode) -> None:
        if cached.values is not None:
            self.values[node] = cached.values
        if node not in self.job.outputs_to_execute:
            return
        await self._send_executed(node, cached.ui)
        await self.node_state(node, 1, "finished", alone=True)

    async def _send_executed(self, node: str, output: dict[str, Any] | None) -> None:
        if output is None:
            return
        self.job.outputs[node] = output
        data = {"node": node, "display_node": node, "output": output}
        await self.message("executed", data, record=False)

    async def _failure(
        self, event: str, node: str, executed: list[str], details: dict[str, Any]
    ) -> None:
        data: dict[str, Any] = {
            "node_id": node,
            "node_type": self.job.prompt[node]["class_type"],
            "executed": executed,
            **details,
        }
        await self.message(event, data, record=True)
        self.job.error = self.job.messages[-1][1] if event == "execution_error" else None

    def _account(self, started: float) -> None:
        ended = time.time()
        stats = self.queue.stats
        stats.gpu_busy_seconds += ended - started
        stats.executions.append(
            {
                "prompt_id": self.job.prompt_id,
                "start": started,
                "end": ended,
                "start_ms": self.job.start_ms,
                "end_ms": self.job.end_ms,
                "outputs": list(self.job.outputs),
                "family": self.family,
                "load_s": self.load_seconds,
            }
        )

    async def _drop_later(self, delay: float) -> None:
        await asyncio.sleep(delay)
        await self.queue.hub.drop_all()
