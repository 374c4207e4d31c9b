"""A command-line run SIGKILLed mid-render: the re-run redoes no GPU work, nothing is left running.

The simulator runs in its own process and keeps rendering what it was given when the client
dies, as ComfyUI does; every count is taken at the simulator.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from sim.embedded import start_simulator
from sim.settings import SimSettings
from tasks import media
from tests.fault_helpers import wait_until
from tests.film_helpers import (
    film_command,
    harness_environment,
    render,
    sim_stats,
    write_screenplay,
)

REPO = Path(__file__).resolve().parents[1]
SEQUENCES = 3
PROMPTS = SEQUENCES + 1  # a keyframe, then each sequence from the last frame of the one before


def one_chain(tmp_path: Path) -> Path:
    scenes = [
        {"description": f"Shot {n}: a tram crosses.", "duration": 2.0, "relay_break": n > 0}
        for n in range(SEQUENCES)
    ]
    return write_screenplay(tmp_path, scenes)


def executions_by_prompt(url: str) -> tuple[Counter[str], float]:
    """How often each distinct prompt executed, and the GPU seconds spent on repeats."""
    history: dict[str, Any] = httpx.get(f"{url}/history", timeout=10).json()
    content = {pid: json.dumps(e["prompt"][2], sort_keys=True) for pid, e in history.items()}
    seen: Counter[str] = Counter()
    redone_s = 0.0
    for execution in sim_stats(url)["executions"]:
        prompt = content[execution["prompt_id"]]
        if seen[prompt]:
            redone_s += execution["end"] - execution["start"]
        seen[prompt] += 1
    return seen, redone_s


def rendering_a_sequence(url: str) -> bool:
    stats = sim_stats(url)
    return stats["prompts_executed"] >= 2 and len(stats["executions"]) < stats["prompts_executed"]


@pytest.mark.usefixtures("prefect_api")
def test_a_run_killed_mid_render_never_submits_that_prompt_again(tmp_path: Path) -> None:
    screenplay = one_chain(tmp_path)
    with start_simulator(
        SimSettings(gpu_seconds_per_output_second=3.0), workdir=tmp_path / "sim"
    ) as sim:
        process = subprocess.Popen(
            film_command(screenplay, tmp_path, [sim.url], "--no-dialogue-check"),
            env=harness_environment(),
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: rendering_a_sequence(sim.url), 120, "a sequence to be on the GPU")
        process.kill()
        process.wait(timeout=30)
        submitted_before = sim_stats(sim.url)["prompts_submitted"]
        result = render(screenplay, tmp_path, [sim.url], dialogue_check=False)
        runs, redone_s = executions_by_prompt(sim.url)
        submitted = sim_stats(sim.url)["prompts_submitted"]
    print(f"\nGPU seconds redone after the kill: {redone_s:.2f}")
    assert redone_s == 0.0
    assert len(runs) == PROMPTS and set(runs.values()) == {1}, runs.values()
    assert submitted == PROMPTS
    assert result.prompts == PROMPTS - submitted_before
    for video in sorted((Path(result.folder) / "sequences").glob("*_SEQ*_v*.mp4")):
        media.verify_decodes(video)


def prefect_servers_of(pid: int) -> list[int]:
    """The uvicorn (Prefect API) processes that `pid` started."""
    found = []
    for status in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(status.read_text().rsplit(")", 1)[1].split()[1])
            command = (status.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if parent == pid and b"uvicorn" in command:
            found.append(int(status.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_killed_run_takes_its_temporary_prefect_server_with_it(tmp_path: Path) -> None:
    screenplay = one_chain(tmp_path)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    environment.update(PREFECT_HOME=str(tmp_path / "prefect"), PREFECT_SERVER_ANALYTICS_ENABLED="0")
    with start_simulator(
        SimSettings(gpu_seconds_per_output_second=3.0), workdir=tmp_path / "sim"
    ) as sim:
        process = subprocess.Popen(
            film_command(screenplay, tmp_path, [sim.url], "--no-dialogue-check"),
            env=environment,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_until(lambda: bool(prefect_servers_of(process.pid)), 180, "a Prefect server")
            servers = prefect_servers_of(process.pid)
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
        deadline = time.monotonic() + 15
        while any(alive(pid) for pid in servers) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = [pid for pid in servers if alive(pid)]
        for pid in left:
            os.kill(pid, signal.SIGKILL)
    assert not left, "the temporary Prefect server outlived the run that started it"
