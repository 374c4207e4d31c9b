"""Check every prompt a film will submit against the server's live ``/object_info``.

Runs before any GPU time is spent and names what to fix: a missing node class (and the
custom node pack that provides it), a missing model file (and its models folder), or an
input out of range. Each distinct problem is reported once, with the stages that need it,
however many prompts share it; a missing node class does not hide the model files the same
prompt lacks (its node is checked as a stand-in that accepts anything, so the validator
still walks past it to the loaders upstream).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from tasks.comfyui.errors import PreflightFailed, PromptRejected
from tasks.comfyui.models import model_folders
from tasks.comfyui.validate import validate_prompt
from tasks.runtime.files import CONFIG_DIR

NODE_PACKS_TOML = CONFIG_DIR / "node_packs.toml"
_MODEL_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf", ".sft")
_GROUPS = {
    "model": "model files the server lacks (each goes into that folder of its ComfyUI):",
    "node": "node classes the server lacks:",
    "input": "inputs the server refuses:",
    "prompt": "prompts the server refuses:",
}


class ObjectInfoSource(Protocol):
    async def object_info(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class NodePack:
    name: str
    author: str
    url: str


@dataclass(frozen=True, order=True)
class Finding:
    """One distinct thing to fix, however many prompts need it."""

    group: Literal["model", "node", "input", "prompt"]
    text: str


@dataclass
class PreflightReport:
    """What preflight found: each finding with the stages (prompt names) that need it."""

    checked: list[str] = field(default_factory=list)
    needed_by: dict[Finding, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.needed_by

    @property
    def problems(self) -> list[str]:
        """One line per distinct problem, naming the stages that need it."""
        return [
            f"{finding.text} (needed by {stages_text(self.needed_by[finding])})"
            for finding in sorted(self.needed_by)
        ]

    def add(self, stage: str, findings: list[Finding]) -> None:
        for finding in findings:
            stages = self.needed_by.setdefault(finding, [])
            if stage not in stages:
                stages.append(stage)

    def raise_if_failed(self, server: str = "the server") -> None:
        refused = refusal({server: self})
        if refused is not None:
            raise refused


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
        missing = sorted({str(n.get("class_type")) for n in prompt.values()} - set(object_info))
        report.add(name, [_missing_class(class_type, packs) for class_type in missing])
        known = {**object_info, **_stand_ins(prompt, missing)}
        # Start images are carried-forward frames uploaded during the film: not there yet.
        result = validate_prompt(prompt, known, input_file_exists=lambda _cls, _file: True)
        report.add(name, findings_of(result.error, result.node_errors, prompt, folders))
    return report


def _missing_class(class_type: str, packs: Mapping[str, NodePack]) -> Finding:
    pack = packs.get(class_type)
    if pack is not None:
        fix = f"install the custom node pack {pack.name} by {pack.author} ({pack.url})"
    else:
        fix = "update ComfyUI, or install the custom node pack that provides it"
    return Finding("node", f"{class_type}: {fix}")


def _stand_ins(prompt: Mapping[str, Any], missing: list[str]) -> dict[str, Any]:
    """Permissive ``/object_info`` entries for classes the server lacks.

    A stand-in declares the links its node was sent as inputs of any type, so validation
    continues upstream; a node nothing links from counts as an output, so a missing save
    node still has its graph checked.
    """
    slots: dict[str, int] = {}
    for node in prompt.values():
        for value in node.get("inputs", {}).values():
            if _is_link(value) and value[0] in prompt:
                source = prompt[value[0]]["class_type"]
                slots[source] = max(slots.get(source, 0), int(value[1]) + 1)
    stand_ins: dict[str, Any] = {}
    for node in prompt.values():
        class_type = node.get("class_type")
        if class_type not in missing:
            continue
        entry = stand_ins.setdefault(
            class_type,
            {
                "input": {"optional": {}},
                "output": ["*"] * max(1, slots.get(class_type, 0)),
                "output_node": class_type not in slots,
                "name": class_type,
            },
        )
        for name, value in node.get("inputs", {}).items():
            if _is_link(value):
                entry["input"]["optional"][name] = ["*", {}]
    return stand_ins


def _is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[1], int)


def findings_of(
    error: Mapping[str, Any] | None,
    node_errors: Mapping[str, Any],
    prompt: Mapping[str, Any],
    folders: Mapping[str, str],
    packs: Mapping[str, NodePack] | None = None,
) -> list[Finding]:
    """What a validator's answer (reelflow's or the server's) asks a user to fix."""
    findings = []
    for node_id, entry in node_errors.items():
        class_type = entry.get("class_type")
        node = prompt.get(node_id, {})
        title = (node.get("_meta") or {}).get("title")
        for item in entry.get("errors", []):
            extra = item.get("extra_info") or {}
            input_name = extra.get("input_name")
            value = extra.get("received_value")
            folder = folders.get(f"{class_type}.{input_name}")
            if item.get("type") == "value_not_in_list" and (folder or _looks_like_model(value)):
                where = f"models/{folder}" if folder else f"the folder {class_type} reads"
                findings.append(Finding("model", f"{value} -> {where}"))
                continue
            where = f"node {node_id}" + (f" '{title}'" if title else "") + f" ({class_type})"
            if input_name:
                where += f" input '{input_name}'"
            said = f"{item.get('message')} ({item.get('details')})"
            findings.append(Finding("input", f"{where}: {said}"))
    if error is not None and error.get("type") == "missing_node_type":
        class_type = str((error.get("extra_info") or {}).get("class_type"))
        findings.append(_missing_class(class_type, load_node_packs() if packs is None else packs))
    elif error is not None and not node_errors:
        text = f"{error.get('message')} {error.get('details') or ''}".rstrip()
        findings.append(Finding("prompt", text))
    return findings


