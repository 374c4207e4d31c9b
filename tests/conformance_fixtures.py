"""The captured ComfyUI 0.27.0 transcripts in ../shared/comfyui-conformance, read for tests."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "comfyui-conformance"

needs_fixtures = pytest.mark.skipif(
    not FIXTURES.is_dir(), reason=f"conformance fixtures not found at {FIXTURES}"
)


def fixture_files() -> list[Path]:
    return sorted(FIXTURES.glob("[0-9]*.json")) if FIXTURES.is_dir() else []


def load_fixture(name: str) -> dict[str, Any]:
    matches = list(FIXTURES.glob(f"{name}_*.json"))
    assert len(matches) == 1, name
    return json.loads(matches[0].read_text())


def http_steps(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    return (step for step in doc["steps"] if step["kind"] == "http")


def ws_messages(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for step in doc["steps"]:
        if step["kind"] == "websocket":
            yield from step["messages"]


def binary_frame(message: dict[str, Any]) -> bytes:
    """Rebuild a binary frame from the fixture's decoded fields (bytes are not stored)."""
    event = message["event_type"]
    if event == 1:
        return struct.pack(">II", 1, message["image_type"]) + bytes.fromhex(
            message["image_bytes_first_hex"]
        )
    if event == 3:
        node = message["node_id"].encode()
        return struct.pack(">II", 3, len(node)) + node + message["text"].encode()
    meta = json.dumps(message["metadata"]).encode()
    assert len(meta) == message["metadata_length"]
    return struct.pack(">II", 4, len(meta)) + meta + bytes.fromhex(message["image_bytes_first_hex"])
