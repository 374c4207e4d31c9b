"""The client against ComfyUI 0.27.0 as captured: every body and frame parses, runs replay."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tasks.comfyui import protocol as p
from tasks.comfyui.client import _execution_error
from tasks.comfyui.errors import (
    ExecutionFailed,
    OutOfMemory,
    OutputInvalid,
    PromptRejected,
    TransientError,
)
from tasks.comfyui.protocol import check_output_path
from tests.conformance_fixtures import (
    binary_frame,
    fixture_files,
    http_steps,
    load_fixture,
    needs_fixtures,
    ws_messages,
)

pytestmark = needs_fixtures

# Endpoints the client never reads; their bodies are only checked to be what the file says.
_UNMODELLED = ("/features", "/api/features", "/embeddings", "/models", "/api/jobs", "/free")
_UNMODELLED += ("/extensions", "/internal/", "/health", "/api/history_v2", "/api/job/")
_UNMODELLED += ("/api/tasks", "/api/workflows", "/interrupt", "/view", "/object_info/")
_UNMODELLED += ("/api/object_info/",)


def _parse_body(step: dict[str, Any]) -> object:
    request, response = step["request"], step["response"]
    path = request["path"].removeprefix("/api")
    body = response["body"]
    status = response["status"]
    if body["kind"] != "json":
        return body["kind"]
    data = body["json"]
    if path == "/prompt" and request["method"] == "POST":
        return p.PromptResponse.model_validate(data) if status == 200 else p.ErrorBody(**data)
    if path == "/prompt":
        return data["exec_info"]["queue_remaining"]
    if path.startswith("/history/"):
        return p.parse_history(data, path.removeprefix("/history/"))
    if path == "/history":
        return [p.parse_history(data, key) for key in data]
    if path == "/queue":
        return p.QueueState.from_body(data)
    if path == "/system_stats":
        return p.SystemStats.model_validate(data)
    if path == "/upload/image":
        return p.UploadResponse.model_validate(data)
    if path == "/object_info":
        return data
    assert request["path"].startswith(_UNMODELLED), f"no model for {request['path']}"
    return data


@pytest.mark.parametrize("fixture", fixture_files(), ids=lambda path: path.stem[:24])
def test_every_captured_body_and_ws_frame_parses(fixture: Path) -> None:
    doc = json.loads(fixture.read_text())
    for step in http_steps(doc):
        _parse_body(step)
    for message in ws_messages(doc):
        if message["frame"] == "text":
            event = p.parse_ws_message(json.dumps(message["message"]))
            assert event is not None
            assert event.type == message["message"]["type"]
        else:
            event = p.parse_ws_message(binary_frame(message))
            assert isinstance(event, p.PreviewImage | p.ProgressText)


def test_a_finished_image_run_lists_its_files_by_their_server_names() -> None:
    doc = load_fixture("06")
    history = next(s for s in http_steps(doc) if s["request"]["path"].startswith("/history/"))
    entry = _parse_body(history)
    assert isinstance(entry, p.HistoryEntry) and entry.finished
    assert entry.status is not None and entry.status.status_str == "success"
    names = [(f.filename, f.subfolder, f.type, f.kind) for f in entry.outputs_files()]
    assert ("still_00001_.png", "conformance", "output", "images") in names
    assert len(names) == 2
    kinds = [type(p.parse_ws_message(json.dumps(m["message"]))) for m in ws_messages(doc)]
    assert kinds[0] is p.Status and p.ExecutionSuccess in kinds and p.Executed in kinds


def _history_entry(name: str) -> p.HistoryEntry:
    """The first non-empty history entry a transcript fetched."""
    steps = [s for s in http_steps(load_fixture(name)) if "/history/" in s["request"]["path"]]
    entries = [_parse_body(s) for s in steps]
    return next(e for e in entries if isinstance(e, p.HistoryEntry))


def test_execution_and_queue_time_come_from_the_servers_own_timestamps() -> None:
    # 15: accepted at ...849822, started at ...849824, failed at ...849879 (ms).
    failed = _history_entry("15")
    assert failed.execution_seconds == pytest.approx(0.055)
    assert failed.queue_seconds == pytest.approx(0.002)
    # 16: interrupted at ...851132 after starting at ...850201.
    interrupted = _history_entry("16")
    assert interrupted.execution_seconds == pytest.approx(0.931)
    assert interrupted.queue_seconds == pytest.approx(0.001)
    # Without its start message the server's figure is unknown, not zero.
    assert p.HistoryEntry(prompt=[1, "x", {}, {}, []]).execution_seconds is None
    assert p.HistoryEntry().queue_seconds is None


def _history_files(name: str) -> dict[str, p.OutputFile]:
    entries = [
        _parse_body(s)
        for s in http_steps(load_fixture(name))
        if "/history/" in s["request"]["path"]
    ]
    return {
        f.filename: f for e in entries if isinstance(e, p.HistoryEntry) for f in e.outputs_files()
    }


def test_video_and_audio_outputs_are_found_under_their_own_keys() -> None:
    video_files = _history_files("09")
    audio_files = _history_files("11")
    assert video_files["with_audio_00001_.mp4"].kind == "images"
    assert video_files["with_audio_00001_.mp4"].subfolder == "conformance/video"
    # SaveAudioMP3 numbers its files itself: the name must come from history, never a guess.
    assert audio_files["score_00001.mp3"].kind == "audio"
    assert audio_files["ComfyUI_temp_rpndo_00001.flac"].type == "temp"
    assert len(audio_files) == 5


def test_latent_outputs_are_files_but_preview_text_is_not() -> None:
    history = next(s for s in http_steps(load_fixture("20")) if "/history/" in s["request"]["path"])
    entry = _parse_body(history)
    assert isinstance(entry, p.HistoryEntry)
    kinds = sorted(f.kind for f in entry.outputs_files())
    assert kinds == ["images", "latents", "latents"]


def test_progress_messages_carry_value_max_and_node() -> None:
    events = [p.parse_ws_message(json.dumps(m["message"])) for m in ws_messages(load_fixture("12"))]
    progress = [e for e in events if isinstance(e, p.Progress)]
    assert progress and progress[0].node == "3" and progress[0].max == 8
    assert all(0 < e.value <= e.max for e in progress)
    assert any(isinstance(e, p.ProgressState) and e.nodes for e in events)


def test_an_execution_error_names_the_node_and_the_exception() -> None:
    events = [p.parse_ws_message(json.dumps(m["message"])) for m in ws_messages(load_fixture("15"))]
    error = next(e for e in events if isinstance(e, p.ExecutionError))
    failure = _execution_error(error, "pid")
    assert type(failure) is ExecutionFailed and not isinstance(failure, TransientError)
    assert failure.node_id == "3" and failure.node_type == "LoadImage"
    assert failure.exception_type == "PIL.UnidentifiedImageError"
    assert "cannot identify image file" in str(failure)


def test_a_gpu_out_of_memory_error_is_transient() -> None:
    data = {
        "prompt_id": "pid",
        "node_id": "34",
        "node_type": "SamplerCustomAdvanced",
        "exception_type": "torch.OutOfMemoryError",
        "exception_message": "Allocation on device 0 would exceed allowed memory.",
    }
    failure = _execution_error(p.ExecutionError.model_validate(data), "pid")
    assert isinstance(failure, OutOfMemory) and isinstance(failure, TransientError)


def test_an_interrupt_is_recognised_for_its_prompt() -> None:
    events = [p.parse_ws_message(json.dumps(m["message"])) for m in ws_messages(load_fixture("16"))]
    interrupted = [e for e in events if isinstance(e, p.ExecutionInterrupted)]
    assert interrupted and interrupted[0].node_type == "ColorTransfer"
    assert interrupted[0].prompt_id


def test_a_running_queue_lists_prompt_ids_from_its_rows() -> None:
    queues = [
        _parse_body(s) for s in http_steps(load_fixture("16")) if s["request"]["path"] == "/queue"
    ]
    busy = next(q for q in queues if isinstance(q, p.QueueState) and q.queue_running)
    assert busy.queue_running[0].prompt_id == "3ea43da1-df3b-4eb2-8bd8-c0627de0abe5"
    assert len(busy.prompt_ids()) == 1 + len(busy.queue_pending)


def test_binary_preview_and_text_frames_decode_or_are_skipped_safely() -> None:
    frames = [m for m in ws_messages(load_fixture("21")) if m["frame"] == "binary"]
    frames += [m for m in ws_messages(load_fixture("21b")) if m["frame"] == "binary"]
    decoded = [p.parse_ws_message(binary_frame(m)) for m in frames]
    assert {e.event for e in decoded if isinstance(e, p.PreviewImage)} == {1, 4}
    assert any(isinstance(e, p.PreviewImage) and e.image_type == "image/png" for e in decoded)
    text = next(e for e in decoded if isinstance(e, p.ProgressText))
    assert text.node_id == "2" and text.text.startswith("width: 40")
    assert p.parse_ws_message(b"\x00\x00\x00\x09garbage") is None
    assert p.parse_ws_message(b"\x00\x00") is None
    assert p.parse_ws_message("not json") is None


def test_a_validation_rejection_names_node_class_input_and_comfyuis_message() -> None:
    bodies = [s["response"]["body"]["json"] for s in http_steps(load_fixture("13"))]
    body = next(b for b in bodies if "ckpt_name" in json.dumps(b.get("node_errors")))
    parsed = p.ErrorBody.model_validate(body)
    error = PromptRejected(parsed.error.model_dump(), {"1": body["node_errors"]["1"]})
    assert "node 1 (CheckpointLoaderSimple)" in str(error)
    assert "'ckpt_name'" in str(error) and "Value not in list" in str(error)
    assert error.node_errors["1"]["errors"][0]["type"] == "value_not_in_list"


def test_an_unknown_node_class_rejection_names_the_class() -> None:
    body = next(
        s["response"]["body"]["json"]
        for s in http_steps(load_fixture("13"))
        if "LTXVNoSuchNode" in json.dumps(s["response"]["body"])
    )
    error = PromptRejected(body["error"], body["node_errors"])
    assert "LTXVNoSuchNode" in str(error) and "not found" in str(error)


def test_a_partly_valid_prompt_answers_200_with_node_errors() -> None:
    step = next(s for s in http_steps(load_fixture("14")) if s["request"]["path"] == "/prompt")
    accepted = _parse_body(step)
    assert isinstance(accepted, p.PromptResponse)
    assert accepted.node_errors["3"].class_type == "LoadImage"


@pytest.mark.parametrize(
    ("filename", "subfolder"),
    [
        ("../secret.png", ""),
        ("x.png", "../.."),
        ("/etc/passwd", ""),
        ("x.png", "/abs"),
        ("a/b.png", ""),
        ("C:evil.png", ""),
        ("", ""),
    ],
)
def test_unsafe_output_names_from_history_are_refused(filename: str, subfolder: str) -> None:
    with pytest.raises(OutputInvalid):
        check_output_path(p.OutputFile(filename=filename, subfolder=subfolder))


def test_ordinary_output_names_pass_the_safety_check() -> None:
    check_output_path(p.OutputFile(filename="relay_00001_.mp4", subfolder="reelflow/seq"))
