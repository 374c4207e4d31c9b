"""Suite-wide settings: quiet Prefect, no telemetry, and one Prefect API per session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from sim.embedded import RunningSimulator
from tests.film_helpers import instant_simulator

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "WARNING")


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[None]:
    """A temporary Prefect server and database for the tests that run real flows."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[RunningSimulator]:
    """An embedded simulator without its simulated GPU wait, for tests that render films."""
    with instant_simulator(tmp_path) as running:
        yield running
