"""What ComfyUI servers report about their GPU: how many prompts they hold, which model family.

Several runs (and other clients) share a studio's servers, and each run's scheduler sees
only its own renders. The servers know the rest: `GET /queue` lists the prompt running and
those waiting, and `GET /history?max_items=N` the newest finished ones (ComfyUI keeps
history in the order prompts finished). Each entry carries the prompt's graph, and the graph
tells the family: LTX nodes for `ltx`, ACE-Step nodes for `ace_step`, any other graph with a
diffusion model loader or sampler for `image`. A graph without a model (a model-free test
prompt) says nothing about what is loaded, so the newest one that does is used.

What no answer shows: `POST /free` unloading the models, and a slot another run holds while
its prompt is not submitted yet (the claim on the slot finds that out).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping, Sequence
from typing import Any

from blocks.comfyui import ComfyUIServer
from tasks.comfyui.errors import ComfyUIError
from tasks.runtime.schedule.policy import ServerReport
from tasks.schema.schedule import Family

HISTORY_DEPTH = 4
"""How many finished prompts to look back through for one that used a model."""

_MODEL_NODES = ("Loader", "KSampler", "SamplerCustom")


def family_of(graph: Mapping[str, Any]) -> Family | None:
    """The model family an API-format prompt graph runs, or None if it runs no model."""
    classes = [
        str(node.get("class_type", "")) for node in graph.values() if isinstance(node, Mapping)
    ]
    if any("LTXV" in name or "LTXAV" in name for name in classes):
        return "ltx"
    if any("AceStep" in name for name in classes):
        return "ace_step"
    if any(marker in name for name in classes for marker in _MODEL_NODES):
        return "image"
    return None


def _graph(item: Any) -> Mapping[str, Any]:
    """The graph of a `[number, id, graph, extra_data, outputs]` queue or history item."""
    if isinstance(item, list) and len(item) > 2 and isinstance(item[2], Mapping):
        return item[2]
    return {}


def report_from(queue: Mapping[str, Any], history: Mapping[str, Any], asked: float) -> ServerReport:
    """A report from the bodies of `GET /queue` and `GET /history?max_items=N`."""
    running = list(queue.get("queue_running") or [])
    # Pending prompts run lowest number first; the last of them decides what stays loaded.
    pending = sorted(queue.get("queue_pending") or [], key=lambda item: item[0])
    finished = [entry.get("prompt") for entry in history.values() if isinstance(entry, Mapping)]
    family = None
    for item in [*reversed(pending), *running, *reversed(finished)]:
        family = family_of(_graph(item))
        if family is not None:
            break
    return ServerReport(busy=len(running) + len(pending), family=family, asked=asked)


async def ask(server: ComfyUIServer) -> ServerReport | None:
    """One server's report, or None when it does not answer (it is then left as believed)."""
    asked = time.monotonic()
    try:
        async with server.client() as client:
            # The client's own queue() keeps ids only; the graphs are what tell the family.
            queue = await client._json("GET", "/queue")
            history = await client._json(
                "GET", "/history", params={"max_items": str(HISTORY_DEPTH)}
            )
    except ComfyUIError:
        return None
    # A report only advises the scheduler: an answer in a shape we do not know is no answer.
    try:
        return report_from(queue, history, asked)
    except (AttributeError, TypeError, KeyError, IndexError):
        return None


async def ask_all(servers: Sequence[ComfyUIServer], timeout_s: float) -> dict[str, ServerReport]:
    """Every server's report that arrives within `timeout_s`, by URL."""

    async def one(server: ComfyUIServer) -> tuple[str, ServerReport | None]:
        report = None
        with contextlib.suppress(TimeoutError):
            report = await asyncio.wait_for(ask(server), timeout_s)
        return server.url, report

    answers = await asyncio.gather(*(one(server) for server in servers))
    return {url: report for url, report in answers if report is not None}
