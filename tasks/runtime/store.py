"""The media store: content-addressed media on a Prefect filesystem block, plus a local scratch.

Tasks pass `MediaRef`s (small, JSON-serialisable); the bytes live in the store. Every worker
keeps a scratch copy for ffmpeg, so a worker with an empty scratch continues from the store.
Bytes enter the pipeline only through `fetch`, which hands out nothing it has not checked
against the hash the file is named by (each file version is hashed once per process).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect.filesystems import LocalFileSystem, WritableFileSystem

from tasks.errors import MediaCorrupt, MediaMissing, StorageError, StoreUnreachable
from tasks.runtime.disk import disk_full, is_disk_full, raise_if_disk_full
from tasks.runtime.files import link_or_copy_atomic, write_atomic
from tasks.runtime.store_errors import (
    is_missing_object,
    is_transient,
    retry_window_s,
    short_reason,
)
from tasks.schema.refs import MediaRef

_CHUNK = 1 << 20
log = logging.getLogger(__name__)

StoreError = StorageError
"""The name this module's callers used before the error hierarchy moved to tasks.errors."""


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


def bytes_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_hashed: dict[tuple[int, int, int, int], str] = {}
_hashed_guard = threading.Lock()


def verified_sha256(path: Path) -> str:
    """The file's SHA-256, computed once per process for each version of the file.

    A version is the inode with its size and modification time: rewriting a file, or
    zeroing bytes in place, makes a new version that is hashed again. (Not the change time:
    hard-linking a file into the store or scratch changes it, and that is no new content.)
    """
    stat = path.stat()
    version = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
    with _hashed_guard:
        known = _hashed.get(version)
    if known is not None:
        return known
    digest = file_sha256(path)
    with _hashed_guard:
        _hashed[version] = digest
    return digest


def holds(path: Path, ref: MediaRef) -> bool:
    """Whether `path` holds exactly the bytes `ref` names."""
    try:
        return path.stat().st_size == ref.size and verified_sha256(path) == ref.sha256
    except FileNotFoundError:
        return False


def store_url(filesystem: WritableFileSystem) -> str:
    """The store as a person names it: a folder, or `s3://bucket/prefix` (never a block repr)."""
    if isinstance(filesystem, LocalFileSystem):
        return str(Path(str(filesystem.basepath)).expanduser())
    bucket = getattr(filesystem, "bucket_name", None)
    if bucket:
        folder = str(getattr(filesystem, "bucket_folder", "") or "").strip("/")
        return f"s3://{bucket}/{folder}" if folder else f"s3://{bucket}"
    basepath = getattr(filesystem, "basepath", None)
    return str(basepath) if basepath else type(filesystem).__name__


