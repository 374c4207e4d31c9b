"""The work one node does on the simulated GPU, and how long it holds it.

* ``render_planned``: an output of a model graph (LTX, ACE-Step, a text-to-image keyframe)
  renders its animatic while the GPU is held for the configured seconds per output second
  (plus a model load when the family changes), with a sampler progress bar.
* ``compute``: a model-free node computes its real result (``sim.model_free``), an output
  node writes it (``sim.writers``), and the GPU is held in proportion to the pixels or
  samples produced (``SimSettings.node_costs``), like a CPU-bound node on a real server.
"""

from __future__ import annotations

import asyncio
import os
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from sim.folders import Folders
from sim.graph import OutputPlan
from sim.inventory import catalogue
from sim.model_free import Context, evaluate
from sim.render import Rendered, render_output
from sim.speech import SoundtrackFaults
from sim.values import Images, StandIn, megapixels, megasamples
from sim.writers import write_output

if TYPE_CHECKING:
    from sim.run import PromptRun

PROGRESS_STEPS = 20
# Nodes with a progress bar over the frames they process (and so interruptible inside).
FRAME_PROGRESS = frozenset({"ColorTransfer"})


class NodeFailed(Exception):
    """A model-free node raised while executing (an unreadable upload, say)."""

    def __init__(self, error: BaseException, inputs: dict[str, Any]) -> None:
        super().__init__(str(error))
        self.error = error
        self.inputs = inputs
        kind, module = type(error), type(error).__module__
        # ComfyUI names exceptions with their module, builtins aside.
        self.type_name = (
            kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"
        )
        self.traceback = traceback.format_tb(error.__traceback__)


async def _hold(
    run: PromptRun,
    work: asyncio.Task[Any],
    target: float,
    on_step: Callable[[float], Awaitable[None]] | None,
    interruptible: bool,
) -> None:
    """Wait until ``work`` is done and ``target`` seconds have passed."""
    began = time.monotonic()
    while True:
        elapsed = time.monotonic() - began
        if on_step is not None:
            await on_step(elapsed)
        if work.done() and elapsed >= target:
            return
        if interruptible and run.interrupted:
            await asyncio.wait({work})
            raise Interrupted
        await asyncio.sleep(min(0.05, max(target - elapsed, 0.005)))


async def render_planned(run: PromptRun, node: str, plan: OutputPlan) -> dict[str, Any] | None:
    """Render a model graph's output as an animatic, holding the GPU for its budget."""
    settings, stats = run.queue.settings, run.queue.stats
    target = plan.output_seconds * settings.gpu_seconds_per_output_second
    run.family = plan.family or run.family
    if plan.family is not None and plan.family != run.queue.loaded_family:
        load = float(getattr(settings.model_load_seconds, plan.family))
        target += load
        run.queue.loaded_family = plan.family
        run.load_seconds += load
        stats.model_loads[plan.family] = stats.model_loads.get(plan.family, 0) + 1
        seconds = stats.model_load_seconds
        seconds[plan.family] = seconds.get(plan.family, 0.0) + load
    faults = settings.faults
    voice_faults = SoundtrackFaults(
        narration=faults.narration_in_silent_segments,
        word_salad=faults.word_salad_in_silent_segments,
        title_card=faults.title_card,
    )
    work = asyncio.create_task(
        asyncio.to_thread(render_output, plan, run.queue.folders, voice_faults)
    )
    crash = faults.crash_mid_prompt_n == run.number
    sent = 0

    async def step(elapsed: float) -> None:
        nonlocal sent
        if crash and elapsed >= target / 2:
            os._exit(70)  # a hard crash mid-prompt: no cleanup, no answer
        done = PROGRESS_STEPS if target <= 0 else int(elapsed / target * PROGRESS_STEPS)
        done = min(PROGRESS_STEPS, done)
        # Only model renders have a sampler progress bar; plain saves send none.
        if plan.family and done > sent and (done < PROGRESS_STEPS or work.done()):
            sent = done
            await run.progress(node, done, PROGRESS_STEPS)

    await _hold(run, work, target, step, interruptible=True)
    try:
        return work.result().commit()  # type: ignore[no-any-return]
    except Exception as error:  # an animatic that cannot be encoded fails the prompt, not the GPU
        raise NodeFailed(error, {}) from error


def resolved_inputs(run: PromptRun, node: str) -> dict[str, Any]:
    """A node's inputs with every link replaced by the upstream node's value."""
    resolved: dict[str, Any] = {}
    for name, value in run.job.prompt[node].get("inputs", {}).items():
        if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str):
            produced = run.values.get(value[0], ())
            index = value[1] if isinstance(value[1], int) else 0
            kind = catalogue()[run.job.prompt[value[0]]["class_type"]]["output"][index]
            resolved[name] = produced[index] if index < len(produced) else StandIn(kind, value[0])
        else:
            resolved[name] = value
    return resolved


def _run_node(
    class_type: str, inputs: dict[str, Any], context: Context, folders: Folders, write: bool
) -> tuple[tuple[Any, ...], Rendered | None]:
    values = evaluate(class_type, inputs, context)
    return values, (write_output(class_type, inputs, folders) if write else None)


def _cost(
    run: PromptRun, class_type: str, inputs: dict[str, Any], values: tuple[Any, ...]
) -> float:
    cost = run.queue.settings.cost_of(class_type)
    # Work is what the node produces; an output node's is what it receives.
    measured = list(values) or list(inputs.values())
    pixels = sum(megapixels(v) for v in measured)
    samples = sum(megasamples(v) for v in measured)
    return cost.seconds + cost.per_megapixel * pixels + cost.per_megasample * samples


async def compute(
    run: PromptRun, node: str, is_output: bool
) -> tuple[tuple[Any, ...], dict[str, Any] | None]:
    """Execute a model-free node for real; an output node also writes its files."""
    class_type = run.job.prompt[node]["class_type"]
    inputs = resolved_inputs(run, node)
    folders = run.queue.folders
    context = Context(node, folders, tuple(catalogue()[class_type]["output"]))
    began = time.monotonic()
    work = asyncio.create_task(
        asyncio.to_thread(_run_node, class_type, inputs, context, folders, is_output)
    )
    try:
        await asyncio.wait({work})
        values, rendered = work.result()
    except Exception as error:  # the node's own failure becomes the prompt's execution_error
        raise NodeFailed(error, inputs) from error
    # The real work counts towards the node's cost; the rest is held.
    target = _cost(run, class_type, inputs, values) - (time.monotonic() - began)
    frames = next((v.pixels.shape[0] for v in values if isinstance(v, Images)), 0)
    on_step = None
    if class_type in FRAME_PROGRESS and frames:
        reported = 0

        async def on_step(elapsed: float) -> None:
            nonlocal reported
            done = frames if target <= 0 else min(frames, int(elapsed / target * frames))
            if done > reported:
                reported = done
                await run.progress(node, done, frames)

    # Without a progress bar, an interrupt waits for the node to finish, as in ComfyUI.
    await _hold(run, work, target, on_step, interruptible=on_step is not None)
    return values, (rendered.commit() if rendered is not None else None)


class Interrupted(Exception):
    """The running prompt was interrupted by a client."""
