"""Replaying the captured ComfyUI conversations against the simulator gives the same answers."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets

from sim.embedded import RunningSimulator, start_simulator
from sim.settings import SimSettings
from tests.sim_helpers import (
    captured_types,
    comparable_node_errors,
    http_steps,
    png_bytes,
    posted_prompts,
    relay_prompt,
    run_prompt,
    stable,
    types_of,
    upload,
)

STILL = {
    "1": {
        "class_type": "EmptyImage",
        "inputs": {"width": 64, "height": 48, "batch_size": 2, "color": 16711680},
    },
    "2": {
        "class_type": "SaveImage",
        "inputs": {"images": ["1", 0], "filename_prefix": "conformance/still"},
    },
}


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSimulator]:
    with start_simulator(SimSettings(gpu_seconds_per_output_second=0)) as running:
        yield running


def _send(url: str, request: dict[str, Any]) -> httpx.Response:
    target = url + request["path"]
    if "raw_body" in request:
        return httpx.request(request["method"], target, content=request["raw_body"], timeout=30)
    return httpx.request(
        request["method"], target, params=request.get("query"), json=request.get("json"), timeout=30
    )


def test_system_stats_has_comfyuis_keys_on_both_prefixes(sim: RunningSimulator) -> None:
    for step in http_steps("01"):
        answer = _send(sim.url, step["request"])
        expected = step["response"]["body"]["json"]
        assert answer.status_code == 200
        assert answer.json().keys() == expected.keys()
        assert answer.json()["system"].keys() == expected["system"].keys()
        assert answer.json()["devices"][0].keys() == expected["devices"][0].keys()


def test_object_info_of_a_class_matches_the_capture(sim: RunningSimulator) -> None:
    for step in http_steps("02"):
        name = step["request"]["path"].rsplit("/", 1)[1].replace("%20", " ")
        answer = _send(sim.url, step["request"])
        assert answer.status_code == 200
        expected = step["response"]["body"]["json"]
        if not expected:
            assert answer.json() == {}
        elif name not in ("LoadImage", "LoadVideo", "LoadAudio") and "Loader" not in name:
            assert answer.json() == expected, name
        else:
            assert answer.json()[name].keys() == expected[name].keys()


def test_full_object_info_lists_the_572_classes_with_model_files_filled(
    sim: RunningSimulator,
) -> None:
    info = httpx.get(f"{sim.url}/object_info", timeout=30).json()
    assert len(info) == 572
    assert "PromptRelayEncodeTimeline" in info
    ckpts = info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0]
    assert "ltx-2.3-22b-dev-fp8.safetensors" in ckpts


def test_idle_endpoints_and_error_routes_answer_like_comfyui(sim: RunningSimulator) -> None:
    for step in http_steps("03"):
        request, expected = step["request"], step["response"]
        answer = _send(sim.url, request)
        assert answer.status_code == expected["status"], request
        body = expected["body"]
        if body["kind"] == "text":
            assert answer.text == body["text"], request
        elif body["kind"] == "json" and request["path"] in (
            "/features",
            "/prompt",
            "/queue",
            "/models",
        ):
            assert answer.json() == body["json"], request
        elif (
            body["kind"] == "json" and "/api/jobs" in request["path"] and expected["status"] != 200
        ):
            assert answer.json() == body["json"]


def test_cloud_only_routes_are_404_and_api_prefixed_routes_work(sim: RunningSimulator) -> None:
    for step in http_steps("03b"):
        if step["request"]["path"].startswith("/internal"):
            continue
        assert _send(sim.url, step["request"]).status_code == step["response"]["status"]


def test_uploads_follow_comfyuis_naming_rules(sim: RunningSimulator) -> None:
    contents: dict[str, bytes] = {}
    for step in http_steps("04"):
        part_name, part = next(iter(step["request"]["multipart"]["files"].items()))
        data = contents.setdefault(part["sha256"], png_bytes(8, 8 + len(contents), (10, 20, 30)))
        files = {part_name: (part["filename"], data, part["content_type"])}
        fields = step["request"]["multipart"]["fields"]
        answer = httpx.post(sim.url + step["request"]["path"], files=files, data=fields, timeout=30)
        expected = step["response"]
        assert answer.status_code == expected["status"], step.get("note")
        if expected["body"]["kind"] == "json":
            assert answer.json() == expected["body"]["json"], step.get("note")


async def _first_messages(
    url: str, path: str, hello: dict[str, Any] | None, count: int
) -> list[Any]:
    async with websockets.connect(url.replace("http://", "ws://") + path) as socket:
        if hello is not None:
            await socket.send(json.dumps(hello))
        return [json.loads(await socket.recv()) for _ in range(count)]


def test_websocket_greets_with_status_and_sid_and_answers_feature_flags(
    sim: RunningSimulator,
) -> None:
    plain = asyncio.run(_first_messages(sim.url, "/ws", None, 1))[0]
    assert plain["type"] == "status" and re.fullmatch(r"[0-9a-f]{32}", plain["data"]["sid"])
    named = asyncio.run(_first_messages(sim.url, "/api/ws?clientId=abc", None, 1))[0]
    assert named["data"] == {"status": {"exec_info": {"queue_remaining": 0}}, "sid": "abc"}
    flags = asyncio.run(
        _first_messages(sim.url, "/ws?clientId=f", {"type": "feature_flags", "data": {}}, 2)
    )
    assert flags[1]["type"] == "feature_flags" and flags[1]["data"]["supports_preview_metadata"]


def test_a_run_and_its_cached_rerun_send_the_captured_message_order(sim: RunningSimulator) -> None:
    answer, first = run_prompt(sim.url, STILL, client_id="run06")
    assert answer.json()["node_errors"] == {}
    assert types_of(first) == captured_types("06")
    prompt_id = answer.json()["prompt_id"]
    entry = httpx.get(f"{sim.url}/history/{prompt_id}").json()[prompt_id]
    assert entry.keys() == {"prompt", "outputs", "status", "meta"}
    images = entry["outputs"]["2"]["images"]
    assert [i["subfolder"] for i in images] == ["conformance", "conformance"]
    assert all(re.fullmatch(r"still_\d{5}_\.png", i["filename"]) for i in images)
    assert entry["status"]["status_str"] == "success" and entry["status"]["completed"]
    # The execution timestamps clients bill GPU time from, shaped as the server keeps them.
    captured = next(s for s in http_steps("06") if s["request"]["path"].startswith("/history/"))
    (want,) = captured["response"]["body"]["json"].values()
    shape = [(kind, sorted(data)) for kind, data in want["status"]["messages"]]
    assert [(kind, sorted(data)) for kind, data in entry["status"]["messages"]] == shape
    stamps = [data["timestamp"] for _, data in entry["status"]["messages"]]
    assert stamps == sorted(stamps) and all(isinstance(t, int) for t in stamps)
    view = httpx.get(f"{sim.url}/view", params=images[0])
    assert view.headers["content-type"] == "image/png"
    _, rerun = run_prompt(sim.url, STILL, client_id="run07")
    assert types_of(rerun) == captured_types("07")
    cached = next(m for m in rerun if m["type"] == "execution_cached")
    assert cached["data"]["nodes"] == ["1", "2"]
    assert next(m for m in rerun if m["type"] == "executed")["data"]["output"]["images"] == images


def _assert_captured_rejections(url: str, steps: list[dict[str, Any]]) -> None:
    for step in steps:
        answer = _send(url, step["request"])
        expected = step["response"]["body"]["json"]
        note = step.get("note", "")
        assert answer.status_code == 400, note
        got = answer.json()
        assert stable(got["error"]) == stable(expected["error"]), note
        assert comparable_node_errors(got["node_errors"], note) == comparable_node_errors(
            expected["node_errors"], note
        ), note
    assert httpx.get(f"{url}/queue").json() == {"queue_running": [], "queue_pending": []}


def test_every_captured_validation_error_gets_the_captured_body() -> None:
    # Captures 13 and 22 came from a server without model files: so does this one.
    with start_simulator(SimSettings(gpu_seconds_per_output_second=0, models={})) as bare:
        _assert_captured_rejections(bare.url, posted_prompts("13") + posted_prompts("22")[1:])


def test_captured_relay_validation_errors_get_the_captured_body(sim: RunningSimulator) -> None:
    # 25b ran with placeholder LTX files installed, like the simulator's default inventory.
    upload(sim.url, "reelflow_start_frame.png", png_bytes(96, 64, (90, 120, 200)), overwrite="true")
    _assert_captured_rejections(sim.url, posted_prompts("25b"))


def test_a_partly_valid_prompt_runs_only_its_good_branch(sim: RunningSimulator) -> None:
    body = posted_prompts("14")[0]["request"]["json"]
    answer, _ = run_prompt(sim.url, body["prompt"], client_id="partial")
    assert answer.status_code == 200
    assert answer.json()["node_errors"].keys() == {"3"}
    prompt_id = answer.json()["prompt_id"]
    entry = httpx.get(f"{sim.url}/history/{prompt_id}").json()[prompt_id]
    assert list(entry["outputs"]) == ["2"] and entry["prompt"][4] == ["2"]


def test_a_prompt_without_client_id_only_broadcasts_status_and_progress(
    sim: RunningSimulator,
) -> None:
    async def observe() -> list[str]:
        url = sim.url.replace("http://", "ws://") + "/ws?clientId=observer"
        async with websockets.connect(url) as socket:
            await socket.recv()
            answer = httpx.post(
                f"{sim.url}/prompt",
                json={
                    "prompt": STILL
                    | {"3": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}
                },
            )
            assert answer.status_code == 200
            seen = []
            while True:
                message = json.loads(await asyncio.wait_for(socket.recv(), 20))
                seen.append(message["type"])
                if (
                    message["type"] == "status"
                    and message["data"]["status"]["exec_info"]["queue_remaining"] == 0
                ):
                    return seen

    assert set(asyncio.run(observe())) <= {"status", "progress", "progress_state"}


def test_prompt_body_options_are_honoured(sim: RunningSimulator) -> None:
    body = posted_prompts("18")[0]["request"]["json"]
    answer, _ = run_prompt(
        sim.url, body["prompt"], client_id="opts", prompt_id=body["prompt_id"], number=1000.5,
        partial_execution_targets=["4"], extra_data=body["extra_data"],
    )  # fmt: skip
    assert answer.json() == {"prompt_id": body["prompt_id"], "number": 1000.5, "node_errors": {}}
    entry = httpx.get(f"{sim.url}/history/{body['prompt_id']}").json()[body["prompt_id"]]
    assert list(entry["outputs"]) == ["4"]
    assert entry["prompt"][3]["orchestrator"] == {"shot": 7, "take": 2}
    job = httpx.get(f"{sim.url}/api/jobs/{body['prompt_id']}").json()
    assert job["workflow_id"] == "film-shot-007" and job["status"] == "completed"


def test_history_can_be_paged_and_deleted(sim: RunningSimulator) -> None:
    run_prompt(sim.url, STILL, client_id="h1")
    everything = httpx.get(f"{sim.url}/history").json()
    ids = list(everything)
    assert list(httpx.get(f"{sim.url}/history", params={"max_items": 2}).json()) == ids[-2:]
    first = httpx.get(f"{sim.url}/history", params={"max_items": 1, "offset": 0}).json()
    assert list(first) == ids[:1]
    assert httpx.post(f"{sim.url}/history", json={"delete": ids[:1]}).status_code == 200
    assert httpx.get(f"{sim.url}/history/{ids[0]}").json() == {}


def test_jobs_api_rejects_bad_parameters_with_comfyuis_messages(sim: RunningSimulator) -> None:
    for step in http_steps("24"):
        if step["response"]["status"] == 400:
            answer = _send(sim.url, step["request"])
            assert (answer.status_code, answer.json()) == (400, step["response"]["body"]["json"])
    listing = httpx.get(f"{sim.url}/api/jobs", params={"limit": 1}).json()
    assert listing["pagination"]["limit"] == 1 and len(listing["jobs"]) == 1


@pytest.mark.parametrize("name", ["23", "25", "26"])
def test_shipped_model_workflows_validate_and_render_instead_of_failing(
    sim: RunningSimulator, name: str
) -> None:
    upload(sim.url, "reelflow_start_frame.png", png_bytes(96, 64, (90, 120, 200)), overwrite="true")
    for index, step in enumerate(posted_prompts(name)):
        prompt = step["request"]["json"]["prompt"]
        if name == "25":
            prompt = relay_prompt()
        elif name == "23" and index == 0:
            prompt["228"]["inputs"].update(width=128, height=96, length=25)
        elif name == "23":
            prompt["98"]["inputs"]["seconds"] = 2.0
        answer, messages = run_prompt(sim.url, prompt, client_id=f"m{name}{index}")
        assert (answer.status_code, answer.json()["node_errors"]) == (200, {})
        kinds = types_of(messages, skip=("progress_state", "progress", "executing", "status"))
        assert kinds[:2] == ["execution_start", "execution_cached"]
        assert kinds[-2:] == ["executed", "execution_success"], kinds
        if name == "25":
            break


def _wait_for(condition: Any, timeout: float = 20) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.05)

    asyncio.run(asyncio.wait_for(poll(), timeout))


def test_one_gpu_runs_prompts_one_at_a_time_and_the_queue_can_be_managed() -> None:
    settings = SimSettings(gpu_seconds_per_output_second=1.5)
    with start_simulator(settings) as busy:
        upload(busy.url, "reelflow_start_frame.png", png_bytes(96, 64, (90, 120, 200)))
        ids = []
        for seed in (1, 2, 3):
            answer = httpx.post(f"{busy.url}/prompt", json={"prompt": relay_prompt(seed=seed)})
            ids.append(answer.json()["prompt_id"])
        queue = httpx.get(f"{busy.url}/queue").json()
        assert len(queue["queue_running"]) + len(queue["queue_pending"]) == 3
        _wait_for(lambda: httpx.get(f"{busy.url}/queue").json()["queue_running"])
        assert [q[1] for q in httpx.get(f"{busy.url}/queue").json()["queue_running"]] == ids[:1]
        assert httpx.post(f"{busy.url}/queue", json={"delete": [ids[1]]}).status_code == 200
        assert httpx.post(f"{busy.url}/api/jobs/{ids[2]}/cancel").json() == {"cancelled": True}
        assert httpx.get(f"{busy.url}/queue").json()["queue_pending"] == []
        bad = httpx.post(f"{busy.url}/api/jobs/cancel", json={"job_ids": ["not-a-uuid"]})
        assert bad.status_code == 400 and bad.json()["invalid_ids"] == ["not-a-uuid"]
        assert httpx.post(f"{busy.url}/interrupt", json={"prompt_id": ids[0]}).status_code == 200
        _wait_for(lambda: ids[0] in httpx.get(f"{busy.url}/history").json())
        entry = httpx.get(f"{busy.url}/history/{ids[0]}").json()[ids[0]]
        assert entry["status"]["status_str"] == "error" and not entry["status"]["completed"]
        assert entry["status"]["messages"][-1][0] == "execution_interrupted"
        assert httpx.get(f"{busy.url}/api/jobs/{ids[0]}").json()["status"] == "cancelled"
        assert httpx.get(f"{busy.url}/api/jobs/{ids[2]}").status_code == 404
        first = httpx.post(
            f"{busy.url}/prompt",
            json={"prompt": relay_prompt(seed=7, frames=25, segment_lengths="13, 12")},
        )
        second = httpx.post(
            f"{busy.url}/prompt",
            json={"prompt": relay_prompt(seed=8, frames=25, segment_lengths="13, 12")},
        )
        assert first.status_code == second.status_code == 200
        _wait_for(
            lambda: httpx.get(f"{busy.url}/reelflow-sim/stats").json()["prompts_executed"] == 3
        )
        _wait_for(lambda: not httpx.get(f"{busy.url}/queue").json()["queue_running"])
        runs = httpx.get(f"{busy.url}/reelflow-sim/stats").json()["executions"][-2:]
        assert runs[0]["end"] <= runs[1]["start"]
        for run in runs:  # 25 frames at 24 fps x 1.5 GPU s per output second
            assert run["end"] - run["start"] >= 25 / 24 * 1.5 - 0.05
