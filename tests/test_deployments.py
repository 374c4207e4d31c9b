"""Operating reelflow: the deployments on a real `prefect server start` with a worker, and the
nightly batch flow run directly against the test API. Everything renders on simulator processes."""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
import yaml
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import FlowRun
from prefect.client.schemas.responses import DeploymentResponse
from prefect.client.schemas.schedules import CronSchedule
from prefect.settings import PREFECT_API_URL
from prefect.states import State

from flows.batch import (
    BatchState,
    ScreenplaySourceMissing,
    find_screenplays,
    load_state,
    nightly_batch,
)
from flows.serve import film_server
from sim.embedded import RunningSimulator, free_loopback_port
from tasks.deliver.folder import REPORT_ARTIFACT_KEY
from tasks.schema.options import FilmOptions
from tests.chromium import Chromium
from tests.film_helpers import instant_simulator, sim_stats, write_screenplay
from tests.prefect_server import (
    REPO,
    artifacts_of,
    block_type_slugs,
    logs_of,
    prefect_server,
)
from tests.s3_helpers import moto_server, use_s3


def screenplay(folder: Path, name: str, title: str, description: str) -> Path:
    scenes = [{"description": description, "duration": 2.0}]
    written = write_screenplay(folder, scenes, title=title)
    return written.rename(folder / name)


def run_batch(**parameters: Any) -> State[Any]:
    return asyncio.run(nightly_batch(**parameters, return_state=True))  # type: ignore[call-overload]


def summary_rows(state: State[Any]) -> dict[str, dict[str, Any]]:
    """The 'nightly-batch' table artifact of that run, as the UI shows it, by film."""
    run_id = str(state.state_details.flow_run_id)
    table = artifacts_of(str(PREFECT_API_URL.value()), run_id)["nightly-batch"]
    return {row["film"]: row for row in table}


@pytest.mark.usefixtures("prefect_api")
def test_a_batch_renders_new_films_reports_a_broken_one_and_skips_them_next_night(
    tmp_path: Path, sim: RunningSimulator
) -> None:
    inbox = tmp_path / "screenplays"
    inbox.mkdir()
    harbour = screenplay(inbox, "harbour.json", "Harbour", "Waves roll against the pier.")
    screenplay(inbox, "lighthouse.json", "Lighthouse", "The lamp turns at dusk.")
    (inbox / "broken.json").write_text(json.dumps({"title": "Broken", "scenes": []}))
    out = tmp_path / "out"
    parameters = {"folder": str(inbox), "options": FilmOptions.of(out=str(out), comfyui=[sim.url])}

    first = run_batch(**parameters)
    assert first.is_failed()
    assert "broken.json" in (first.message or "")
    rows = summary_rows(first)
    assert {name: row["status"] for name, row in rows.items()} == {
        "broken.json": "failed",
        "harbour.json": "rendered",
        "lighthouse.json": "rendered",
    }
    assert "scenes" in rows["broken.json"]["message"]
    for name in ("harbour.json", "lighthouse.json"):
        assert rows[name]["prompts"] > 0 and rows[name]["duration_s"] > 0
        # No public URL in this batch: the folder on the worker, not a file:// link browsers block.
        folder = Path(rows[name]["dailies"])
        assert folder.is_absolute()
        assert list((folder / "sequences").glob("*_SEQ*_v*.mp4"))
    assert set(load_state(out).films) == {"harbour.json", "lighthouse.json"}
    submitted = sim_stats(sim.url)["prompts_submitted"]

    second = summary_rows(run_batch(**parameters))
    assert second["harbour.json"]["status"] == second["lighthouse.json"]["status"] == "unchanged"
    assert sum(row["prompts"] for row in second.values()) == 0
    assert sim_stats(sim.url)["prompts_submitted"] == submitted

    harbour.write_text(harbour.read_text().replace("Waves roll", "A storm breaks"))
    third = summary_rows(run_batch(**parameters, force=True))
    assert third["harbour.json"]["status"] == "rendered" and third["harbour.json"]["prompts"] > 0
    # Forced, unchanged: the film flow runs again but every render comes from the cache.
    assert third["lighthouse.json"]["status"] == "rendered"
    assert third["lighthouse.json"]["prompts"] == 0


def batch_deployment_parameters() -> dict[str, Any]:
    """The parameters a Quick run of the nightly-batch deployment gets, from prefect.yaml."""
    definitions = yaml.safe_load((REPO / "deployments" / "prefect.yaml").read_text())
    (batch,) = [d for d in definitions["deployments"] if d["name"] == "nightly-batch"]
    parameters: dict[str, Any] = batch["parameters"]
    return parameters


