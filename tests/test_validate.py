"""Both validators answer every captured prompt the way ComfyUI 0.27.0 did.

reelflow's preflight (``tasks.comfyui.validate``) and the simulator (``sim.validation``) are
written apart; each must reproduce the real server's captured status and error bodies.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from sim import validation as sim_validation
from sim.inventory import catalogue, default_models, live_object_info
from tasks.comfyui.validate import check_submission, validate_prompt
from tests.sim_helpers import comparable_node_errors, posted_prompts, stable

Answer = tuple[int, dict[str, Any]]


def _object_info_for(fixture_name: str, tmp_path: Any) -> dict[str, Any]:
    # 23, 25 and 26 ran with placeholder model files; the others with none.
    if fixture_name in ("23", "25", "25b", "26"):
        return live_object_info(default_models(), tmp_path)
    return dict(catalogue())


def _file_exists(class_type: str, name: str) -> bool:
    return not name.startswith("missing")


def _client_answer(body: dict[str, Any], info: dict[str, Any]) -> Answer:
    rejected = check_submission(body)
    if rejected is not None:
        return 400, {"error": rejected, "node_errors": {}}
    verdict = validate_prompt(
        body["prompt"],
        info,
        partial_execution_targets=body.get("partial_execution_targets"),
        input_file_exists=_file_exists,
    )
    if verdict.ok:
        return verdict.status_code, {"node_errors": verdict.node_errors}
    return verdict.status_code, verdict.rejection_body()


def _sim_answer(body: dict[str, Any], info: dict[str, Any]) -> Answer:
    rejected = sim_validation.request_error(body)
    if rejected is not None:
        return 400, {"error": rejected, "node_errors": {}}
    verdict = sim_validation.validate_prompt(
        copy.deepcopy(body["prompt"]),
        info,
        targets=body.get("partial_execution_targets"),
        file_exists=lambda name: not name.startswith("missing"),
    )
    if verdict.ok:
        return 200, {"node_errors": verdict.node_errors}
    return 400, verdict.body()


IMPLEMENTATIONS: dict[str, Callable[[dict[str, Any], dict[str, Any]], Answer]] = {
    "client": _client_answer,
    "sim": _sim_answer,
}


CASES = [
    (name, step)
    for name in (
        "06",
        "08",
        "09",
        "11",
        "13",
        "14",
        "15",
        "17",
        "18",
        "22",
        "23",
        "25",
        "25b",
        "26",
    )
    for step in posted_prompts(name)
]


@pytest.mark.parametrize("implementation", sorted(IMPLEMENTATIONS))
@pytest.mark.parametrize(
    ("name", "step"), CASES, ids=[f"{n}:{s.get('note', '')[:40]}" for n, s in CASES]
)
def test_validator_gives_the_captured_answer(
    name: str, step: dict[str, Any], implementation: str, tmp_path: Any
) -> None:
    body = step["request"]["json"]
    expected = step["response"]["body"]["json"]
    status, answer = IMPLEMENTATIONS[implementation](body, _object_info_for(name, tmp_path))
    assert status == step["response"]["status"]
    note = step.get("note", "")
    got_errors = comparable_node_errors(answer["node_errors"], note)
    assert got_errors == comparable_node_errors(expected["node_errors"], note)
    assert stable(answer.get("error")) == stable(expected.get("error"))


def test_every_shipped_workflow_validates_against_the_sim_inventory(tmp_path: Any) -> None:
    info = live_object_info(default_models(), tmp_path)
    for name in ("23", "25", "26"):
        for step in posted_prompts(name):
            verdict = validate_prompt(
                step["request"]["json"]["prompt"], info, input_file_exists=_file_exists
            )
            assert verdict.ok and verdict.node_errors == {}, (name, verdict.node_errors)


def test_a_missing_model_file_is_named_in_the_rejection(tmp_path: Any) -> None:
    prompt = copy.deepcopy(posted_prompts("26")[0]["request"]["json"]["prompt"])
    prompt["28"]["inputs"]["unet_name"] = "z_image_turbo_fp8.safetensors"
    verdict = validate_prompt(prompt, live_object_info(default_models(), tmp_path))
    assert verdict.status_code == 400
    error = verdict.node_errors["28"]["errors"][0]
    assert error["type"] == "value_not_in_list"
    assert "z_image_turbo_fp8.safetensors" in error["details"]


def test_without_a_file_callback_loader_files_come_from_the_object_info_list() -> None:
    prompt = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "example.png"}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}},
    }
    assert validate_prompt(prompt, catalogue()).ok
    prompt["1"]["inputs"]["image"] = "not_uploaded.png"
    verdict = validate_prompt(prompt, catalogue())
    assert verdict.node_errors["1"]["errors"][0]["type"] == "custom_validation_failed"


def test_validation_is_pure_and_leaves_the_prompt_untouched() -> None:
    prompt = posted_prompts("13")[8]["request"]["json"]["prompt"]
    before = json.dumps(prompt, sort_keys=True)
    validate_prompt(prompt, catalogue())
    assert json.dumps(prompt, sort_keys=True) == before
