"""Preflight names what a server lacks before any GPU time is spent."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from sim.inventory import live_object_info
from tasks.comfyui.errors import PreflightFailed, PromptRejected
from tasks.comfyui.models import load_models
from tasks.comfyui.preflight import (
    check_prompts,
    load_node_packs,
    preflight,
    refusal,
    rejected_at,
    stages_text,
)
from tasks.comfyui.workflow import TemplateKind, cue_prompt, load_template, relay_prompt

MODELS = load_models("fast")


def _inventory() -> dict[str, list[str]]:
    ltx, ace, image = MODELS.ltx23, MODELS.acestep15, MODELS.keyframe
    return {
        "checkpoints": [ltx.checkpoint],
        "text_encoders": [ltx.text_encoder, ace.text_encoder_small, ace.text_encoder_large],
        "loras": [ltx.distilled_lora],
        "diffusion_models": [ace.diffusion_model, image.diffusion_model],
        "vae": [ace.vae, image.vae],
    }


def _film_prompts(width: int = 256) -> dict[str, dict[str, Any]]:
    relay = relay_prompt(
        load_template(TemplateKind.relay_i2v),
        global_prompt="A harbour at night.",
        segment_prompts=["Waves against the pier.", 'ANA says "Not tonight."'],
        segment_frames=[25, 24],
        width=width,
        height=160,
        frames=49,
        fps=24,
        seed=11,
        negative="music",
        # A carry frame that will only be uploaded once the previous sequence renders.
        start_image="seq_000_last_frame.png",
        models=MODELS,
        output_prefix="reelflow/seq_001",
    )
    cue = cue_prompt(
        load_template(TemplateKind.cue),
        tags="low strings",
        bpm=70,
        keyscale="A minor",
        seconds=20.0,
        seed=5,
        models=MODELS,
        output_prefix="reelflow/cue_00",
    )
    return {"sequence 1": relay, "cue 0": cue}


def test_a_server_with_every_node_and_model_passes(tmp_path: Path) -> None:
    report = check_prompts(_film_prompts(), live_object_info(_inventory(), tmp_path))
    assert report.ok, report.problems
    assert report.checked == ["sequence 1", "cue 0"]
    report.raise_if_failed()


def test_a_missing_prompt_relay_node_names_the_pack_to_install(tmp_path: Path) -> None:
    object_info = live_object_info(_inventory(), tmp_path)
    without_pack = {k: v for k, v in object_info.items() if not k.startswith("PromptRelay")}
    report = check_prompts(_film_prompts(), without_pack)
    assert report.problems == [
        "PromptRelayEncodeTimeline: install the custom node pack ComfyUI-PromptRelay by kijai "
        "(https://github.com/kijai/ComfyUI-PromptRelay) (needed by sequence 1)"
    ]


def test_a_missing_model_file_names_the_file_its_folder_and_the_stage(tmp_path: Path) -> None:
    inventory = _inventory()
    inventory["diffusion_models"].remove(MODELS.acestep15.diffusion_model)
    report = check_prompts(_film_prompts(), live_object_info(inventory, tmp_path))
    assert report.problems == [
        f"{MODELS.acestep15.diffusion_model} -> models/diffusion_models (needed by cue 0)"
    ]


def test_a_missing_node_class_does_not_hide_the_model_files_of_the_same_prompt(
    tmp_path: Path,
) -> None:
    inventory = _inventory()
    inventory["loras"] = []
    object_info = live_object_info(inventory, tmp_path)
    without_pack = {k: v for k, v in object_info.items() if not k.startswith("PromptRelay")}
    report = check_prompts({"sequence 1": _film_prompts()["sequence 1"]}, without_pack)
    assert sorted(f.group for f in report.needed_by) == ["model", "node"]
    assert f"{MODELS.ltx23.distilled_lora} -> models/loras (needed by sequence 1)" in (
        report.problems
    )


def test_a_file_every_prompt_needs_is_reported_once_with_every_stage(tmp_path: Path) -> None:
    inventory = _inventory()
    inventory["loras"] = []
    relay = _film_prompts()["sequence 1"]
    prompts = {f"sequence {n}": relay for n in (0, 1, 2, 3, 5)} | {"re-render 1": relay}
    report = check_prompts(prompts, live_object_info(inventory, tmp_path))
    assert report.problems == [
        f"{MODELS.ltx23.distilled_lora} -> models/loras (needed by sequences 0-3, 5, re-render 1)"
    ]


def test_an_out_of_range_input_is_reported_with_comfyuis_words(tmp_path: Path) -> None:
    report = check_prompts(_film_prompts(width=99999), live_object_info(_inventory(), tmp_path))
    [problem] = report.problems
    assert problem.startswith("node 12 'reelflow.frames' (EmptyLTXVLatentVideo) input 'width'")
    assert "bigger than max" in problem and problem.endswith("(needed by sequence 1)")


def test_a_failed_preflight_raises_one_grouped_message_and_a_one_line_headline(
    tmp_path: Path,
) -> None:
    object_info = live_object_info({}, tmp_path)
    without_pack = {k: v for k, v in object_info.items() if not k.startswith("PromptRelay")}
    report = check_prompts(_film_prompts(), without_pack)
    with pytest.raises(PreflightFailed) as caught:
        report.raise_if_failed("http://gpu-1:8188")
    assert isinstance(caught.value, PromptRejected)
    lines = str(caught.value).splitlines()
    assert lines[0] == "ComfyUI at http://gpu-1:8188 lacks what the film needs:"
    assert lines[1].startswith("  model files the server lacks")
    models = [line for line in lines if " -> models/" in line]
    # The LTX checkpoint feeds three loaders: one line. Seven distinct files in all.
    assert len(models) == 7
    assert sum(MODELS.ltx23.checkpoint in line for line in lines) == 1
    assert lines.index("  node classes the server lacks:") > lines.index(models[-1])
    assert lines[-1] == "Nothing was rendered. Fix these, then run the same command again."
    headline = caught.value.headline
    assert "\n" not in headline
    assert "7 model files, 1 node class" in headline


def test_stage_names_merge_their_numbers() -> None:
    stages = ["sequence 0", "sequence 1", "sequence 2", "sequence 4", "keyframe 1", "odd"]
    assert stages_text([*stages, "score cue 0"]) == (
        "sequences 0-2, 4, keyframe 1, score cue 0, odd"
    )
    assert stages_text(["keyframe 0", "keyframe 1"]) == "keyframes 0, 1"


def test_servers_that_lack_the_same_things_share_one_list(tmp_path: Path) -> None:
    report = check_prompts(_film_prompts(), live_object_info({}, tmp_path))
    healthy = check_prompts(_film_prompts(), live_object_info(_inventory(), tmp_path))
    refused = refusal({"http://a:8188": report, "http://b:8188": report, "http://c:1": healthy})
    assert refused is not None
    text = str(refused)
    assert text.count("lacks what the film needs") == 1
    assert text.startswith("ComfyUI at http://a:8188, http://b:8188 lacks")
    assert refusal({"http://c:1": healthy}) is None


def test_a_late_rejection_names_the_stage_and_what_to_do_next() -> None:
    # The server's own answer to a prompt naming a model file it lacks (capture 13's shape).
    rejected = PromptRejected(
        {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed"},
        {
            "1": {
                "class_type": "UNETLoader",
                "dependent_outputs": ["10"],
                "errors": [
                    {
                        "type": "value_not_in_list",
                        "message": "Value not in list",
                        "details": "unet_name: 'ace.safetensors' not in []",
                        "extra_info": {
                            "input_name": "unet_name",
                            "received_value": "ace.safetensors",
                        },
                    }
                ],
            }
        },
    )
    late = rejected_at("score cue 0", "http://gpu-1:8188", rejected)
    assert late.stage == "score cue 0"
    assert str(late) == (
        "score cue 0: ComfyUI at http://gpu-1:8188 refused the prompt: ace.safetensors -> "
        "models/diffusion_models. Next: put the missing model files or node packs on the "
        "server, then run the same command again; renders that finished come from the cache."
    )


def test_the_node_pack_table_knows_all_five_prompt_relay_classes() -> None:
    packs = load_node_packs()
    relay = {cls for cls, pack in packs.items() if pack.name == "ComfyUI-PromptRelay"}
    assert len(relay) == 5 and "PromptRelayEncodeTimeline" in relay


class _CountingServer:
    """Stands in for a server's /object_info endpoint and counts the fetches."""

    def __init__(self, object_info: dict[str, Any]) -> None:
        self.info = object_info
        self.fetches = 0

    async def object_info(self) -> dict[str, Any]:
        self.fetches += 1
        return self.info


def test_preflight_fetches_object_info_once_for_the_whole_film(tmp_path: Path) -> None:
    server = _CountingServer(live_object_info(_inventory(), tmp_path))
    report = asyncio.run(preflight(server, {**_film_prompts(), "again": _film_prompts()["cue 0"]}))
    assert report.ok and server.fetches == 1
