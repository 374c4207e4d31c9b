"""The nightly schedule fires: a real `prefect server start` schedules the batch by itself.

The deployment is created exactly as `deployments/prefect.yaml` defines it (02:00 UTC). Nothing
in the test asks for runs: the server's own scheduler service must insert the next nights' runs,
as it does for a studio. Its loop is set to one second so that takes seconds, not a minute.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from tests.prefect_server import PrefectServer, prefect_server

BATCH = "nightly-batch/nightly-batch"
# The scheduler loops (main and "recently changed deployments") every second instead of 60/5 s.
FAST_SCHEDULER = {
    "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "1",
    "PREFECT_SERVER_SERVICES_SCHEDULER_RECENT_DEPLOYMENTS_LOOP_SECONDS": "1",
    # Log what the loop services do, so a failing loop shows in the assertion message.
    "PREFECT_SERVER_LOGGING_LEVEL": "INFO",
}


def read_deployment(api_url: str, name: str) -> dict[str, Any]:
    flow, deployment = name.split("/")
    answer = httpx.get(f"{api_url}/deployments/name/{flow}/{deployment}", timeout=30)
    answer.raise_for_status()
    found: dict[str, Any] = answer.json()
    return found


def scheduled_runs(api_url: str, deployment_id: str) -> list[dict[str, Any]]:
    body = {
        "limit": 20,
        "offset": 0,
        "sort": "EXPECTED_START_TIME_ASC",
        "deployments": {"id": {"any_": [deployment_id]}},
        "flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}},
    }
    answer = httpx.post(f"{api_url}/flow_runs/filter", json=body, timeout=30)
    answer.raise_for_status()
    runs: list[dict[str, Any]] = answer.json()
    return runs


def wait_for_scheduled_runs(
    server: PrefectServer, deployment_id: str, timeout: float
) -> tuple[list[dict[str, Any]], float]:
    """Poll until the server's scheduler has inserted runs; the runs and seconds waited."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        runs = scheduled_runs(server.api_url, deployment_id)
        if runs:
            return runs, time.monotonic() - began
        time.sleep(0.5)
    raise AssertionError(
        f"the scheduler created no run of {BATCH} in {timeout:.0f} s:\n{server.log_tail()}"
    )


def test_the_server_scheduler_creates_the_nightly_batch_runs_at_two_utc(tmp_path: Path) -> None:
    yaml = "deployments/prefect.yaml"
    with prefect_server(tmp_path / "prefect", **FAST_SCHEDULER) as server:
        server.create_process_pool("reelflow")
        server.cli("deploy", "--name", "nightly-batch", "--prefect-file", yaml)
        deployed_at = datetime.now(UTC)
        deployment = read_deployment(server.api_url, BATCH)
        runs, waited = wait_for_scheduled_runs(server, deployment["id"], timeout=60)
        # Let a few more loops of every service pass, then read what the server logged.
        time.sleep(3)
        log = (server.home / "server.log").read_text(errors="replace")
        print(
            f"\nserver healthy in {server.started_in:.1f} s, "
            f"first scheduled run {waited:.1f} s after deploy"
        )
    (schedule,) = deployment["schedules"]
    assert schedule["active"] is True
    assert (schedule["schedule"]["cron"], schedule["schedule"]["timezone"]) == ("0 2 * * *", "UTC")
    starts = [datetime.fromisoformat(run["expected_start_time"]).astimezone(UTC) for run in runs]
    # The coming nights at 02:00 UTC, the first within a day; none in the past.
    assert deployed_at < starts[0] <= deployed_at + timedelta(days=1)
    assert all((start.hour, start.minute, start.second) == (2, 0, 0) for start in starts), starts
    assert len({start.date() for start in starts}) == len(starts)
    assert all(run["auto_scheduled"] for run in runs)
    assert all(run["parameters"]["options"]["studio"]["gpu_slots"] == "prefect" for run in runs)
    # No loop service (scheduler, late runs, foreman, ...) may fail against the database.
    assert "Traceback" not in log, log[-6000:]