def _looks_like_model(value: Any) -> bool:
    return isinstance(value, str) and value.lower().endswith(_MODEL_SUFFIXES)


_STAGE = re.compile(r"^(?P<word>.*?) (?P<number>\d+)$")


def stages_text(stages: list[str]) -> str:
    """``sequences 0-5, keyframes 0, 2, score cue 1``: stage names with their numbers merged."""
    numbered: dict[str, list[int]] = {}
    plain: list[str] = []
    for stage in stages:
        match = _STAGE.match(stage)
        if match is None:
            plain.append(stage)
        else:
            numbered.setdefault(match["word"], []).append(int(match["number"]))
    parts = []
    for word, numbers in numbered.items():
        ordered = sorted(set(numbers))
        parts.append(f"{word}{'s' if len(ordered) > 1 else ''} {_ranges(ordered)}")
    return ", ".join(parts + plain)


def _ranges(numbers: list[int]) -> str:
    runs: list[list[int]] = []
    for number in numbers:
        if runs and number == runs[-1][-1] + 1:
            runs[-1].append(number)
        else:
            runs.append([number])
    return ", ".join(
        f"{run[0]}-{run[-1]}" if len(run) > 2 else ", ".join(map(str, run)) for run in runs
    )


def refusal(reports: Mapping[str, PreflightReport]) -> PreflightFailed | None:
    """One message for everything every server lacks, grouped, or None when all is well.

    Servers that lack the same things share one list.
    """
    failing: dict[tuple[str, ...], list[str]] = {}
    for server, report in reports.items():
        if not report.ok:
            failing.setdefault(tuple(report.problems), []).append(server)
    if not failing:
        return None
    lines: list[str] = []
    counts: dict[str, int] = {}
    for servers in failing.values():
        report = reports[servers[0]]
        lines.append(f"ComfyUI at {', '.join(servers)} lacks what the film needs:")
        for group, heading in _GROUPS.items():
            found = [f for f in sorted(report.needed_by) if f.group == group]
            counts[group] = max(counts.get(group, 0), len(found))
            if found:
                lines.append(f"  {heading}")
                lines += [
                    f"    - {f.text} (needed by {stages_text(report.needed_by[f])})" for f in found
                ]
    lines.append("Nothing was rendered. Fix these, then run the same command again.")
    everything = [f"{server}: {p}" for server, r in reports.items() for p in r.problems]
    servers = sum(len(group) for group in failing.values())
    headline = _headline(counts, servers)
    return PreflightFailed(everything, text="\n".join(lines), headline=headline)


def _headline(counts: Mapping[str, int], servers: int) -> str:
    nouns = {"model": "model file", "node": "node class", "input": "input", "prompt": "prompt"}
    parts = [f"{n} {nouns[g]}{'s' if n > 1 else ''}" for g, n in counts.items() if n]
    who = "the ComfyUI server lacks" if servers == 1 else f"{servers} ComfyUI servers lack"
    return (
        f"preflight: {who} {', '.join(parts)}; nothing was rendered "
        "(the full list is the run's 'preflight' artifact)"
    )


def rejected_at(stage: str, server: str, rejected: PromptRejected) -> PromptRejected:
    """A prompt the server refused after preflight passed, said with its stage and what next."""
    if isinstance(rejected, PreflightFailed):
        return rejected
    findings = findings_of(rejected.error, rejected.node_errors, {}, model_folders())
    what = "; ".join(f.text for f in findings) or str(rejected)
    groups = {f.group for f in findings}
    if "model" in groups or "node" in groups:
        fix = "put the missing model files or node packs on the server"
    else:
        fix = "fix the workflow template or the value it was given"
    late = PromptRejected(rejected.error, rejected.node_errors, status_code=rejected.status_code)
    late.stage = stage
    late.args = (
        f"{stage}: ComfyUI at {server} refused the prompt: {what}. Next: {fix}, then run the "
        "same command again; renders that finished come from the cache.",
    )
    return late
