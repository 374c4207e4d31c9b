"""Check every prompt a film will submit against the server's live ``/object_info``.

Runs before any GPU time is spent and names what to fix: a missing node class (and
the custom node pack that provides it), a missing model file (and its models folder),
or an input out of range.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tasks.comfyui.errors import PreflightFailed
from tasks.comfyui.validate import validate_prompt
from tasks.comfyui.workflow import CONFIG_DIR, model_folders

NODE_PACKS_TOML = CONFIG_DIR / "node_packs.toml"


class ObjectInfoSource(Protocol):
    async def object_info(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class NodePack:
    name: str
    author: str
    url: str


@dataclass
class PreflightReport:
    """What preflight found; ``problems`` holds one line per thing to fix."""

    checked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def raise_if_failed(self) -> None:
        if self.problems:
            raise PreflightFailed(self.problems)


def load_node_packs(path: Path = NODE_PACKS_TOML) -> dict[str, NodePack]:
    """``class_type -> NodePack`` for the custom node classes we know the origin of."""
    with path.open("rb") as fh:
        packs = tomllib.load(fh).get("packs", {})
    return {
        class_type: NodePack(name, spec.get("author", ""), spec.get("url", ""))
        for name, spec in packs.items()
        for class_type in spec.get("classes", [])
    }


async def preflight(
    client: ObjectInfoSource, prompts: Mapping[str, dict[str, Any]]
) -> PreflightReport:
    """Fetch ``/object_info`` once and check each named prompt against it."""
    return check_prompts(prompts, await client.object_info())


def check_prompts(
    prompts: Mapping[str, dict[str, Any]],
    object_info: Mapping[str, Any],
    *,
    packs: Mapping[str, NodePack] | None = None,
    folders: Mapping[str, str] | None = None,
) -> PreflightReport:
    """The pure part of preflight, over an already fetched ``/object_info``."""
    packs = load_node_packs() if packs is None else packs
    folders = model_folders() if folders is None else folders
    report = PreflightReport(checked=list(prompts))
    for name, prompt in prompts.items():
        missing = _missing_classes(name, prompt, object_info, packs)
        if missing:
            # ComfyUI's validator stops at the first unknown class; we list them all instead.
            report.problems += missing
            continue
        report.problems += _validation_problems(name, prompt, object_info, folders)
    return report


def _title(node: Mapping[str, Any]) -> str:
    title = (node.get("_meta") or {}).get("title")
    return f" '{title}'" if title else ""


def _missing_classes(
    name: str,
    prompt: Mapping[str, Any],
    object_info: Mapping[str, Any],
    packs: Mapping[str, NodePack],
) -> list[str]:
    problems = []
    for node_id, node in prompt.items():
        class_type = node.get("class_type")
        if class_type in object_info:
            continue
        pack = packs.get(str(class_type))
        if pack is not None:
            fix = f"install the custom node pack {pack.name} by {pack.author} ({pack.url})"
        else:
            fix = "update ComfyUI or install the custom node pack that provides it"
        problems.append(
            f"{name}: node {node_id}{_title(node)} needs node class '{class_type}', "
            f"which the server does not have: {fix}"
        )
    return problems


def _validation_problems(
    name: str,
    prompt: Mapping[str, Any],
    object_info: Mapping[str, Any],
    folders: Mapping[str, str],
) -> list[str]:
    # Start images are carried-forward frames uploaded during the film: not there yet.
    result = validate_prompt(prompt, object_info, input_file_exists=lambda _cls, _file: True)
    problems = []
    for node_id, entry in result.node_errors.items():
        class_type = entry.get("class_type")
        node = prompt.get(node_id, {})
        for item in entry.get("errors", []):
            extra = item.get("extra_info") or {}
            input_name = extra.get("input_name")
            where = f"{name}: node {node_id}{_title(node)} ({class_type})"
            folder = folders.get(f"{class_type}.{input_name}")
            if item.get("type") == "value_not_in_list" and folder:
                problems.append(
                    f"{where} input '{input_name}': model file "
                    f"'{extra.get('received_value')}' is not in models/{folder} on the server"
                )
                continue
            if input_name:
                where += f" input '{input_name}'"
            problems.append(f"{where}: {item.get('message')} ({item.get('details')})")
    if result.error is not None and not result.node_errors:
        error = result.error
        problems.append(f"{name}: {error.get('message')} {error.get('details') or ''}".rstrip())
    return problems
