"""The media store: content-addressed media on a Prefect filesystem block, plus a local scratch.

Tasks pass `MediaRef`s (small, JSON-serialisable); the bytes live in the store. Every worker
keeps a scratch copy for ffmpeg, so a worker with an empty scratch continues from the store.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect.filesystems import LocalFileSystem, WritableFileSystem

from tasks.errors import ReelflowError
from tasks.runtime.files import link_or_copy_atomic, write_atomic
from tasks.schema.refs import MediaRef

_CHUNK = 1 << 20


class StoreError(ReelflowError):
    """The media store could not read or write a file."""


@dataclass(frozen=True)
class Storage:
    """Where media and Prefect results live: filesystem blocks, and a host-local lock folder."""

    media: WritableFileSystem
    results: WritableFileSystem
    locks: Path


def local_storage(root: Path) -> Storage:
    root = root.expanduser().resolve()
    return Storage(
        media=LocalFileSystem(basepath=str(root)),
        results=LocalFileSystem(basepath=str(root / "results")),
        locks=root / "locks",
    )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class MediaStore:
    """Writes each file once under its hash; reads verify the hash."""

    def __init__(self, filesystem: WritableFileSystem, scratch: Path) -> None:
        self.filesystem = filesystem
        self.scratch = scratch
        self.scratch.mkdir(parents=True, exist_ok=True)

    @property
    def location(self) -> str:
        if isinstance(self.filesystem, LocalFileSystem):
            return str(self.filesystem.basepath)
        return repr(self.filesystem)

    def _local_root(self) -> Path | None:
        if isinstance(self.filesystem, LocalFileSystem):
            return Path(str(self.filesystem.basepath)).expanduser()
        return None

    def scratch_path(self, ref: MediaRef) -> Path:
        return self.scratch / f"{ref.sha256}{ref.suffix}"

    async def put(self, path: Path) -> MediaRef:
        """Store a finished file; returns its reference. Storing twice costs nothing."""
        sha = await asyncio.to_thread(file_sha256, path)
        ref = MediaRef(sha256=sha, suffix=path.suffix.lower(), size=path.stat().st_size)
        cached = self.scratch_path(ref)
        if not cached.exists():
            await asyncio.to_thread(link_or_copy_atomic, path, cached)
        root = self._local_root()
        if root is not None:
            target = root / ref.key
            if not target.exists():
                await asyncio.to_thread(link_or_copy_atomic, path, target)
            return ref
        data = await asyncio.to_thread(path.read_bytes)
        try:
            await call_filesystem(self.filesystem.write_path, ref.key, data)
        except Exception as failure:
            raise StoreError(
                f"could not upload {path.name} to the media store ({self.location}): {failure}. "
                "Check the storage endpoint and credentials; the file is kept at "
                f"{cached} and the next run uploads it."
            ) from failure
        return ref

    async def fetch(self, ref: MediaRef) -> Path:
        """A local, verified copy of a stored file (from scratch if it is already there)."""
        cached = self.scratch_path(ref)
        if cached.exists() and cached.stat().st_size == ref.size:
            return cached
        root = self._local_root()
        if root is not None:
            source = root / ref.key
            if not source.exists():
                raise StoreError(f"{ref.key} is missing from the media store at {root}.")
            await asyncio.to_thread(link_or_copy_atomic, source, cached)
        else:
            try:
                data = await call_filesystem(self.filesystem.read_path, ref.key)
            except Exception as failure:
                raise StoreError(
                    f"could not read {ref.key} from the media store ({self.location}): {failure}"
                ) from failure
            await asyncio.to_thread(write_atomic, cached, data)
        if await asyncio.to_thread(file_sha256, cached) != ref.sha256:
            cached.unlink(missing_ok=True)
            raise StoreError(
                f"{ref.key} in the media store does not match its hash; it is "
                "corrupt. Delete it and re-run to render it again."
            )
        return cached

    async def has(self, ref: MediaRef) -> bool:
        root = self._local_root()
        if root is not None:
            return (root / ref.key).exists()
        try:
            await call_filesystem(self.filesystem.read_path, ref.key)
        except Exception:
            return False
        return True


async def call_filesystem(method: object, *args: object) -> Any:
    """Prefect filesystem methods are sync-compatible: run them off the event loop."""
    result = await asyncio.to_thread(method, *args)  # type: ignore[arg-type]
    if asyncio.iscoroutine(result):
        result = await result
    return result
