"""Injected faults: the simulator fails the way a real server or its GPU does."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
import websockets

from sim.embedded import start_simulator
from sim.settings import SimSettings
from tests.sim_helpers import png_bytes, relay_prompt, run_prompt, upload

STILL = {
    "1": {
        "class_type": "EmptyImage",
        "inputs": {"width": 64, "height": 48, "batch_size": 1, "color": 255},
    },
    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "f"}},
}


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/system_stats", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def _eventually_answers(url: str, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _answers(url):
            return True
        time.sleep(0.05)
    return False


def test_an_out_of_memory_fault_fails_the_nth_prompt_with_an_execution_error() -> None:
    settings = SimSettings(gpu_seconds_per_output_second=0)
    settings.faults.oom_on_prompt_n = 2
    with start_simulator(settings) as faulty:
        upload(faulty.url, "reelflow_start_frame.png", png_bytes(96, 64, (90, 120, 200)))
        run_prompt(faulty.url, relay_prompt(seed=1))
        answer, messages = run_prompt(faulty.url, relay_prompt(seed=2))
        error = next(m for m in messages if m["type"] == "execution_error")["data"]
        assert error["exception_type"] == "torch.OutOfMemoryError"
        assert "out of memory" in error["exception_message"]
        assert error["node_type"] == "SamplerCustomAdvanced"
        prompt_id = answer.json()["prompt_id"]
        entry = httpx.get(f"{faulty.url}/history/{prompt_id}").json()[prompt_id]
        assert entry["status"]["status_str"] == "error"
        assert httpx.get(f"{faulty.url}/api/jobs/{prompt_id}").json()["status"] == "failed"


def test_submit_faults_answer_500_then_recover() -> None:
    settings = SimSettings(gpu_seconds_per_output_second=0)
    settings.faults.fail_submit_status = 500
    settings.faults.fail_submit_count = 2
    with start_simulator(settings) as faulty:
        statuses = [
            httpx.post(f"{faulty.url}/prompt", json={"prompt": STILL}).status_code for _ in range(3)
        ]
        assert statuses == [500, 500, 200]
        httpx.post(
            f"{faulty.url}/reelflow-sim/faults",
            json={"fail_submit_status": 503, "fail_submit_count": 1},
        )
        assert httpx.post(f"{faulty.url}/prompt", json={"prompt": STILL}).status_code == 503


def test_a_refusing_server_refuses_connections_then_answers() -> None:
    settings = SimSettings()
    settings.faults.refuse_connections_for_s = 2.0
    with start_simulator(settings) as refusing:
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{refusing.url}/system_stats", timeout=1)
        assert _eventually_answers(refusing.url)


def test_a_crash_fault_kills_the_server_mid_prompt() -> None:
    settings = SimSettings(gpu_seconds_per_output_second=2.0)
    settings.faults.crash_mid_prompt_n = 1
    with start_simulator(settings) as doomed:
        upload(doomed.url, "reelflow_start_frame.png", png_bytes(96, 64, (90, 120, 200)))
        assert (
            httpx.post(f"{doomed.url}/prompt", json={"prompt": relay_prompt()}).status_code == 200
        )
        doomed.process.wait(timeout=20)
        assert doomed.process.returncode != 0
        # Nothing half-rendered under a real name: only a hidden partial file may remain.
        assert not [p for p in doomed.output_dir.rglob("*.mp4") if not p.name.startswith(".")]


def test_a_dropped_websocket_fault_closes_client_sockets_mid_prompt() -> None:
    settings = SimSettings(gpu_seconds_per_output_second=2.0)
    settings.faults.drop_ws_after_s = 0.3
    with start_simulator(settings) as flaky:
        upload(flaky.url, "reelflow_start_frame.png", png_bytes(96, 64, (90, 120, 200)))

        async def watch() -> str:
            url = flaky.url.replace("http://", "ws://") + "/ws?clientId=flaky"
            async with websockets.connect(url) as socket:
                await socket.recv()
                body = {"prompt": relay_prompt(), "client_id": "flaky"}
                assert httpx.post(f"{flaky.url}/prompt", json=body).status_code == 200
                with pytest.raises(websockets.ConnectionClosed):
                    while True:
                        await asyncio.wait_for(socket.recv(), 10)
                return "closed"

        assert asyncio.run(watch()) == "closed"
        assert httpx.get(f"{flaky.url}/queue").status_code == 200
