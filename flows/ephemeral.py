"""Prefect's temporary API server for a command-line run, tied to the run's life.

With no PREFECT_API_URL, Prefect starts a temporary server (uvicorn in a subprocess) and
stops it at exit; a run killed with SIGKILL never reaches its exit handlers, and the server
lived on for good. Here the same server is started by the run's main thread with
PR_SET_PDEATHSIG set, so the kernel stops it the moment the run dies, however it dies.
Prefect finds it through its own registry of temporary servers and uses it as its own.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import prefect
from prefect.server.api.server import SubprocessASGIServer
from prefect.settings import get_current_settings

_PR_SET_PDEATHSIG = 1


def _parent_death_signal() -> Callable[[], None] | None:
    """A preexec function asking the kernel to SIGTERM the child when its parent dies."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved here, not in the forked child
    parent = os.getpid()

    def die_with_parent() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))
        if os.getppid() != parent:  # the parent died before the request took effect
            os._exit(1)

    return die_with_parent


class TiedServer(SubprocessASGIServer):
    """Prefect's temporary server, whose process the kernel ends when the run ends."""

    def _run_uvicorn_command(self) -> subprocess.Popen[Any]:
        # The command Prefect runs for its temporary server (UI off, marked ephemeral).
        return subprocess.Popen(
            args=[
                sys.executable,
                "-m",
                "uvicorn",
                "--app-dir",
                str(prefect.__module_path__.parent),
                "--factory",
                "prefect.server.api.server:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "error",
                "--lifespan",
                "on",
            ],
            env={
                **os.environ,
                "PREFECT_UI_ENABLED": "0",
                "PREFECT__SERVER_EPHEMERAL": "1",
                "PREFECT__SERVER_FINAL": "1",
                **get_current_settings().to_environment_variables(exclude_unset=True),
            },
            # Only a prctl call in the child; the function was resolved before the fork.
            preexec_fn=_parent_death_signal(),
        )


def start_tied_server() -> TiedServer | None:
    """Start the temporary server now, from the main thread (the kernel ties the child to the
    thread that forked it); None where a Prefect API is configured or ephemeral mode is off."""
    settings = get_current_settings()
    if settings.api.url or not settings.server.ephemeral.enabled:
        return None
    if not sys.platform.startswith("linux"):
        return None
    server = TiedServer()
    if not isinstance(server, TiedServer):  # Prefect already started one in this process
        return None
    # A first start of Prefect's database on a busy laptop can take a while.
    server.start(timeout=max(120, settings.server.ephemeral.startup_timeout_seconds))
    return server
