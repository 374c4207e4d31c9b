"""Gates through a real `prefect server start` and process workers, as a director uses them:
a deployment run pauses (or suspends) at a gate, shows its material and form in the UI, and
goes on with the answer sent through the API. Renders on a simulator process."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import FlowRun
from prefect.utilities.callables import parameter_schema

from flows.film import film
from flows.serve import film_server
from sim.embedded import RunningSimulator, free_loopback_port, start_simulator
from sim.settings import SimSettings
from tasks.plan import plan_screenplay
from tasks.schema.options import FilmOptions
from tests.chromium import Chromium
from tests.film_helpers import chain_scenes, sim_stats, write_screenplay
from tests.prefect_server import REPO, PrefectServer, _stop, artifacts_of, prefect_server

POOL = "reelflow"
SCREENSHOTS_ENV = "REELFLOW_SCREENSHOTS"
"""Set to a folder (deployments/screenshots) to keep the UI screenshots for the studio guide."""


@dataclass
class Studio:
    server: PrefectServer
    sim: RunningSimulator
    public_url: str
    out: Path
    deployment: str = "film/film"


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Studio]:
    """One Prefect server with a worker, the film deployment, a simulator, and the film
    folders served over HTTP (the gates' pictures become image artifacts)."""
    root = tmp_path_factory.mktemp("gates")
    out = root / "renders"
    out.mkdir()
    films = film_server(out, "127.0.0.1", free_loopback_port())
    threading.Thread(target=films.serve_forever, daemon=True).start()
    with (
        prefect_server(root / "prefect") as server,
        start_simulator(SimSettings(gpu_seconds_per_output_second=0), workdir=root / "sim") as sim,
    ):
        server.create_process_pool(POOL)
        server.start_worker(POOL)
        asyncio.run(deploy_film(server.api_url))
        yield Studio(server, sim, f"http://127.0.0.1:{films.server_address[1]}", out)
    films.shutdown()
    films.server_close()


async def deploy_film(api_url: str) -> None:
    """The film deployment, as `prefect deploy` makes it from deployments/prefect.yaml."""
    async with PrefectClient(api=api_url) as client:
        flow_id = await client.create_flow_from_name("film")
        await client.create_deployment(
            flow_id=flow_id,
            name="film",
            work_pool_name=POOL,
            entrypoint="flows/film.py:film",
            path=str(REPO),
            pull_steps=[
                {"prefect.deployments.steps.set_working_directory": {"directory": str(REPO)}}
            ],
            parameter_openapi_schema=parameter_schema(film.fn).model_dump(),
        )


async def _start(api_url: str, name: str, parameters: dict[str, Any]) -> FlowRun:
    async with PrefectClient(api=api_url) as client:
        deployment = await client.read_deployment_by_name(name)
        return await client.create_flow_run_from_deployment(deployment.id, parameters=parameters)


async def _wait(api_url: str, run_id: Any, state: str, timeout: float) -> FlowRun:
    """The run once its state is named `state` (or is final), polling the API."""
    async with PrefectClient(api=api_url) as client:
        began = time.monotonic()
        while True:
            run = await client.read_flow_run(run_id)
            if run.state is not None and (run.state.name == state or run.state.is_final()):
                return run
            if time.monotonic() - began > timeout:
                raise AssertionError(f"run still {run.state} after {timeout:.0f} s")
            await asyncio.sleep(0.5)


async def _resume(api_url: str, run_id: Any, answer: dict[str, Any]) -> None:
    async with PrefectClient(api=api_url) as client:
        response = await client.resume_flow_run(run_id, run_input=answer)
    assert response.status.value == "ACCEPT", response


def start_film(studio: Studio, screenplay: Path, out: Path, **render: Any) -> FlowRun:
    parameters = {
        "screenplay": str(screenplay),
        "options": {
            "comfyui": [studio.sim.url],
            "out": str(out),
            "render": render,
            "studio": {"public_url": f"{studio.public_url}/{out.name}"},
        },
    }
    return asyncio.run(_start(studio.server.api_url, studio.deployment, parameters))


def wait_for(studio: Studio, run: FlowRun, state: str, timeout: float = 180) -> FlowRun:
    reached = asyncio.run(_wait(studio.server.api_url, run.id, state, timeout))
    assert reached.state is not None and reached.state.name == state, (
        f"{reached.state}\n{studio.server.log_tail()}"
    )
    return reached


def renders(studio: Studio) -> dict[str, int]:
    counts = {"image": 0, "ltx": 0}
    for execution in sim_stats(studio.sim.url)["executions"]:
        counts[execution["family"]] = counts.get(execution["family"], 0) + 1
    return counts


def run_page(studio: Studio, run: FlowRun) -> str:
    return f"{studio.server.api_url.removesuffix('/api')}/runs/flow-run/{run.id}"


def _wait_for_text(browser: Chromium, text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while text not in (browser.evaluate("document.body.innerText") or ""):
        assert time.monotonic() < deadline, f"the page never showed {text!r}"
        time.sleep(0.5)


def _click(browser: Chromium, text: str) -> None:
    """Click the innermost element whose whole text is `text` (a tab, a button)."""
    browser.evaluate(
        "[...document.querySelectorAll('*')]"
        f".filter(e => e.textContent.trim() === {json.dumps(text)})"
        ".sort((a, b) => a.childElementCount - b.childElementCount)[0].click()"
    )


def keep_screenshot(shot: Path, name: str) -> None:
    """Copy a screenshot, shrunk to a small palette PNG, into $REELFLOW_SCREENSHOTS."""
    folder = os.environ.get(SCREENSHOTS_ENV)
    if not folder:
        return
    with Image.open(shot) as image:
        small = image.convert("RGB")
        small.thumbnail((1100, 1600))
        small.quantize(colors=96).save(Path(folder) / name, optimize=True)


def artifact_page(studio: Studio, run: FlowRun, key: str) -> str:
    """The UI page of one artifact of the run (a table shows as a table there)."""
    body = {"artifacts": {"key": {"any_": [key]}}, "flow_runs": {"id": {"any_": [str(run.id)]}}}
    found = httpx.post(f"{studio.server.api_url}/artifacts/filter", json=body, timeout=30).json()
    return f"{studio.server.api_url.removesuffix('/api')}/artifacts/artifact/{found[0]['id']}"


def test_a_run_paused_at_the_cast_gate_rerolls_exactly_the_keyframe_sent_back(
    studio: Studio, tmp_path: Path
) -> None:
    screenplay = write_screenplay(tmp_path, chain_scenes(chains=2, shots=1))
    out = studio.out / "cast"
    before = renders(studio)
    run = wait_for(studio, start_film(studio, screenplay, out, gates=["cast"]), "Paused")

    assert renders(studio) == {"image": before["image"] + 2, "ltx": before["ltx"]}
    gate = artifacts_of(studio.server.api_url, str(run.id))["gate-cast"]
    assert "GPU estimate of what remains" in gate and "keyframe 1" in gate
    kept_keyframe = (out / "test_reel" / "keyframes" / "chain0.png").read_bytes()
    sent_back = (out / "test_reel" / "keyframes" / "chain1.png").read_bytes()
    with Chromium(height=1000) as browser:
        browser.open(artifact_page(studio, run, "gate-cast"))  # the material, as published
        _wait_for_text(browser, "GPU estimate of what remains")
        time.sleep(2)  # the keyframe sheet loads from the served film folder
        keep_screenshot(browser.screenshot(tmp_path / "cast-gate.png"), "cast-gate.png")
        browser.open(run_page(studio, run))
        _wait_for_text(browser, "Test Reel")
        time.sleep(2)  # the panes load after the header
        _click(browser, "Resume")
        # The form is the gate's own: our fields, and the material it describes.
        _wait_for_text(browser, "Re-roll keyframes (chain numbers)")
        _wait_for_text(browser, "cast gate: Test Reel")  # its description renders last
        time.sleep(3)  # the dialog fades in, and its keyframe sheet loads
        keep_screenshot(browser.screenshot(tmp_path / "cast-form.png"), "resume-form.png")

    asyncio.run(_resume(studio.server.api_url, run.id, {"redo_keyframes": [1]}))
    done = wait_for(studio, run, "Completed")

    # Exactly the keyframe sent back rendered again; then the two sequences, once each.
    assert renders(studio) == {"image": before["image"] + 3, "ltx": before["ltx"] + 2}
    folder = out / "test_reel"
    assert (folder / "keyframes" / "chain0.png").read_bytes() == kept_keyframe
    assert (folder / "keyframes" / "chain1.png").read_bytes() != sent_back
    manifest = json.loads((folder / "manifest.json").read_text())
    planned = plan_screenplay(screenplay, FilmOptions())
    rerolled = plan_screenplay(screenplay, FilmOptions.of(rerender_keyframe=[1]))
    assert [k["seed"] for k in manifest["keyframes"]] == [
        planned.chains[0].keyframe.seed,
        rerolled.chains[1].keyframe.seed,
    ]
    assert rerolled.chains[1].keyframe.seed != planned.chains[1].keyframe.seed
    # The decision is part of the run's options: the dailies' commands repeat it.
    assert "--rerender-keyframe 1" in (folder / "review.html").read_text()
    assert done.state is not None and done.state.is_completed()


async def _read(api_url: str, run_id: Any) -> FlowRun:
    async with PrefectClient(api=api_url) as client:
        return await client.read_flow_run(run_id)


def process_of(studio: Studio, run: FlowRun) -> str | None:
    """The process the worker started for the flow run ("host:pid")."""
    return asyncio.run(_read(studio.server.api_url, run.id)).infrastructure_pid


def test_a_suspended_run_resumes_on_a_fresh_worker_and_renders_only_what_the_pick_changed(
    studio: Studio, tmp_path: Path
) -> None:
    screenplay = write_screenplay(tmp_path, chain_scenes(chains=1, shots=2))
    out = studio.out / "takes"
    before = renders(studio)
    started = start_film(studio, screenplay, out, gates=["takes"], takes=2, gate_wait="suspend")
    run = wait_for(studio, started, "Suspended")
    first_process = process_of(studio, run)

    # The worker is free: its flow-run process has ended. Stop it; a fresh one takes over.
    suspended = renders(studio)
    assert suspended == {"image": before["image"] + 1, "ltx": before["ltx"] + 4}
    submitted = sim_stats(studio.sim.url)["prompts_submitted"]
    old_worker = studio.server.processes.pop(1)
    _stop(old_worker)
    assert old_worker.poll() is not None
    studio.server.start_worker(POOL)
    table = artifacts_of(studio.server.api_url, str(run.id))["takes"]
    assert sorted((row["sequence"], row["take"]) for row in table) == [
        (0, 0),
        (0, 1),
        (1, 0),
        (1, 1),
    ]
    (other,) = [row["take"] for row in table if row["sequence"] == 0 and not row["kept"]]
    with Chromium(height=900) as browser:
        browser.open(artifact_page(studio, run, "takes"))
        _wait_for_text(browser, "continuity")
        time.sleep(2)
        keep_screenshot(browser.screenshot(tmp_path / "takes.png"), "takes-table.png")

    asyncio.run(_resume(studio.server.api_url, run.id, {"pick": [f"0={other}"]}))
    wait_for(studio, run, "Completed")

    # The run started over on the new worker; everything finished came from the cache: the
    # only prompts are sequence 1's two takes, now from the picked take's last frame.
    assert process_of(studio, run) not in (None, first_process)
    assert sim_stats(studio.sim.url)["prompts_submitted"] - submitted == 2
    assert renders(studio) == {"image": suspended["image"], "ltx": suspended["ltx"] + 2}
    manifest = json.loads((out / "test_reel" / "manifest.json").read_text())
    first = manifest["sequences"][0]
    assert (first["kept_take"], first["picked"]) == (other, True)
    assert first["sha256"] == first["takes"][other]["sha256"]
