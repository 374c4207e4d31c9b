"""The client against servers that replay runs recorded from ComfyUI 0.27.0: results, errors,
withdrawn prompts and auth headers as a real server would cause them."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp import web

from blocks.comfyui import ComfyUIPool, ComfyUIServer
from tasks.comfyui import protocol as p
from tasks.comfyui.errors import (
    ComfyUIError,
    ExecutionFailed,
    PromptRejected,
    ServerError,
    TransientError,
)
from tests.conformance_fixtures import binary_frame, load_fixture, needs_fixtures

pytestmark = needs_fixtures


class _Replay:
    """Answers like the ComfyUI of one fixture, with the prompt id our client chose."""

    def __init__(self, name: str) -> None:
        steps = load_fixture(name)["steps"]
        submit = next(
            i
            for i, s in enumerate(steps)
            if s.get("request", {}).get("path") == "/prompt" and s["request"]["method"] == "POST"
        )
        later = steps[submit + 1 :]
        self.submit = steps[submit]["response"]
        self.recorded_id = (self.submit["body"].get("json") or {}).get("prompt_id", "none")
        self.ws = next((s["messages"] for s in later if s["kind"] == "websocket"), [])
        histories = [
            s["response"]["body"]["json"]
            for s in later
            if s["kind"] == "http" and "/history/" in s["request"]["path"]
        ]
        self.history = histories[0] if histories else {}
        self.calls: list[tuple[str, str, Any]] = []
        self.prompt_id = ""
        self.headers: list[str] = []
        self.submitted = asyncio.Event()

    def _ours(self, data: Any) -> Any:
        return json.loads(json.dumps(data).replace(self.recorded_id, self.prompt_id))

    async def post_prompt(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.prompt_id = body.get("prompt_id", self.recorded_id)
        self.calls.append(("POST", "/prompt", body))
        self.headers.append(request.headers.get("X-Token", ""))
        self.submitted.set()
        response = self.submit
        if response["body"]["kind"] != "json":
            return web.Response(status=response["status"], text=response["body"]["text"])
        return web.json_response(self._ours(response["body"]["json"]), status=response["status"])

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        self.headers.append(request.headers.get("X-Token", ""))
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        await socket.send_json({"type": "status", "data": {"status": {}, "sid": "replay"}})
        await self.submitted.wait()
        for message in self.ws:
            if message["frame"] == "text":
                await socket.send_json(self._ours(message["message"]))
            else:
                await socket.send_bytes(binary_frame(message))
        await socket.close()
        return socket

    async def history_of(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self._ours(self.history))

    async def record(self, request: web.Request) -> web.StreamResponse:
        self.calls.append((request.method, request.path, await request.json()))
        return web.Response(text="")

    async def queue(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"queue_running": [], "queue_pending": []})

    async def view(self, request: web.Request) -> web.StreamResponse:
        return web.Response(body=b"\x00" * 1000, content_type="video/mp4")

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/prompt", self.post_prompt)
        app.router.add_get("/ws", self.websocket)
        app.router.add_get("/history/{prompt_id}", self.history_of)
        app.router.add_post("/interrupt", self.record)
        app.router.add_post("/queue", self.record)
        app.router.add_get("/queue", self.queue)
        app.router.add_get("/view", self.view)
        return app


def _replay_run(name: str, server: ComfyUIServer | None = None) -> tuple[_Replay, Any]:
    replay = _Replay(name)

    async def scenario() -> Any:
        runner = web.AppRunner(replay.app())
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            url = f"http://127.0.0.1:{port}"
            block = (server or ComfyUIServer(url=url)).model_copy(update={"url": url})
            async with block.client() as client:
                return await client.run({"1": {"class_type": "X", "inputs": {}}})
        except ComfyUIError as exc:
            return exc
        finally:
            await runner.cleanup()

    return replay, asyncio.run(scenario())


def test_a_recorded_successful_run_returns_its_history_entry() -> None:
    replay, entry = _replay_run("06")
    assert isinstance(entry, p.HistoryEntry) and entry.prompt_id == replay.prompt_id
    assert [f.filename for f in entry.outputs_files()] == ["still_00001_.png", "still_00002_.png"]
    [(_, _, body)] = replay.calls
    assert body["client_id"] and body["prompt_id"] == replay.prompt_id


def test_a_recorded_execution_error_raises_execution_failed() -> None:
    _, error = _replay_run("15")
    assert type(error) is ExecutionFailed and error.node_type == "LoadImage"


def test_a_recorded_loader_failure_of_the_relay_graph_names_the_audio_vae_loader() -> None:
    _, error = _replay_run("25")
    assert isinstance(error, ExecutionFailed) and error.node_type == "LTXVAudioVAELoader"
    assert "SafetensorError" in error.exception_type


def test_a_recorded_400_raises_prompt_rejected_and_leaves_nothing_to_withdraw() -> None:
    replay, error = _replay_run("25b")
    assert isinstance(error, PromptRejected) and error.status_code == 400
    assert "node 20 (PromptRelayEncodeTimeline) input 'time_units'" in str(error)
    assert [c[1] for c in replay.calls] == ["/prompt"]


def test_a_partly_valid_prompt_is_withdrawn_rather_than_half_rendered() -> None:
    replay, error = _replay_run("14")
    assert isinstance(error, PromptRejected) and error.status_code == 200
    assert ("POST", "/queue", {"delete": [replay.prompt_id]}) in replay.calls
    assert ("POST", "/interrupt", {"prompt_id": replay.prompt_id}) in replay.calls


def test_a_recorded_500_on_submit_is_a_server_error() -> None:
    _, error = _replay_run("03")
    assert isinstance(error, ServerError) and error.status_code == 500
    assert isinstance(error, TransientError)


def test_a_servers_auth_header_goes_with_every_request_and_the_websocket() -> None:
    server = ComfyUIServer(url="http://placeholder:8188", auth_header="X-Token: s3cret")
    replay, entry = _replay_run("06", server)
    assert isinstance(entry, p.HistoryEntry)
    assert replay.headers == ["s3cret", "s3cret"]


def test_a_server_block_names_its_gpu_slot_limit_after_host_and_port() -> None:
    server = ComfyUIServer(url="http://GPU-Box.studio.lan:8188/", gpu_slots=2)
    assert server.concurrency_limit_name == "comfyui-gpu-box-studio-lan-8188"
    assert server.url == "http://GPU-Box.studio.lan:8188"
    pool = ComfyUIPool.from_urls(["http://a:8188", "https://b"])
    assert pool.gpu_slots == 2
    assert pool.servers[1].concurrency_limit_name == "comfyui-b-443"
    with pytest.raises(ValueError, match="listed twice"):
        ComfyUIPool.from_urls(["http://a:8188", "http://a:8188/"])
    with pytest.raises(ValueError, match="http"):
        ComfyUIServer(url="gpu-box:8188")
