"""Start the simulator in its own process on a loopback port, the way Prefect starts an
ephemeral API: callers get a URL and a handle, and a crash fault or a SIGKILL behaves
like a real server dying (nothing is shared with the caller's interpreter)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import httpx

from sim.settings import SimSettings


class SimulatorError(RuntimeError):
    """The simulator process could not be started."""


class SimulatorStartTimeout(SimulatorError):
    """The simulator process did not come up in time."""


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class RunningSimulator:
    """A simulator subprocess; use as a context manager or call ``stop()``."""

    url: str
    port: int
    workdir: Path
    process: subprocess.Popen[bytes]
    owns_workdir: bool = False
    _stopped: bool = field(default=False, repr=False)

    @property
    def output_dir(self) -> Path:
        """Where rendered media is written (ComfyUI's ``output`` folder)."""
        return self.workdir / "output"

    @property
    def input_dir(self) -> Path:
        """Where uploads land (ComfyUI's ``input`` folder)."""
        return self.workdir / "input"

    def is_alive(self) -> bool:
        """True while the server process has not exited."""
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the server, as an operator or the OOM killer would."""
        if self.is_alive():
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        """Terminate the server and remove a workdir that was created for it."""
        if self._stopped:
            return
        self._stopped = True
        if self.is_alive():
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> RunningSimulator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _wait_until_answering(sim: RunningSimulator, deadline: float) -> None:
    while time.monotonic() < deadline:
        if not sim.is_alive():
            raise SimulatorError(f"simulator exited with status {sim.process.returncode}")
        try:
            if httpx.get(f"{sim.url}/system_stats", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    sim.stop()
    raise SimulatorStartTimeout(f"simulator at {sim.url} did not answer /system_stats")


def start_simulator(
    settings: SimSettings | None = None,
    *,
    port: int = 0,
    workdir: Path | None = None,
    startup_timeout_s: float = 30.0,
) -> RunningSimulator:
    """Run the simulator on ``127.0.0.1:port`` (0 = a free port) in a subprocess.

    Returns once the server answers ``/system_stats``; when a ``refuse_connections_for_s``
    fault is set it returns at once, so the caller sees the refusals.
    """
    settings = settings or SimSettings()
    owns_workdir = workdir is None
    root = Path(tempfile.mkdtemp(prefix="reelflow-sim-")) if workdir is None else workdir
    root.mkdir(parents=True, exist_ok=True)
    chosen = port or free_loopback_port()
    command = [
        sys.executable,
        "-m",
        "sim",
        "--host",
        "127.0.0.1",
        "--port",
        str(chosen),
        "--output-dir",
        str(root / "output"),
        "--input-dir",
        str(root / "input"),
        "--settings",
        settings.model_dump_json(),
    ]
    log = (root / "sim.log").open("ab")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    sim = RunningSimulator(
        url=f"http://127.0.0.1:{chosen}",
        port=chosen,
        workdir=root,
        process=process,
        owns_workdir=owns_workdir,
    )
    if settings.faults.refuse_connections_for_s > 0:
        return sim
    _wait_until_answering(sim, time.monotonic() + startup_timeout_s)
    return sim