@pytest.mark.usefixtures("prefect_api")
def test_a_quick_run_of_the_batch_in_a_fresh_checkout_completes_with_an_empty_inbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The worker runs the deployment in $REELFLOW_REPO: here a checkout with no inbox yet.
    monkeypatch.chdir(tmp_path)
    parameters = batch_deployment_parameters()
    state = run_batch(**parameters)
    assert state.is_completed(), state.message
    inbox = tmp_path / parameters["folder"]
    assert inbox.is_dir()
    run_id = str(state.state_details.flow_run_id)
    assert artifacts_of(str(PREFECT_API_URL.value()), run_id)["nightly-batch"] == []
    # The suite logs at WARNING, so the run's page shows the warning (the count is INFO).
    logs = logs_of(str(PREFECT_API_URL.value()), run_id)
    assert any(line.startswith(f"{inbox} holds no screenplays") for line in logs), logs
    # A folder whose parent is missing (an unmounted share, a typo) is not invented.
    with pytest.raises(ScreenplaySourceMissing, match="is not a folder"):
        asyncio.run(find_screenplays(str(tmp_path / "mnt" / "inbox"), tmp_path / "scratch"))
    assert not (tmp_path / "mnt").exists()


def test_a_deleted_film_folder_is_rendered_again_even_when_the_screenplay_is_unchanged(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "gone"
    state = BatchState.model_validate(
        {"films": {"a.json": {"fingerprint": "f", "folder": str(folder)}}}
    )
    assert not state.is_current("a.json", "f")
    folder.mkdir()
    assert state.is_current("a.json", "f")
    assert not state.is_current("a.json", "changed")


async def run_deployment_until_final(
    api_url: str, name: str, parameters: dict[str, Any], timeout: float
) -> tuple[FlowRun, float]:
    """Trigger a deployment run through the API; the run and seconds from trigger to final."""
    async with PrefectClient(api=api_url) as client:
        deployment = await client.read_deployment_by_name(name)
        run = await client.create_flow_run_from_deployment(deployment.id, parameters=parameters)
        triggered = time.monotonic()
        while time.monotonic() - triggered < timeout:
            run = await client.read_flow_run(run.id)
            if run.state is not None and run.state.is_final():
                break
            await asyncio.sleep(0.5)
        return run, time.monotonic() - triggered


def screenshot_run_page(api_url: str, run_id: str, dest: Path) -> Path:
    """The flow run's page in the Prefect UI, once it shows the run, as a PNG (kept)."""
    with Chromium(height=1200) as browser:
        browser.open(f"{api_url.removesuffix('/api')}/runs/flow-run/{run_id}")
        deadline = time.monotonic() + 60
        while "Test Reel" not in (browser.evaluate("document.body.innerText") or ""):
            assert time.monotonic() < deadline, "the run page never showed the run"
            time.sleep(0.5)
        time.sleep(2)  # the panes load after the header
        browser.screenshot(dest)
        browser.evaluate(
            "[...document.querySelectorAll('*')]"
            ".find(e => e.childElementCount === 0 && e.textContent.trim() === 'Artifacts')"
            ".click()"
        )
        time.sleep(3)
        return browser.screenshot(dest.with_name(f"{dest.stem}-artifacts.png"))


async def read_deployment(api_url: str, name: str) -> DeploymentResponse:
    async with PrefectClient(api=api_url) as client:
        return await client.read_deployment_by_name(name)


def test_a_film_started_from_the_deployment_renders_on_a_worker_and_the_nightly_batch_is_scheduled(
    tmp_path: Path,
) -> None:
    screenplay_path = write_screenplay(
        tmp_path, [{"description": "Gulls circle the mast.", "duration": 2.0}]
    )
    out = tmp_path / "renders"
    out.mkdir()
    yaml = "deployments/prefect.yaml"
    films = film_server(out, "127.0.0.1", free_loopback_port())
    threading.Thread(target=films.serve_forever, daemon=True).start()
    public_url = f"http://127.0.0.1:{films.server_address[1]}"
    with (
        prefect_server(tmp_path / "prefect") as server,
        instant_simulator(tmp_path) as sim,
    ):
        server.create_process_pool("reelflow")
        server.start_worker("reelflow")
        began = time.monotonic()
        server.cli_together(
            ["block", "register", "-m", "blocks"],
            ["deploy", "--all", "--prefect-file", yaml],
        )
        deployed_in = time.monotonic() - began
        default_schedule = (
            asyncio.run(read_deployment(server.api_url, "nightly-batch/nightly-batch"))
            .schedules[0]
            .schedule
        )
        # A studio in another zone re-deploys the batch alone with its own timezone; this
        # runs while the film renders.
        retimed = server.cli_start(
            "deploy", "--name", "nightly-batch", "--prefect-file", yaml,
            "--timezone", "Europe/Lisbon",
        )  # fmt: skip
        parameters = {
            "screenplay": str(screenplay_path),
            "options": {
                "comfyui": [sim.url],
                "out": str(out),
                "studio": {"gpu_slots": "prefect", "public_url": public_url},
            },
        }
        run, took = asyncio.run(
            run_deployment_until_final(server.api_url, "film/film", parameters, timeout=240)
        )
        server.cli_finish(retimed)
        assert run.state is not None and run.state.is_completed(), (
            f"{run.state}\n{server.log_tail()}"
        )
        artifacts = artifacts_of(server.api_url, str(run.id))
        assert {"film-plan", REPORT_ARTIFACT_KEY} <= set(artifacts)
        assert run.name == "film: Test Reel"
        assert artifacts["film-progress"] == 100.0
        assert {"dialogue-check", "loudness"} <= set(artifacts)
        # One click from the run page: the dailies page, the film and the contact sheet open.
        for key in ("dailies", "film", "contact-sheet", "keyframe-0"):
            # A link artifact holds markdown, `[text](url)`; an image artifact the URL itself.
            url = re.sub(r"^\[.*\]\((.*)\)$", r"\1", artifacts[key])
            assert url.startswith(public_url), key
            assert httpx.get(url, timeout=30).status_code == 200, key
        # The deliverables report links every file where a browser elsewhere can open it.
        report_links = re.findall(r"\]\(<([^>]+)>\)", artifacts[REPORT_ARTIFACT_KEY])
        linked = {url.removeprefix(f"{public_url}/test_reel/") for url in report_links}
        film_name = "TEST_REEL_v001"  # a silent film without a score: no subtitles, no music
        assert linked == {
            *(f"{film_name}{end}" for end in (".mp4", "_DX.wav", ".otio", ".fcpxml", ".xml")),
            f"{film_name}.edl",
            "contact_sheet.png",
            "manifest.json",
            "sequences/TEST_REEL_SEQ0010_v001.mp4",
        }
        for url in report_links:
            assert url.startswith(public_url), url
            assert httpx.get(url, timeout=30).status_code == 200, url
        shot = screenshot_run_page(server.api_url, str(run.id), tmp_path / "run-page.png")
        nightly = asyncio.run(read_deployment(server.api_url, "nightly-batch/nightly-batch"))
        registered = block_type_slugs(server.api_url)
        groups = [process.pid for process in server.processes]
        print(
            f"\nRUN PAGE SCREENSHOTS: {shot.with_name('run-page.png')}, {shot}"
            f"\nserver healthy in {server.started_in:.1f} s, block register + deploy --all "
            f"{deployed_in:.1f} s, "
            f"trigger to Completed {took:.1f} s"
        )
    films.shutdown()
    films.server_close()
    for group in groups:  # server, worker and the flow runs it spawned: all gone
        with pytest.raises(ProcessLookupError):
            os.killpg(group, 0)
    assert sorted((out / "test_reel" / "sequences").glob("*.mp4"))
    assert isinstance(default_schedule, CronSchedule)
    assert (default_schedule.cron, default_schedule.timezone) == ("0 2 * * *", "UTC")
    schedule = nightly.schedules[0].schedule
    assert isinstance(schedule, CronSchedule)
    assert (schedule.cron, schedule.timezone) == ("0 2 * * *", "Europe/Lisbon")
    assert len(nightly.schedules) == 1
    assert nightly.global_concurrency_limit is not None
    assert nightly.global_concurrency_limit.limit == 1
    assert nightly.concurrency_options is not None
    assert nightly.concurrency_options.collision_strategy == "CANCEL_NEW"
    assert nightly.parameters["options"]["studio"]["gpu_slots"] == "prefect"
    form = nightly.parameter_openapi_schema["properties"]
    assert all(field.get("description") for field in form.values())
    assert {
        "reelflow-comfyui-server",
        "reelflow-comfyui-pool",
        "reelflow-asr-endpoint",
        "reelflow-media-storage",
    } <= registered


def test_a_bucket_prefix_is_scanned_for_screenplays_with_the_aws_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with moto_server() as port:
        use_s3(monkeypatch, f"http://127.0.0.1:{port}")
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="films")
        s3.put_object(Bucket="films", Key="inbox/harbour.json", Body=b'{"title": "Harbour"}')
        s3.put_object(Bucket="films", Key="inbox/notes.txt", Body=b"not a screenplay")
        s3.put_object(Bucket="films", Key="inbox/old/archived.json", Body=b"{}")
        found = asyncio.run(find_screenplays("s3://films/inbox", tmp_path / "inbox"))
        with pytest.raises(ScreenplaySourceMissing, match="s3://nowhere"):
            asyncio.run(find_screenplays("s3://nowhere/inbox", tmp_path / "inbox"))
    assert [(source.name, source.path.read_bytes()) for source in found] == [
        ("harbour.json", b'{"title": "Harbour"}')
    ]
