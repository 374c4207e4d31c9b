"""A studio on one machine: a real Prefect server with a process work pool and workers, ComfyUI
simulators, an S3 bucket (moto) and the film deployment (its figures: `fleet_figures.py`).

Used by tests/test_fleet.py and bench/fleet.py. Every process it starts runs in its own
session and is stopped with everything it spawned.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import FlowRun

from sim.embedded import RunningSimulator, start_simulator
from sim.settings import SimSettings
from tests.film_helpers import TINY_RENDER
from tests.prefect_server import PREFECT, PrefectServer, prefect_server
from tests.s3_helpers import moto_server

POOL = "reelflow"
FILM = "film/film"
BUCKET = "films"


def s3_environment(endpoint: str) -> dict[str, str]:
    """The AWS environment a studio's workers get, pointed at `endpoint`."""
    return {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
    }


def write_film(
    folder: Path, name: str, chains: int, shots: int, seconds: float, *, scored: bool = False
) -> Path:
    """A small film of `chains` chains of `shots` hard-cut sequences, its text its own (so two
    films never share a render through the cache)."""
    scenes: list[dict[str, Any]] = []
    for chain in range(chains):
        for shot in range(shots):
            scene: dict[str, Any] = {
                "description": f"{name}, chain {chain} shot {shot}: the tide rolls in.",
                "duration": seconds,
                "relay_break": shot > 0,
            }
            if shot == 0 and chain > 0:
                scene["tags"] = ["keyframe"]
            scenes.append(scene)
    document: dict[str, Any] = {
        "title": name,
        "style": "flat colours",
        "setting": "a quiet harbour",
        "characters": {"ANA": "a woman in a red coat"},
        "render": TINY_RENDER,
        "scenes": scenes,
    }
    if not scored:
        document["score"] = None
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name.lower().replace(' ', '_')}.json"
    path.write_text(json.dumps(document))
    return path


@dataclass
class Fleet:
    """A running studio; `start_films` triggers film deployment runs as the UI's Run would."""

    server: PrefectServer
    sims: list[RunningSimulator]
    root: Path
    s3_endpoint: str
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    prefix: str = "studio"

    @property
    def urls(self) -> list[str]:
        return [sim.url for sim in self.sims]

    @property
    def store(self) -> str:
        return f"s3://{BUCKET}/{self.prefix}"

    def start_over(self, settings: SimSettings, prefix: str) -> None:
        """Fresh simulators (nothing loaded, nothing counted) and an empty store prefix for
        the next measurement; workers stopped (start them with their new environment)."""
        for process in self.workers.values():
            kill_groups([process.pid])
            process.wait(timeout=30)
        self.workers.clear()
        stop_flow_runs(self.server.api_url)
        count = len(self.sims)
        for sim in self.sims:
            sim.stop()
        self.sims = [
            start_simulator(settings, workdir=self.root / prefix / f"sim{n}") for n in range(count)
        ]
        self.prefix = prefix

    def start_worker(self, name: str, limit: int, **env: str) -> subprocess.Popen[bytes]:
        """`prefect worker start` for one GPU box: at most `limit` films at once."""
        process = self.server.spawn(
            [PREFECT, "worker", "start", "--pool", POOL, "--type", "process",
             "--name", name, "--limit", str(limit)],
            self.server.home / f"worker-{name}.log",
            PREFECT_WORKER_QUERY_SECONDS="1",
            PREFECT_WORKER_PREFETCH_SECONDS="1",
            **s3_environment(self.s3_endpoint),
            **env,
        )  # fmt: skip
        self.workers[name] = process
        return process

    def parameters(self, screenplay: Path) -> dict[str, Any]:
        out = self.root / "out" / screenplay.stem
        return {
            "screenplay": str(screenplay),
            "options": {
                "comfyui": self.urls,
                "out": str(out),
                "store": self.store,
                "studio": {"gpu_slots": "prefect"},
            },
        }

    def start_films(self, screenplays: Sequence[Path], stagger_s: float = 0.0) -> list[str]:
        """One film deployment run per screenplay, created together (or `stagger_s` apart);
        their ids."""

        async def go() -> list[str]:
            async with PrefectClient(api=self.server.api_url) as client:
                deployment = await client.read_deployment_by_name(FILM)

                async def start(n: int, path: Path) -> str:
                    await asyncio.sleep(n * stagger_s)
                    run = await client.create_flow_run_from_deployment(
                        deployment.id, parameters=self.parameters(path)
                    )
                    return str(run.id)

                return list(await asyncio.gather(*(start(n, p) for n, p in enumerate(screenplays))))

        return asyncio.run(go())

    def read_runs(self, ids: Sequence[str]) -> list[FlowRun]:
        async def go() -> list[FlowRun]:
            async with PrefectClient(api=self.server.api_url) as client:
                return [await client.read_flow_run(run_id) for run_id in ids]  # type: ignore[arg-type]

        return asyncio.run(go())

    def wait_final(self, ids: Sequence[str], timeout: float) -> list[FlowRun]:
        deadline = time.monotonic() + timeout
        while True:
            runs = self.read_runs(ids)
            if all(run.state is not None and run.state.is_final() for run in runs):
                return runs
            if time.monotonic() > deadline:
                states = [run.state_name for run in runs]
                raise AssertionError(f"runs not final after {timeout:.0f} s: {states}")
            time.sleep(1.0)


