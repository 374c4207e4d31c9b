"""The model-free example workflows: core nodes only, valid on the real server's catalogue."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sim.inventory import catalogue
from tasks.comfyui.cast_workflows import cast_keyframe_prompt
from tasks.comfyui.models import load_models
from tasks.comfyui.titles import TITLES
from tasks.comfyui.validate import validate_prompt
from tasks.comfyui.workflow import TemplateKind, Workflow, cue_prompt, keyframe_prompt, relay_prompt
from tasks.comfyui.workflow_sources import folder_templates

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "workflows"
START = "reelflow_carried_frame.png"
VOICE, PORTRAIT = "reelflow_voice.wav", "reelflow_portrait.png"
UPLOADS = {START, VOICE, PORTRAIT}
MODELS = load_models("fast")


def _examples() -> dict[TemplateKind, Workflow]:
    return {kind: w.checked(kind) for kind, w in folder_templates(EXAMPLES, "examples").items()}


VOICED = (TemplateKind.relay_t2v_voice, TemplateKind.relay_i2v_voice)
IMAGE_TO_VIDEO = (TemplateKind.relay_i2v, TemplateKind.relay_i2v_voice)


def _filled(kind: TemplateKind, workflow: Workflow) -> dict[str, Any]:
    if kind is TemplateKind.keyframe_cast:
        return cast_keyframe_prompt(
            workflow, prompt="Edda at the rail", portraits=[PORTRAIT], width=640, height=384,
            seed=5, models=MODELS, output_prefix="reelflow/keyframe",
        )  # fmt: skip
    if kind is TemplateKind.keyframe:
        return keyframe_prompt(
            workflow, prompt="A pier", width=640, height=384, seed=5, models=MODELS,
            output_prefix="reelflow/keyframe",
        )  # fmt: skip
    if kind is TemplateKind.cue:
        return cue_prompt(
            workflow, tags="strings", bpm=80, keyscale="D minor", seconds=12.5, seed=3,
            models=MODELS, output_prefix="reelflow/cue",
        )  # fmt: skip
    return relay_prompt(
        workflow,
        global_prompt="A harbour at dusk.",
        segment_prompts=["Waves.", 'ANA says "Home."'],
        segment_frames=[25, 24],
        width=640,
        height=384,
        frames=49,
        fps=24,
        seed=11,
        negative="music",
        start_image=START if kind in IMAGE_TO_VIDEO else None,
        models=MODELS,
        output_prefix="reelflow/sequence",
        voice=VOICE if kind in VOICED else None,
    )


def test_the_examples_cover_every_kind() -> None:
    assert set(_examples()) == set(TemplateKind)


@pytest.mark.parametrize("kind", list(TemplateKind))
def test_each_filled_example_passes_the_validator_on_the_captured_object_info(
    kind: TemplateKind,
) -> None:
    # The catalogue is ComfyUI 0.27.0's own /object_info, captured with no model files at
    # all: a prompt that validates here runs on a bare CPU-only server.
    prompt = _filled(kind, _examples()[kind])
    result = validate_prompt(
        prompt, catalogue(), input_file_exists=lambda _class, name: name in UPLOADS
    )
    assert result.ok, (result.error, result.node_errors)
    assert not result.node_errors


@pytest.mark.parametrize("kind", list(TemplateKind))
def test_the_examples_use_core_nodes_only(kind: TemplateKind) -> None:
    for node in _examples()[kind].nodes.values():
        module = catalogue()[node["class_type"]]["python_module"]
        assert not module.startswith("custom_nodes"), (kind, node["class_type"], module)


def test_a_model_free_sequence_takes_its_size_length_seed_and_sound_from_the_plan() -> None:
    prompt = _filled(TemplateKind.relay_i2v, _examples()[TemplateKind.relay_i2v])
    by_title = {n["_meta"]["title"]: n["inputs"] for n in prompt.values()}
    frames = by_title["reelflow.frames"]
    assert (frames["width"], frames["height"], frames["batch_size"]) == (640, 384, 49)
    assert by_title["reelflow.seed"]["seed"] == 11
    assert by_title["reelflow.audio_frames"]["duration"] == pytest.approx(49 / 24)
    assert by_title["reelflow.video"]["fps"] == 24.0
    assert by_title["reelflow.start_image"]["image"] == START
    assert by_title["reelflow.output"]["filename_prefix"] == "reelflow/sequence"


def test_a_model_free_cue_and_keyframe_take_their_length_and_size() -> None:
    cue = _filled(TemplateKind.cue, _examples()[TemplateKind.cue])
    assert cue["1"]["inputs"]["duration"] == 12.5
    keyframe = _filled(TemplateKind.keyframe, _examples()[TemplateKind.keyframe])
    assert (keyframe["1"]["inputs"]["width"], keyframe["1"]["inputs"]["height"]) == (640, 384)
    assert keyframe["2"]["inputs"]["seed"] == 5


def test_the_examples_say_which_titles_they_leave_to_themselves() -> None:
    kept = {kind: w.kept_titles() for kind, w in _examples().items()}
    assert "reelflow.prompt" in kept[TemplateKind.relay_t2v]
    assert "reelflow.seed" not in kept[TemplateKind.relay_t2v]
    assert "reelflow.checkpoint" in kept[TemplateKind.cue]


def test_the_guide_names_every_title_reelflow_binds() -> None:
    guide = (EXAMPLES / "README.md").read_text()
    missing = {title for titles in TITLES.values() for title in titles if f"`{title}`" not in guide}
    assert not missing
