"""Cached results written by an earlier reelflow, kept readable by this one.

Prefect's JSON serializer names a result's type by its import path, and a record whose type
no longer imports reads as a cache miss: the render it stands for would run again. When a
result type moves, its old path goes into `MOVED` and each store's records are rewritten once,
the first time a run opens the store (a marker file records that it was done).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from prefect.filesystems import LocalFileSystem, WritableFileSystem

from tasks.runtime.files import write_atomic
from tasks.runtime.store import call_filesystem
from tasks.schema.outcomes import (
    CutFilm,
    FinishedSequence,
    RenderedCue,
    RenderedSequence,
)
from tasks.schema.refs import MediaRef
from tasks.schema.verdicts import SequenceVerdict

MOVED: dict[str, type] = {
    "tasks.store.MediaRef": MediaRef,
    "tasks.render.RenderedSequence": RenderedSequence,
    "tasks.dialogue.SequenceVerdict": SequenceVerdict,
    "tasks.post.FinishedSequence": FinishedSequence,
    "tasks.score.RenderedCue": RenderedCue,
    "tasks.mux.CutFilm": CutFilm,
}
"""Old import path of a persisted result type -> the type now."""

LAYOUT = "2"
"""Bump when `MOVED` grows, so that stores upgraded before are scanned again."""
MARKER = ".reelflow-results-layout"


def _new_name(kind: type) -> str:
    return f"{kind.__module__}.{kind.__qualname__}"


def upgrade_record(data: bytes) -> bytes:
    """The record with every moved type named by its current path (unchanged if none)."""
    for old, kind in MOVED.items():
        data = data.replace(f'"{old}"'.encode(), f'"{_new_name(kind)}"'.encode())
        # The result is a JSON string inside the record: its quotes are escaped there.
        data = data.replace(f'\\"{old}\\"'.encode(), f'\\"{_new_name(kind)}\\"'.encode())
    return data


def _upgrade_folder(folder: Path) -> int:
    marker = folder / MARKER
    if not folder.is_dir() or (marker.exists() and marker.read_text().strip() == LAYOUT):
        return 0
    upgraded = 0
    for record in folder.iterdir():
        if not record.is_file() or record.name.startswith("."):
            continue
        data = record.read_bytes()
        renamed = upgrade_record(data)
        if renamed != data:
            write_atomic(record, renamed)
            upgraded += 1
    write_atomic(marker, LAYOUT.encode())
    return upgraded


async def _upgrade_bucket(results: WritableFileSystem) -> int:
    try:
        marker = await call_filesystem(results.read_path, MARKER)
        if marker.decode().strip() == LAYOUT:
            return 0
    except Exception:  # no marker yet (each backend reports a missing object its own way)
        pass
    upgraded = 0
    for entry in await call_filesystem(results.list_objects):  # type: ignore[attr-defined]
        key = str(entry["Key"]).rsplit("/", 1)[-1]
        if key.startswith("."):
            continue
        data = await call_filesystem(results.read_path, key)
        renamed = upgrade_record(data)
        if renamed != data:
            await call_filesystem(results.write_path, key, renamed)
            upgraded += 1
    await call_filesystem(results.write_path, MARKER, LAYOUT.encode())
    return upgraded


async def upgrade_results(results: WritableFileSystem) -> int:
    """Rewrite the records of moved result types once per store; returns how many changed."""
    if isinstance(results, LocalFileSystem):
        folder = Path(str(results.basepath)).expanduser()
        return await asyncio.to_thread(_upgrade_folder, folder)
    return await _upgrade_bucket(results)
