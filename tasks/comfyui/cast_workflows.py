"""Filling the cast's templates: a keyframe that places up to three portraits in a shot.

The template carries three portrait loaders (`reelflow.portrait1..3`, LoadImage into
TextEncodeQwenImageEditPlus `image1..3`); a shot with fewer cast members on screen drops the
loaders it does not need, and with them the inputs that took their pictures (optional inputs
of the edit encoder), so the prompt sent is exactly the graph that runs.
"""

from __future__ import annotations

from typing import Any

from tasks.comfyui.errors import TemplateError
from tasks.comfyui.models import ModelSet
from tasks.comfyui.titles import PORTRAITS, TemplateKind
from tasks.comfyui.workflow import Workflow

Prompt = dict[str, dict[str, Any]]


def cast_keyframe_prompt(
    workflow: Workflow,
    *,
    prompt: str,
    portraits: list[str],
    width: int,
    height: int,
    seed: int,
    models: ModelSet,
    output_prefix: str,
) -> Prompt:
    """A keyframe prompt showing the uploaded `portraits` (1-3 file names) in the shot."""
    if not 1 <= len(portraits) <= len(PORTRAITS):
        raise TemplateError(
            f"{workflow.name}: a cast keyframe takes 1-{len(PORTRAITS)} portraits, "
            f"not {len(portraits)}"
        )
    edit = models.keyframe_cast
    checked = (
        workflow if workflow.kind is not None else workflow.checked(TemplateKind.keyframe_cast)
    )
    values: dict[str, dict[str, Any]] = {
        "reelflow.checkpoint": {"unet_name": edit.diffusion_model},
        "reelflow.text_encoder": {"clip_name": edit.text_encoder},
        "reelflow.vae": {"vae_name": edit.vae},
        "reelflow.prompt": {"prompt": prompt},
        "reelflow.size": {"width": width, "height": height},
        "reelflow.seed": {"seed": seed, "steps": edit.steps},
        "reelflow.output": {"filename_prefix": output_prefix},
    }
    for title, name in zip(PORTRAITS, portraits, strict=False):
        values[title] = {"image": name}
    unused = {checked.node_titled(title) for title in PORTRAITS[len(portraits) :]}
    bound: Prompt = checked.bind(values)
    return without_nodes(bound, unused - {None})


def without_nodes(prompt: Prompt, removed: set[str | None]) -> Prompt:
    """The prompt without `removed` nodes and without every input linked to one of them."""
    kept = {node_id: node for node_id, node in prompt.items() if node_id not in removed}
    for node in kept.values():
        node["inputs"] = {
            name: value
            for name, value in node["inputs"].items()
            if not (isinstance(value, list) and len(value) == 2 and value[0] in removed)
        }
    return kept