@contextmanager
def fleet(
    root: Path, *, sims: int, settings: SimSettings, **server_settings: str
) -> Iterator[Fleet]:
    """Server (slot waits capped at 1 s), pool, film deployment, bucket and simulators; the
    caller starts the workers. Stray flow-run processes are stopped with everything else."""
    with ExitStack() as stack:
        port = stack.enter_context(moto_server())
        endpoint = f"http://127.0.0.1:{port}"
        boto3.client("s3", **_boto(endpoint)).create_bucket(Bucket=BUCKET)
        server = stack.enter_context(
            prefect_server(
                root / "prefect",
                PREFECT_SERVER_CONCURRENCY_MAXIMUM_CONCURRENCY_SLOT_WAIT_SECONDS="1",
                **server_settings,
            )
        )
        stack.callback(stop_flow_runs, server.api_url)
        simulators = [start_simulator(settings, workdir=root / f"sim{n}") for n in range(sims)]
        studio = Fleet(server, simulators, root, endpoint)
        stack.callback(lambda: [sim.stop() for sim in studio.sims])
        server.create_process_pool(POOL)
        server.cli("deploy", "--name", "film", "--prefect-file", "deployments/prefect.yaml")
        yield studio


def _boto(endpoint: str) -> dict[str, str]:
    env = s3_environment(endpoint)
    return {
        "endpoint_url": endpoint,
        "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
        "region_name": env["AWS_DEFAULT_REGION"],
    }


def flow_run_processes(api_url: str, flow_run_id: str | None = None) -> list[int]:
    """Processes of this user that run flows against `api_url` (one flow run's, if given).

    A process worker starts each flow run in a session of its own, so stopping the worker's
    process group leaves them running.
    """
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with suppress(OSError):
            environ = (entry / "environ").read_bytes().split(b"\0")
            if f"PREFECT_API_URL={api_url}".encode() not in environ:
                continue
            run = next((v for v in environ if v.startswith(b"PREFECT__FLOW_RUN_ID=")), None)
            if run is None:
                continue
            if flow_run_id is None or run.decode().endswith(f"={flow_run_id}"):
                found.append(int(entry.name))
    return found


def kill_groups(pids: Sequence[int]) -> None:
    """SIGKILL each process's whole group, as a machine dying would."""
    for pid in pids:
        with suppress(ProcessLookupError):
            os.killpg(os.getpgid(pid), signal.SIGKILL)


def stop_flow_runs(api_url: str) -> None:
    kill_groups(flow_run_processes(api_url))


def workers_of(api_url: str, run_ids: Sequence[str], timeout: float = 30) -> dict[str, set[str]]:
    """Which workers submitted each flow run (a rescheduled run: two), from their events."""
    body = {"filter": {"event": {"name": ["prefect.worker.submitted-flow-run"]}}, "limit": 50}
    deadline = time.monotonic() + timeout
    found: dict[str, set[str]] = {}
    while time.monotonic() < deadline:
        answer = httpx.post(f"{api_url}/events/filter", json=body, timeout=30)
        answer.raise_for_status()
        for event in answer.json()["events"]:
            for related in event.get("related", []):
                run = related["prefect.resource.id"].removeprefix("prefect.flow-run.")
                if run in run_ids:
                    found.setdefault(run, set()).add(event["resource"]["prefect.resource.name"])
        if set(found) >= set(run_ids):
            break
        time.sleep(1)  # events are written in batches
    return found
