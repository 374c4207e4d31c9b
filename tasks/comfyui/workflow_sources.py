"""Where a run's workflow templates come from: your exports, or the built-in set.

A setting is a list of entries, each one of:

* a folder of API-format exports, named like the built-in files (``ltx23_relay_i2v.json``)
  or by kind (``relay_i2v.json``); the kinds it lacks come from further down;
* ``KIND=FILE`` for one kind (``relay_i2v``, ``relay_t2v``, ``keyframe``, ``cue``);
* ``block:NAME``, a saved ``WorkflowSet`` block (``blocks/workflows.py``).

Inside one setting a ``KIND=FILE`` beats a folder, a folder beats a block, and a later entry
beats an earlier one of the same sort. Between settings, per kind: the CLI flag or flow
parameter, then ``$REELFLOW_WORKFLOWS`` (comma-separated), then the built-in
``config/workflows``. Where a template came from is kept as its ``origin``; it is no part of
any cache key (the filled prompt is), so the same export in another folder renders nothing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tasks.comfyui.errors import TemplateError
from tasks.comfyui.workflow import TemplateKind, Workflow, load_template
from tasks.errors import ReelflowError

ENVIRONMENT = "REELFLOW_WORKFLOWS"
KINDS = ", ".join(kind.name for kind in TemplateKind)


class WorkflowError(ReelflowError):
    """A workflow setting names something that cannot be used: one line per problem."""


@dataclass(frozen=True)
class Entry:
    """One entry of a workflow setting, as written and as understood."""

    text: str
    setting: str
    kind: TemplateKind | None = None
    path: Path | None = None
    block: str | None = None

    @property
    def rank(self) -> int:
        """Specificity: a block (0) < a folder (1) < one kind's file (2)."""
        return 2 if self.kind is not None else 1 if self.path is not None else 0


def parse_entry(text: str, setting: str) -> Entry:
    """``block:NAME``, ``KIND=FILE`` or a folder; anything else is refused by name."""
    entry = text.strip()
    if entry.startswith("block:"):
        name = entry.removeprefix("block:").strip()
        if not name:
            raise WorkflowError(f"{setting}: '{text}' names no block; write block:NAME")
        return Entry(text, setting, block=name)
    word, equals, file = entry.partition("=")
    if equals:
        kind = TemplateKind.named(word.strip())
        if kind is None:
            raise WorkflowError(
                f"{setting}: '{word.strip()}' in '{text}' is no workflow kind; use one of {KINDS}"
            )
        return Entry(text, setting, kind=kind, path=Path(file.strip()).expanduser())
    path = Path(entry).expanduser()
    if path.suffix.lower() == ".json":
        raise WorkflowError(
            f"{setting}: say which kind '{text}' is, e.g. relay_i2v={text} (kinds: {KINDS})"
        )
    return Entry(text, setting, path=path)


def setting_entries(values: Sequence[str], setting: str) -> list[Entry]:
    return [parse_entry(value, setting) for value in values if value.strip()]


def environment_entries(environ: Mapping[str, str] = os.environ) -> list[Entry]:
    values = environ.get(ENVIRONMENT, "").split(",")
    return setting_entries(values, f"${ENVIRONMENT}")


def folder_templates(folder: Path, setting: str) -> dict[TemplateKind, Workflow]:
    """The templates a folder holds, by kind; a folder with none of them is refused."""
    if not folder.is_dir():
        raise WorkflowError(f"{setting}: {folder} is not a folder (a folder of API exports)")
    found: dict[TemplateKind, Workflow] = {}
    for kind in TemplateKind:
        files = [
            folder / f"{stem}.json"
            for stem in dict.fromkeys((kind.value, kind.name))
            if (folder / f"{stem}.json").is_file()
        ]
        if len(files) > 1:
            raise WorkflowError(
                f"{setting}: {folder} has both {files[0].name} and {files[1].name}; keep one"
            )
        if files:
            found[kind] = Workflow.load(files[0])
    if not found:
        names = ", ".join(f"{kind.value}.json" for kind in TemplateKind)
        raise WorkflowError(f"{setting}: {folder} holds none of {names} (or relay_i2v.json ...)")
    return found


def entry_templates(
    entry: Entry, blocks: Mapping[str, Mapping[TemplateKind, Workflow]]
) -> dict[TemplateKind, Workflow]:
    """What one entry provides; ``blocks`` holds the loaded blocks by name."""
    try:
        return _entry_templates(entry, blocks)
    except TemplateError as unreadable:
        raise WorkflowError(f"{entry.setting}: {unreadable}") from unreadable


def _entry_templates(
    entry: Entry, blocks: Mapping[str, Mapping[TemplateKind, Workflow]]
) -> dict[TemplateKind, Workflow]:
    if entry.block is not None:
        return dict(blocks[entry.block])
    assert entry.path is not None
    if entry.kind is None:
        return folder_templates(entry.path, entry.setting)
    if not entry.path.is_file():
        raise WorkflowError(f"{entry.setting}: {entry.text}: no such file {entry.path}")
    return {entry.kind: Workflow.load(entry.path)}


def layer(
    entries: Sequence[Entry], blocks: Mapping[str, Mapping[TemplateKind, Workflow]]
) -> dict[TemplateKind, Workflow]:
    """One setting's templates: the most specific entry for each kind, the later on a tie."""
    chosen: dict[TemplateKind, Workflow] = {}
    for entry in sorted(entries, key=lambda e: e.rank):  # stable: order kept within a rank
        chosen.update(entry_templates(entry, blocks))
    return chosen


def choose_templates(
    layers: Sequence[Mapping[TemplateKind, Workflow]],
) -> dict[TemplateKind, Workflow]:
    """Each kind from the first layer that has it, else built in; every one checked.

    Every problem of every template is listed, one line each, before anything runs.
    """
    templates: dict[TemplateKind, Workflow] = {}
    problems: list[str] = []
    for kind in TemplateKind:
        source = next((found[kind] for found in layers if kind in found), None)
        try:
            templates[kind] = load_template(kind) if source is None else source.checked(kind)
        except TemplateError as bad:
            problems += str(bad).splitlines()
    if problems:
        raise WorkflowError("\n".join(problems))
    return templates


def kept_titles_notice(templates: Mapping[TemplateKind, Workflow]) -> list[str]:
    """One line per template that keeps its own values for some optional titles."""
    return [
        f"{workflow.origin}: no node titled {', '.join(kept)}; the template's own values stay"
        for workflow in templates.values()
        if (kept := workflow.kept_titles())
    ]
