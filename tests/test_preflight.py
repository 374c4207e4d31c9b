"""Preflight names what a server lacks before any GPU time is spent."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from sim.inventory import live_object_info
from tasks.comfyui.errors import PreflightFailed, PromptRejected
from tasks.comfyui.preflight import check_prompts, load_node_packs, preflight
from tasks.comfyui.workflow import (
    TemplateKind,
    cue_prompt,
    load_models,
    load_template,
    relay_prompt,
)

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
    assert not report.ok
    [problem] = report.problems
    assert problem.startswith("sequence 1: node 20 'reelflow.prompt'")
    assert "'PromptRelayEncodeTimeline'" in problem
    assert "ComfyUI-PromptRelay by kijai" in problem


def test_a_missing_model_file_names_the_input_the_file_and_its_folder(tmp_path: Path) -> None:
    inventory = _inventory()
    inventory["diffusion_models"].remove(MODELS.acestep15.diffusion_model)
    report = check_prompts(_film_prompts(), live_object_info(inventory, tmp_path))
    [problem] = report.problems
    assert problem.startswith("cue 0: node 1 'reelflow.checkpoint' (UNETLoader)")
    assert f"input 'unet_name': model file '{MODELS.acestep15.diffusion_model}'" in problem
    assert "models/diffusion_models" in problem


def test_an_out_of_range_input_is_reported_with_comfyuis_words(tmp_path: Path) -> None:
    report = check_prompts(_film_prompts(width=99999), live_object_info(_inventory(), tmp_path))
    [problem] = report.problems
    assert "(EmptyLTXVLatentVideo) input 'width'" in problem
    assert "bigger than max" in problem


def test_a_failed_preflight_raises_one_clear_multiline_rejection(tmp_path: Path) -> None:
    report = check_prompts(_film_prompts(), live_object_info({}, tmp_path))
    assert len(report.problems) >= 5
    with pytest.raises(PreflightFailed) as caught:
        report.raise_if_failed()
    assert isinstance(caught.value, PromptRejected)
    message = str(caught.value)
    assert message.startswith("ComfyUI preflight found problems:\n")
    assert message.count("\n  - ") == len(report.problems)


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
