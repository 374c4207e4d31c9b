"""A real `prefect server start` (SQLite) and `prefect worker start` for the deployment tests.

Each process runs in its own session so stopping it also stops whatever it spawned (uvicorn,
flow-run processes); nothing outlives the test that started it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from sim.embedded import free_loopback_port

REPO = Path(__file__).resolve().parents[1]
PREFECT = str(Path(sys.executable).with_name("prefect"))


class ServerDidNotStart(RuntimeError):
    """`prefect server start` did not answer /api/health in time."""


def _stop(process: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    """SIGTERM the process group we created, then SIGKILL it if it lingers."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
    # Children (uvicorn, flow runs) share the group: make sure none of them survives.
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=grace)


@dataclass
class PrefectServer:
    """A Prefect API with its own home folder; `cli()` and `spawn()` talk to it."""

    home: Path
    port: int = field(default_factory=free_loopback_port)
    started_in: float = 0.0
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def environment(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env.update(
            PREFECT_HOME=str(self.home),
            PREFECT_API_URL=self.api_url,
            # The UI calls the API it is told about; on a port other than 4200 it must be told.
            PREFECT_UI_API_URL=self.api_url,
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_LOGGING_LEVEL="WARNING",
            PREFECT_SERVER_LOGGING_LEVEL="WARNING",
            PREFECT_CLI_PROMPT="false",
            REELFLOW_REPO=str(REPO),
        )
        env.update(extra)
        return env

    def spawn(self, args: Sequence[str], log: Path, **env: str) -> subprocess.Popen[bytes]:
        """Start a long-running process (its output goes to `log`); stopped by `stop()`."""
        with log.open("ab") as sink:
            process = subprocess.Popen(
                list(args),
                cwd=REPO,
                env=self.environment(**env),
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append(process)
        return process

    def cli(self, *args: str, timeout: float = 120) -> str:
        """Run one `prefect` command against this server; raise with its output if it fails."""
        return self.cli_together([*args], timeout=timeout)[0]

    def cli_together(self, *commands: Sequence[str], timeout: float = 120) -> list[str]:
        """Several `prefect` commands at once (each pays seconds of imports); their outputs."""
        running = [self.cli_start(*args) for args in commands]
        return [self.cli_finish(process, timeout=timeout) for process in running]

    def cli_start(self, *args: str) -> subprocess.Popen[str]:
        """Start a `prefect` command and return at once; `cli_finish` collects it."""
        return subprocess.Popen(
            [PREFECT, *args],
            cwd=REPO,
            env=self.environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    @staticmethod
    def cli_finish(process: subprocess.Popen[str], timeout: float = 120) -> str:
        output, _ = process.communicate(timeout=timeout)
        if process.returncode != 0:
            command = " ".join(str(part) for part in process.args[1:])  # type: ignore[index]
            raise AssertionError(f"prefect {command} failed:\n{output}")
        return output

    def create_process_pool(self, name: str) -> None:
        """What `prefect work-pool create NAME --type process` does, without its CLI start-up."""
        from prefect.workers.process import ProcessWorker

        answer = httpx.post(
            f"{self.api_url}/work_pools/",
            json={
                "name": name,
                "type": "process",
                "base_job_template": ProcessWorker.get_default_base_job_template(),
            },
            timeout=30,
        )
        answer.raise_for_status()

    def start(self, timeout: float = 90, **settings: str) -> None:
        """Start the server; `settings` are extra PREFECT_SERVER_* variables for it alone."""
        self.home.mkdir(parents=True, exist_ok=True)
        began = time.monotonic()
        server = self.spawn(
            [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
            self.home / "server.log",
            **settings,
        )
        while time.monotonic() - began < timeout:
            if server.poll() is not None:
                break
            try:
                if httpx.get(f"{self.api_url}/health", timeout=2).status_code == 200:
                    self.started_in = time.monotonic() - began
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        log = (self.home / "server.log").read_text(errors="replace")[-3000:]
        raise ServerDidNotStart(f"no /api/health after {timeout:.0f} s:\n{log}")

    def start_worker(self, pool: str) -> subprocess.Popen[bytes]:
        return self.spawn(
            [PREFECT, "worker", "start", "--pool", pool, "--type", "process"],
            self.home / f"worker-{pool}.log",
            PREFECT_WORKER_QUERY_SECONDS="1",
            PREFECT_WORKER_PREFETCH_SECONDS="1",
        )

    def log_tail(self, characters: int = 4000) -> str:
        """The end of every log this server's processes wrote, for a failing assertion."""
        return "\n".join(
            f"--- {log.name}\n{log.read_text(errors='replace')[-characters:]}"
            for log in sorted(self.home.glob("*.log"))
        )

    def stop(self) -> None:
        """Workers first (they hold flow runs), the server last."""
        for process in reversed(self.processes):
            _stop(process)
        self.processes.clear()


@contextmanager
def prefect_server(home: Path, **settings: str) -> Iterator[PrefectServer]:
    server = PrefectServer(home)
    try:
        server.start(**settings)
        yield server
    finally:
        server.stop()


def block_type_slugs(api_url: str) -> set[str]:
    answer = httpx.post(f"{api_url}/block_types/filter", json={"limit": 200, "offset": 0})
    answer.raise_for_status()
    return {block_type["slug"] for block_type in answer.json()}


def artifacts_of(api_url: str, flow_run_id: str) -> dict[str, Any]:
    """The artifacts one flow run published, by key, with their data parsed as the UI shows it."""
    body = {"limit": 50, "offset": 0, "sort": "CREATED_DESC"}
    body["flow_runs"] = {"id": {"any_": [flow_run_id]}}
    answer = httpx.post(f"{api_url}/artifacts/filter", json=body, timeout=30)
    answer.raise_for_status()
    found: dict[str, Any] = {}
    for artifact in answer.json():
        data = artifact["data"]
        if artifact["type"] == "table" and isinstance(data, str):
            data = json.loads(data)
        found.setdefault(artifact["key"], data)
    return found


def logs_of(api_url: str, flow_run_id: str, settle_s: float = 10.0) -> list[str]:
    """The log messages of one flow run, as its page shows them (waits for the last batch)."""
    body = {"limit": 200, "offset": 0, "logs": {"flow_run_id": {"any_": [flow_run_id]}}}
    deadline = time.monotonic() + settle_s
    seen: list[str] = []
    # Runs ship their logs in the background: poll until the count stops growing.
    while time.monotonic() < deadline:
        answer = httpx.post(f"{api_url}/logs/filter", json=body, timeout=30)
        answer.raise_for_status()
        found = [entry["message"] for entry in answer.json()]
        if found and len(found) == len(seen):
            return found
        seen = found
        time.sleep(0.5)
    return seen
