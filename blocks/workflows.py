"""A studio's own ComfyUI workflow templates, saved once on the Prefect server.

Name it in a run's workflows setting as ``block:NAME``. The exports themselves can live in
the block (``templates``: nothing to copy onto the workers), or it can point at a folder or
files that every worker has at the same path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from prefect.blocks.core import Block
from pydantic import Field, field_validator

from tasks.comfyui.errors import TemplateError
from tasks.comfyui.workflow import TemplateKind, Workflow
from tasks.comfyui.workflow_sources import (
    KINDS,
    Entry,
    WorkflowError,
    folder_templates,
    layer,
)


def _kind(word: str) -> TemplateKind:
    kind = TemplateKind.named(word)
    if kind is None:
        raise ValueError(f"'{word}' is no workflow kind; use one of {KINDS}")
    return kind


class WorkflowSet(Block):
    """API-format workflow exports for some or all kinds; the rest stay built in."""

    _block_type_name: ClassVar[str] = "reelflow Workflows"
    _block_type_slug: ClassVar[str] = "reelflow-workflows"
    _description: ClassVar[str] = (
        "Your own ComfyUI workflows (exported with 'Save (API)', nodes titled reelflow.*)."
    )

    templates: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Kind (relay_i2v, relay_t2v, keyframe, cue) -> the exported API JSON.",
    )
    folder: str = Field("", description="A folder of exports at this path on every worker.")
    files: dict[str, str] = Field(
        default_factory=dict, description="Kind -> an export's path on every worker."
    )

    @field_validator("templates", "files")
    @classmethod
    def _known_kinds(cls, value: dict[str, Any]) -> dict[str, Any]:
        for word in value:
            _kind(word)
        return value

    @classmethod
    def from_folder(cls, folder: Path) -> WorkflowSet:
        """The exports in ``folder`` copied into a block, so workers need no copy of them."""
        found = folder_templates(folder, str(folder))
        return cls(templates={kind.name: workflow.nodes for kind, workflow in found.items()})

    def workflows(self, name: str) -> dict[TemplateKind, Workflow]:
        """This block's templates by kind: its own exports over its files over its folder."""
        setting = f"block:{name}"
        entries = [Entry(setting, setting, path=Path(self.folder))] if self.folder else []
        entries += [
            Entry(f"{kind}={path}", setting, kind=_kind(kind), path=Path(path))
            for kind, path in self.files.items()
        ]
        chosen = layer(entries, {})
        for word, document in self.templates.items():
            kind = _kind(word)
            origin = f"{setting} ({kind.name})"
            try:
                chosen[kind] = Workflow.from_document(document, name=origin, origin=origin)
            except TemplateError as bad:
                raise WorkflowError(str(bad)) from bad
        return chosen
