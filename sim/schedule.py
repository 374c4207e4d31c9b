"""Which node runs next: ComfyUI's execution order for one prompt.

ComfyUI gathers the nodes the outputs need (depth first, later-declared inputs first)
and then, among the nodes whose inputs are all ready, prefers for the user's sake:
an output node; else a node an output is waiting on; else one two steps before an
output; else the first gathered. So a preview appears as soon as it can.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Prompt = Mapping[str, Mapping[str, Any]]


def _links(prompt: Prompt, node_id: str) -> list[str]:
    return [
        value[0]
        for value in prompt[node_id].get("inputs", {}).values()
        if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str)
        and value[0] in prompt
    ]  # fmt: skip


def gather(prompt: Prompt, outputs: list[str]) -> dict[str, set[str]]:
    """Every node the outputs need, in ComfyUI's order, with the nodes each one waits on."""
    waits: dict[str, set[str]] = {}
    for output in outputs:
        stack = [output]
        while stack:
            node_id = stack.pop()
            if node_id in waits or node_id not in prompt:
                continue
            waits[node_id] = set(_links(prompt, node_id))
            stack.extend(_links(prompt, node_id))
    return waits


def execution_order(
    prompt: Prompt, outputs: list[str], is_output: Callable[[str], bool]
) -> list[str]:
    """The order the nodes run in; ``is_output`` tells whether a class is an output node."""
    waits = gather(prompt, outputs)
    feeds: dict[str, set[str]] = {n: set() for n in waits}
    for node_id, sources in waits.items():
        for source in sources:
            feeds[source].add(node_id)

    def output(node_id: str) -> bool:
        return is_output(str(prompt[node_id]["class_type"]))

    def pick(ready: list[str]) -> str:
        for test in (
            output,
            lambda n: any(output(m) for m in feeds[n]),
            lambda n: any(output(k) for m in feeds[n] for k in feeds[m]),
        ):
            chosen = next((n for n in ready if test(n)), None)
            if chosen is not None:
                return chosen
        return ready[0]

    order: list[str] = []
    pending = dict.fromkeys(waits)
    while pending:
        ready = [n for n in pending if not (waits[n] - set(order))]
        if not ready:  # a cycle: validation refuses these, so this is only a safeguard
            ready = list(pending)
        chosen = pick(ready)
        order.append(chosen)
        del pending[chosen]
    return order
