"""An S3-compatible server for tests: moto in server mode on a loopback port."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from sim.embedded import free_loopback_port


@contextmanager
def moto_server() -> Iterator[int]:
    """A running moto server; yields its port, stops it afterwards (its data goes with it)."""
    port = free_loopback_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=10)


def use_s3(monkeypatch: pytest.MonkeyPatch, endpoint: str, **extra: str) -> None:
    """Point the AWS environment (as a studio would) at `endpoint` with test credentials."""
    settings = {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
        **extra,
    }
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
