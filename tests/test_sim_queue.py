"""A busy simulator: queued prompts, priorities, clearing, interrupts and reconnects.

Model-free nodes hold the worker in proportion to their work, so, as on the real server
(capture 16), a long job keeps others waiting and clients can reorder, drop and stop them.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets

from sim.embedded import RunningSimulator, start_simulator
from sim.settings import NodeCost, SimSettings
from tests.sim_helpers import posted_prompts

BLUR_SECONDS = 1.0
COSTS = {
    # 0.3 s per million pixels: 64 frames of 256x256 take about 1.3 s, frame by frame.
    "ColorTransfer": NodeCost(per_megapixel=0.3),
    "ImageBlur": NodeCost(seconds=BLUR_SECONDS),
}


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSimulator]:
    settings = SimSettings(gpu_seconds_per_output_second=0, node_costs=COSTS)
    with start_simulator(settings) as running:
        yield running


def _still(prefix: str, height: int = 16) -> dict[str, Any]:
    return {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 16, "height": height, "batch_size": 1, "color": 0},
        },
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": prefix}},
    }


def _blurred(prefix: str) -> dict[str, Any]:
    """EmptyImage -> ImageBlur (one slow node, no progress bar) -> ImageInvert -> SaveImage.

    The colour differs per prefix, so no node is answered from an earlier prompt's cache.
    """
    colour = sum(prefix.encode()) * 997 % 0xFFFFFF
    return {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 32, "height": 32, "batch_size": 1, "color": colour},
        },
        "2": {
            "class_type": "ImageBlur",
            "inputs": {"image": ["1", 0], "blur_radius": 3, "sigma": 1.0},
        },
        "3": {"class_type": "ImageInvert", "inputs": {"image": ["2", 0]}},
        "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": prefix}},
    }


def _colour_transfer(frames: int) -> dict[str, Any]:
    """Capture 16's long job, sized to run about a second."""
    prompt = copy.deepcopy(posted_prompts("16")[0]["request"]["json"]["prompt"])
    prompt["1"]["inputs"].update(width=256, height=256, batch_size=frames)
    return prompt  # type: ignore[no-any-return]


class Client:
    """A websocket client plus HTTP calls, as a ComfyUI frontend would use the server."""

    def __init__(self, url: str, client_id: str) -> None:
        self.url = url
        self.client_id = client_id
        self.http = httpx.AsyncClient(base_url=url, timeout=30)
        self.socket: Any = None
        self.seen: list[dict[str, Any]] = []

    async def connect(self) -> dict[str, Any]:
        ws_url = self.url.replace("http://", "ws://") + f"/ws?clientId={self.client_id}"
        self.socket = await websockets.connect(ws_url)
        return await self.next()

    async def next(self, timeout: float = 30) -> dict[str, Any]:
        while True:
            frame = await asyncio.wait_for(self.socket.recv(), timeout)
            if isinstance(frame, str):
                message: dict[str, Any] = json.loads(frame)
                self.seen.append(message)
                return message

    async def until(self, kind: str, **data: Any) -> dict[str, Any]:
        while True:
            message = await self.next()
            fields = message.get("data", {})
            if message["type"] == kind and all(fields.get(k) == v for k, v in data.items()):
                return message

    async def submit(self, prompt: dict[str, Any], **extra: Any) -> dict[str, Any]:
        body = {"prompt": prompt, "client_id": self.client_id, **extra}
        answer = await self.http.post("/prompt", json=body)
        assert answer.status_code == 200, answer.text
        return answer.json()  # type: ignore[no-any-return]

    async def close(self) -> None:
        await self.socket.close()
        await self.http.aclose()


def test_a_long_job_queues_others_which_can_be_reordered_dropped_and_interrupted(
    sim: RunningSimulator,
) -> None:
    async def scenario() -> None:
        client = Client(sim.url, "q16")
        await client.connect()
        long_id = (await client.submit(_colour_transfer(64)))["prompt_id"]
        queued = [(await client.submit(_still(f"q{i}", 16 + i)))["prompt_id"] for i in range(2)]
        front = await client.submit(_still("front", 20), front=True)
        assert front["number"] < 0
        await client.until("executing", node="3", prompt_id=long_id)
        state = (await client.http.get("/queue")).json()
        assert [row[1] for row in state["queue_running"]] == [long_id]
        pending = [row[1] for row in state["queue_pending"]]
        assert pending[0] == front["prompt_id"] and sorted(pending[1:]) == sorted(queued)
        assert (await client.http.post("/queue", json={"delete": [queued[0]]})).is_success
        cancelled = await client.http.post(f"/api/jobs/{queued[1]}/cancel")
        assert cancelled.json() == {"cancelled": True}
        await client.until("progress", node="3", prompt_id=long_id)
        await client.http.post("/interrupt", json={"prompt_id": "not-running"})
        await client.http.post("/interrupt", json={"prompt_id": long_id})
        stopped = (await client.until("execution_interrupted", prompt_id=long_id))["data"]
        # The colour transfer reports progress per frame, so it stops mid-node.
        assert (stopped["node_id"], stopped["node_type"]) == ("3", "ColorTransfer")
        assert sorted(stopped["executed"]) == ["1", "2"]
        progress = [m["data"] for m in client.seen if m["type"] == "progress"]
        assert progress and all(p["max"] == 64 for p in progress)
        assert progress[-1]["value"] < 64
        await client.until("execution_success", prompt_id=front["prompt_id"])
        history = (await client.http.get(f"/history/{long_id}")).json()[long_id]
        assert history["status"]["messages"][-1][0] == "execution_interrupted"
        for dropped in queued:
            assert (await client.http.get(f"/history/{dropped}")).json() == {}
        assert (await client.http.get("/queue")).json()["queue_pending"] == []
        await client.close()

    asyncio.run(scenario())