class MediaStore:
    """Writes each file once under its hash; reads verify the hash."""

    def __init__(self, filesystem: WritableFileSystem, scratch: Path) -> None:
        self.filesystem = filesystem
        self.scratch = scratch
        self.scratch.mkdir(parents=True, exist_ok=True)

    @property
    def location(self) -> str:
        return store_url(self.filesystem)

    def _local_root(self) -> Path | None:
        if isinstance(self.filesystem, LocalFileSystem):
            return Path(str(self.filesystem.basepath)).expanduser()
        return None

    def scratch_path(self, ref: MediaRef) -> Path:
        return self.scratch / f"{ref.sha256}{ref.suffix}"

    async def put(self, path: Path) -> MediaRef:
        """Store a finished file; returns its reference. Storing twice costs nothing.

        A stored copy that no longer matches its name (damaged on disk) is replaced.
        """
        sha = await asyncio.to_thread(verified_sha256, path)
        ref = MediaRef(sha256=sha, suffix=path.suffix.lower(), size=path.stat().st_size)
        cached = self.scratch_path(ref)
        with raise_if_disk_full(cached):
            if not await asyncio.to_thread(holds, cached, ref):
                await asyncio.to_thread(link_or_copy_atomic, path, cached)
        root = self._local_root()
        if root is not None:
            target = root / ref.key
            with raise_if_disk_full(target):
                if not await asyncio.to_thread(holds, target, ref):
                    await asyncio.to_thread(link_or_copy_atomic, path, target)
            return ref
        data = await asyncio.to_thread(path.read_bytes)
        try:
            await self.call(self.filesystem.write_path, ref.key, data, doing=f"upload {path.name}")
        except StorageError as failure:
            raise type(failure)(
                f"{failure} The file is not in the store; this machine's scratch copy "
                f"({cached}) is not used by other workers, and the next run fetches it again "
                "from the server, or renders it again if the server no longer has it."
            ) from failure
        return ref

    async def fetch(self, ref: MediaRef) -> Path:
        """A local copy of a stored file whose bytes were checked against its hash."""
        cached = self.scratch_path(ref)
        if await asyncio.to_thread(holds, cached, ref):
            return cached
        # A damaged copy is replaced, never removed first: another reader of the same file
        # may already hold this name, and each replacement is whole and checked.
        root = self._local_root()
        if root is not None:
            source = root / ref.key
            if not source.exists():
                raise MediaMissing(
                    f"{ref.key} is missing from the media store at {root}; run the same "
                    "command again and it is made again."
                )
            if not await asyncio.to_thread(holds, source, ref):
                raise self._corrupt(ref)
            with raise_if_disk_full(cached):
                await asyncio.to_thread(link_or_copy_atomic, source, cached)
            return cached
        data = await self.call(self.filesystem.read_path, ref.key, doing=f"read {ref.key}")
        if len(data) != ref.size or await asyncio.to_thread(bytes_sha256, data) != ref.sha256:
            raise self._corrupt(ref)
        with raise_if_disk_full(cached):
            await asyncio.to_thread(write_atomic, cached, data)
        return cached

    def _corrupt(self, ref: MediaRef) -> MediaCorrupt:
        return MediaCorrupt(
            f"{ref.key} in the media store {self.location} is damaged: its bytes no longer "
            "match the hash it is named by. Run the same command again and it is made again."
        )

    async def damage(self, ref: MediaRef) -> str | None:
        """What is wrong with a stored file (missing, damaged), or None when it is intact.

        A local store is checked itself (a scratch copy may outlive a deleted file); a
        bucket through a verified download, which the run uses next anyway.
        """
        root = self._local_root()
        if root is not None:
            source = root / ref.key
            if not source.exists():
                return "missing from the store"
            if not await asyncio.to_thread(holds, source, ref):
                return "damaged (its bytes no longer match their hash)"
            return None
        try:
            await self.fetch(ref)
        except MediaMissing:
            return "missing from the store"
        except MediaCorrupt:
            return "damaged (its bytes no longer match their hash)"
        return None

    async def has(self, ref: MediaRef) -> bool:
        root = self._local_root()
        if root is not None:
            return (root / ref.key).exists()
        return await self.damage(ref) is None

    async def call(self, method: Callable[..., Any], *args: object, doing: str) -> Any:
        """A filesystem call, retried with backoff while the store's trouble looks passing."""
        delay, waited, window = 0.5, 0.0, retry_window_s()
        while True:
            try:
                return await call_filesystem(method, *args)
            except Exception as failure:
                if is_missing_object(failure):
                    raise MediaMissing(
                        f"could not {doing}: it is missing from the media store {self.location}."
                    ) from failure
                if not is_transient(failure) or waited >= window:
                    raise StoreUnreachable(
                        f"could not {doing} in the media store {self.location}: "
                        f"{short_reason(failure)}. Check the storage endpoint, bucket and "
                        "credentials."
                    ) from failure
                log.warning(
                    "media store %s: %s; trying again in %.1f s",
                    self.location,
                    short_reason(failure),
                    delay,
                )
                await asyncio.sleep(delay)
                waited += delay
                delay = min(delay * 2, 8.0)

    async def probe(self) -> None:
        """Write, read back and compare a small object: fails now, before any GPU work.

        Every run writes the same bytes under the same key: runs a studio starts at once on
        one store overwrite each other's probe, and each must still read back what it wrote.
        """
        key = ".reelflow-probe"
        token = b"reelflow: this store was written and read back before a run's GPU work\n"
        root = self._local_root()
        if root is not None:
            try:
                await asyncio.to_thread(write_atomic, root / key, token)
            except OSError as failure:
                if is_disk_full(failure):
                    raise disk_full(root) from failure
                raise StoreUnreachable(
                    f"the media store {self.location} cannot be written: {short_reason(failure)}."
                ) from failure
            return
        await self.call(self.filesystem.write_path, key, token, doing="write a test object")
        back = await self.call(self.filesystem.read_path, key, doing="read a test object")
        if back != token:
            raise StoreUnreachable(
                f"the media store {self.location} gave back other bytes than were written "
                "to it; check the endpoint and bucket."
            )


async def probe_storage(storage: Storage, scratch: Path) -> None:
    """Check that media and results can be written and read back before any GPU work."""
    await MediaStore(storage.media, scratch).probe()
    await MediaStore(storage.results, scratch).probe()
    storage.locks.mkdir(parents=True, exist_ok=True)
    if not os.access(storage.locks, os.W_OK):
        raise StoreUnreachable(f"the lock folder {storage.locks} cannot be written.")


async def call_filesystem(method: object, *args: object) -> Any:
    """Prefect filesystem methods are sync-compatible: run them off the event loop."""
    result = await asyncio.to_thread(method, *args)  # type: ignore[arg-type]
    if asyncio.iscoroutine(result):
        result = await result
    return result
