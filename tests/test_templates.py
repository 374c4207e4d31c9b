"""Workflow templates validate against ComfyUI's catalogue and bind by node title."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from sim.inventory import default_models, live_object_info
from tasks.comfyui.cast_workflows import cast_keyframe_prompt
from tasks.comfyui.errors import TemplateError
from tasks.comfyui.models import ModelSet, load_models, model_folders
from tasks.comfyui.titles import TITLES
from tasks.comfyui.validate import validate_prompt
from tasks.comfyui.workflow import (
    TemplateKind,
    Workflow,
    cue_prompt,
    keyframe_prompt,
    load_template,
    relay_prompt,
)

START_IMAGE = "carry_frame.png"
VOICE = "reelflow_voice.wav"
PORTRAIT, PORTRAIT_2 = "reelflow_edda.png", "reelflow_tomas.png"
I2V_VOICE = TemplateKind.relay_i2v_voice


def _relay(kind: TemplateKind, models: ModelSet, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "global_prompt": "A rainy rooftop at dusk. MAYA, a woman in a yellow raincoat.",
        "segment_prompts": ["Maya looks over the city.", 'MAYA says "We made it."'],
        "segment_frames": [25, 24],
        "width": 256,
        "height": 160,
        "frames": 49,
        "fps": 24,
        "seed": 7,
        "negative": "music, soundtrack, blurry",
        "start_image": START_IMAGE if kind in (TemplateKind.relay_i2v, I2V_VOICE) else None,
        "voice": VOICE if kind in (TemplateKind.relay_t2v_voice, I2V_VOICE) else None,
        "models": models,
        "output_prefix": "reelflow/seq_000",
    }
    return relay_prompt(load_template(kind), **{**values, **overrides})


def _filled(kind: TemplateKind, models: ModelSet) -> dict[str, Any]:
    relays = (
        TemplateKind.relay_i2v,
        TemplateKind.relay_t2v,
        TemplateKind.relay_i2v_voice,
        TemplateKind.relay_t2v_voice,
    )
    if kind in relays:
        return _relay(kind, models)
    if kind is TemplateKind.keyframe_cast:
        return cast_keyframe_prompt(
            load_template(kind),
            prompt="Place the people of the reference images on the lighthouse gallery.",
            portraits=[PORTRAIT, PORTRAIT_2],
            width=768,
            height=512,
            seed=5,
            models=models,
            output_prefix="reelflow/keyframe",
        )
    if kind is TemplateKind.keyframe:
        return keyframe_prompt(
            load_template(kind),
            prompt="A lighthouse at dawn, 35mm film still.",
            width=768,
            height=512,
            seed=3,
            models=models,
            output_prefix="reelflow/keyframe",
        )
    return cue_prompt(
        load_template(kind),
        tags="solo cello, sparse piano, sea wind",
        bpm=72,
        keyscale="D minor",
        seconds=32.0,
        seed=101,
        models=models,
        output_prefix="reelflow/cue_00",
    )


def _model_files(prompt: dict[str, Any]) -> dict[str, list[str]]:
    """Models folder -> files a filled prompt loads, read from its loader nodes."""
    folders = model_folders()
    needed: dict[str, list[str]] = defaultdict(list)
    for node in prompt.values():
        for name, value in node["inputs"].items():
            folder = folders.get(f"{node['class_type']}.{name}")
            if folder and isinstance(value, str):
                needed[folder].append(value)
    return needed


@pytest.mark.parametrize("mode", ["fast", "quality"])
@pytest.mark.parametrize("kind", list(TemplateKind))
def test_each_filled_template_passes_comfyuis_validator(
    kind: TemplateKind, mode: str, tmp_path: Path
) -> None:
    for upload in (START_IMAGE, VOICE, PORTRAIT, PORTRAIT_2):
        (tmp_path / upload).write_bytes(b"media")
    prompt = _filled(kind, load_models(mode))  # type: ignore[arg-type]
    object_info = live_object_info(_model_files(prompt), tmp_path)
    result = validate_prompt(prompt, object_info)
    assert result.ok, (result.error, result.node_errors)
    assert not result.node_errors


@pytest.mark.parametrize("kind", list(TemplateKind))
def test_the_embedded_simulator_ships_every_model_file_reelflow_names(kind: TemplateKind) -> None:
    shipped = default_models()
    for mode in ("fast", "quality"):
        for folder, files in _model_files(_filled(kind, load_models(mode))).items():  # type: ignore[arg-type]
            missing = sorted(set(files) - set(shipped.get(folder, [])))
            assert not missing, f"sim/models.toml [{folder}] lacks {missing} ({kind}, {mode})"


def test_relay_bindings_fill_every_timing_field_of_the_sequence() -> None:
    prompt = _relay(TemplateKind.relay_i2v, load_models("fast"))
    by_title = {n["_meta"]["title"]: n["inputs"] for n in prompt.values()}
    relay = by_title["reelflow.prompt"]
    assert relay["local_prompts"] == 'Maya looks over the city. | MAYA says "We made it."'
    assert relay["segment_lengths"] == "25, 24"
    assert relay["max_frames"] == 49
    timeline = json.loads(relay["timeline_data"])
    assert [s["length"] for s in timeline["segments"]] == [25, 24]
    frames = by_title["reelflow.frames"]
    assert (frames["width"], frames["height"], frames["length"]) == (256, 160, 49)
    assert by_title["reelflow.audio_frames"]["frames_number"] == 49
    assert by_title["reelflow.audio_frames"]["frame_rate"] == 24
    assert by_title["reelflow.conditioning"]["frame_rate"] == 24.0
    assert by_title["reelflow.video"]["fps"] == 24.0
    assert by_title["reelflow.seed"]["noise_seed"] == 7
    assert by_title["reelflow.start_image"]["image"] == START_IMAGE
    assert by_title["reelflow.checkpoint"]["ckpt_name"] == "ltx-2.3-22b-distilled-fp8.safetensors"
    assert by_title["reelflow.output"]["filename_prefix"] == "reelflow/seq_000"


def test_fast_and_quality_modes_load_different_ltx_checkpoints() -> None:
    fast, quality = load_models("fast"), load_models("quality")
    assert "distilled" in fast.ltx23.checkpoint and "dev" in quality.ltx23.checkpoint
    assert fast.acestep15.cfg == 1.0 and fast.acestep15.steps == 10


def test_a_segment_prompt_containing_a_pipe_is_refused() -> None:
    with pytest.raises(TemplateError, match=r"segment 1 prompt contains '\|'"):
        _relay(
            TemplateKind.relay_t2v,
            load_models("fast"),
            segment_prompts=["A quiet street.", "Rain | thunder"],
        )


def test_segment_lengths_that_do_not_add_up_to_the_frames_are_refused() -> None:
    with pytest.raises(TemplateError, match="sum to 49"):
        _relay(TemplateKind.relay_t2v, load_models("fast"), segment_frames=[25, 25])
    with pytest.raises(TemplateError, match="8k\\+1"):
        _relay(TemplateKind.relay_t2v, load_models("fast"), frames=48, segment_frames=[24, 24])


def test_an_image_to_video_template_needs_its_start_image() -> None:
    with pytest.raises(TemplateError, match=r"reelflow\.start_image"):
        _relay(TemplateKind.relay_i2v, load_models("fast"), start_image=None)


def test_every_missing_required_title_gets_its_own_line_naming_the_file(tmp_path: Path) -> None:
    source = json.loads(_template_text("keyframe_t2i"))
    del source["9"]["_meta"]  # reelflow.output
    del source["13"]["_meta"]  # reelflow.size
    path = tmp_path / "my_export.json"
    path.write_text(json.dumps(source))
    with pytest.raises(TemplateError) as caught:
        Workflow.load(path).checked(TemplateKind.keyframe)
    lines = str(caught.value).splitlines()
    assert len(lines) == 2
    assert all(line.startswith(f"{path}: no node is titled 'reelflow.") for line in lines)
    assert "'reelflow.size' (the picture size" in lines[0]
    assert "'reelflow.output' (the node that saves the image)" in lines[1]


def test_a_template_without_an_optional_title_keeps_its_own_values(tmp_path: Path) -> None:
    source = json.loads(_template_text("keyframe_t2i"))
    del source["27"]["_meta"]  # reelflow.prompt: the export's own prompt text stays
    path = tmp_path / "my_export.json"
    path.write_text(json.dumps(source))
    workflow = Workflow.load(path).checked(TemplateKind.keyframe)
    assert workflow.kept_titles() == ["reelflow.prompt"]
    prompt = keyframe_prompt(
        workflow,
        prompt="ignored",
        width=512,
        height=512,
        seed=1,
        models=load_models("fast"),
        output_prefix="k",
    )
    assert prompt["27"]["inputs"]["text"] == source["27"]["inputs"]["text"]
    assert prompt["13"]["inputs"]["width"] == 512


def test_a_text_to_video_template_with_a_start_image_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t2v.json"
    path.write_text(_template_text("ltx23_relay_i2v"))
    with pytest.raises(TemplateError, match=r"a text-to-video template has a 'reelflow\.start_"):
        Workflow.load(path).checked(TemplateKind.relay_t2v)


def test_binding_an_input_the_titled_node_lacks_names_the_input() -> None:
    workflow = load_template(TemplateKind.keyframe)
    with pytest.raises(TemplateError, match=r"'reelflow\.seed' \(KSampler\) has no input 'noise'"):
        workflow.bind({"reelflow.seed": {"noise": 1}})


def test_a_users_own_export_with_other_node_ids_binds_the_same_way(tmp_path: Path) -> None:
    original = json.loads(_template_text("keyframe_t2i"))
    renumber = {old: str(900 + i) for i, old in enumerate(original)}

    def relink(value: Any) -> Any:
        is_link = isinstance(value, list) and len(value) == 2 and value[0] in renumber
        return [renumber[value[0]], value[1]] if is_link else value

    exported = {
        renumber[k]: {**n, "inputs": {i: relink(v) for i, v in n["inputs"].items()}}
        for k, n in original.items()
    }
    path = tmp_path / "tuned_keyframe.json"
    path.write_text(json.dumps(exported))
    models = load_models("fast")
    ours = _filled(TemplateKind.keyframe, models)
    theirs = keyframe_prompt(
        Workflow.load(path),
        prompt="A lighthouse at dawn, 35mm film still.",
        width=768,
        height=512,
        seed=3,
        models=models,
        output_prefix="reelflow/keyframe",
    )
    assert theirs == {
        renumber[k]: {**n, "inputs": {i: relink(v) for i, v in n["inputs"].items()}}
        for k, n in ours.items()
    }


def test_the_template_hash_follows_content_not_formatting(tmp_path: Path) -> None:
    original = json.loads(_template_text("acestep15_cue"))
    (tmp_path / "a.json").write_text(json.dumps(original, indent=4))
    (tmp_path / "b.json").write_text(json.dumps(dict(reversed(list(original.items())))))
    original["8"]["inputs"]["steps"] = 30
    (tmp_path / "c.json").write_text(json.dumps(original))
    hashes = [Workflow.load(tmp_path / f"{n}.json").template_hash for n in "abc"]
    assert hashes[0] == hashes[1] != hashes[2]
    assert load_template(TemplateKind.cue).template_hash == hashes[0]


def test_binding_leaves_the_template_itself_untouched() -> None:
    workflow = load_template(TemplateKind.keyframe)
    before = json.dumps(workflow.nodes, sort_keys=True)
    prompt = workflow.bind({"reelflow.prompt": {"text": "changed"}})
    assert json.dumps(workflow.nodes, sort_keys=True) == before
    assert prompt["27"]["inputs"]["text"] == "changed"


def test_the_cue_template_uses_the_ace_step_15_node_set() -> None:
    prompt = _filled(TemplateKind.cue, load_models("fast"))
    classes = {n["class_type"]: n["inputs"] for n in prompt.values()}
    assert classes["DualCLIPLoader"]["type"] == "ace"
    assert {classes["DualCLIPLoader"]["clip_name1"], classes["DualCLIPLoader"]["clip_name2"]} == {
        "qwen_0.6b_ace15.safetensors",
        "qwen_4b_ace15.safetensors",
    }
    assert "ModelSamplingAuraFlow" in classes and "ModelSamplingSD3" not in classes
    assert classes["KSampler"]["cfg"] == 1.0 and classes["KSampler"]["steps"] == 10
    assert classes["TextEncodeAceStepAudio1.5"]["lyrics"] == "[Instrumental]"
    assert classes["TextEncodeAceStepAudio1.5"]["duration"] == 32.0
    assert classes["EmptyAceStep1.5LatentAudio"]["seconds"] == 32.0
    assert classes["SaveAudioMP3"]["filename_prefix"] == "reelflow/cue_00"


def test_a_cue_longer_than_ace_steps_limit_is_refused() -> None:
    with pytest.raises(TemplateError, match="split longer score zones"):
        cue_prompt(
            load_template(TemplateKind.cue),
            tags="strings",
            bpm=80,
            keyscale="C major",
            seconds=300.0,
            seed=1,
            models=load_models("fast"),
            output_prefix="reelflow/cue",
        )


def test_the_built_in_templates_carry_every_title_reelflow_binds() -> None:
    for kind, titles in TITLES.items():
        workflow = load_template(kind)
        assert workflow.kept_titles() == [], kind
        carried = {(n.get("_meta") or {}).get("title") for n in workflow.nodes.values()}
        assert set(titles) <= carried


def _template_text(stem: str) -> str:
    return (
        Path(__file__).resolve().parents[1] / "config" / "workflows" / f"{stem}.json"
    ).read_text()