def test_an_interrupt_waits_for_a_node_without_a_progress_bar(sim: RunningSimulator) -> None:
    async def scenario() -> None:
        client = Client(sim.url, "between")
        await client.connect()
        prompt_id = (await client.submit(_blurred("between")))["prompt_id"]
        await client.until("executing", node="2", prompt_id=prompt_id)
        asked = time.monotonic()
        assert (await client.http.post("/interrupt")).is_success  # global: no prompt_id
        stopped = (await client.until("execution_interrupted", prompt_id=prompt_id))["data"]
        waited = time.monotonic() - asked
        # The blur runs to its end; the interrupt lands before the next node.
        assert stopped["node_id"] == "3" and sorted(stopped["executed"]) == ["1", "2"]
        assert waited >= BLUR_SECONDS * 0.7
        await client.close()

    asyncio.run(scenario())


def test_explicit_numbers_and_front_order_the_queue_and_clear_empties_it(
    sim: RunningSimulator,
) -> None:
    async def scenario() -> None:
        client = Client(sim.url, "order")
        await client.connect()
        first = (await client.submit(_blurred("order")))["prompt_id"]
        await client.until("executing", node="2", prompt_id=first)
        late = (await client.submit(_still("n50"), number=50))["prompt_id"]
        early = (await client.submit(_still("n10"), number=10))["prompt_id"]
        middle = (await client.submit(_still("n30"), number=30))["prompt_id"]
        await client.until("execution_success", prompt_id=late)
        history = list((await client.http.get("/history")).json())
        assert history[-4:] == [first, early, middle, late]

        blocker = (await client.submit(_blurred("clear")))["prompt_id"]
        await client.until("executing", node="2", prompt_id=blocker)
        doomed = [(await client.submit(_still(f"doomed{i}")))["prompt_id"] for i in range(2)]
        assert (await client.http.post("/queue", json={"clear": True})).is_success
        state = (await client.http.get("/queue")).json()
        assert state["queue_pending"] == [] and state["queue_running"][0][1] == blocker
        await client.until("execution_success", prompt_id=blocker)
        for prompt_id in doomed:
            assert (await client.http.get(f"/api/jobs/{prompt_id}")).status_code == 404
        await client.close()

    asyncio.run(scenario())


def test_model_free_work_takes_time_in_proportion_to_its_pixels(sim: RunningSimulator) -> None:
    async def scenario() -> dict[str, float]:
        client = Client(sim.url, "cost")
        await client.connect()
        spans = {}
        for frames in (1, 32):
            prompt_id = (await client.submit(_colour_transfer(frames)))["prompt_id"]
            await client.until("execution_success", prompt_id=prompt_id)
            stats = (await client.http.get("/reelflow-sim/stats")).json()
            run = next(e for e in stats["executions"] if e["prompt_id"] == prompt_id)
            spans[f"{frames}"] = run["end"] - run["start"]
        await client.close()
        return spans

    spans = asyncio.run(scenario())
    # 32 frames of 256x256 at 0.3 s per megapixel: at least 0.63 s; one frame: 0.02 s.
    assert spans["32"] >= 0.6
    assert spans["1"] < spans["32"] / 3


def test_a_client_reconnecting_mid_run_is_told_the_node_and_gets_the_rest(
    sim: RunningSimulator,
) -> None:
    async def scenario() -> None:
        client = Client(sim.url, "rc")
        await client.connect()
        prompt_id = (await client.submit(_blurred("reconnect")))["prompt_id"]
        await client.until("executing", node="2", prompt_id=prompt_id)
        await client.socket.close()  # the connection drops while the blur runs
        again = Client(sim.url, "rc")
        greeting = await again.connect()
        assert greeting["type"] == "status" and greeting["data"]["sid"] == "rc"
        assert await again.next() == {"type": "executing", "data": {"node": "2"}}
        await again.until("executed", node="4", prompt_id=prompt_id)
        await again.until("execution_success", prompt_id=prompt_id)
        await again.until("executing", node=None, prompt_id=prompt_id)
        await again.close()
        await client.http.aclose()

    asyncio.run(scenario())
