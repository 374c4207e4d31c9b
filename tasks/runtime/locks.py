"""Locks that die with their holder: flock on a file, freed by the kernel when a process ends.

Used for GPU slots on one host and for Prefect's serializable cache isolation (two runs
wanting the same render: one renders, the other waits and reads the cached result). A
SIGKILLed run leaves nothing stale behind, so a re-run never waits on a dead holder.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import threading
import time
from pathlib import Path

POLL_SECONDS = 0.05


def try_flock(path: Path) -> int | None:
    """An open descriptor holding an exclusive lock on `path`, or None if another holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(handle)
        return None
    return handle


def release_flock(handle: int) -> None:
    fcntl.flock(handle, fcntl.LOCK_UN)
    os.close(handle)


class FlockLockManager:
    """A Prefect lock manager (prefect.locking.protocol.LockManager) built on flock."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._held: dict[str, tuple[str, int]] = {}
        self._guard = threading.Lock()

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.lock"

    def _take(self, key: str, holder: str) -> bool:
        with self._guard:
            if key in self._held:
                return self._held[key][0] == holder
            handle = try_flock(self._path(key))
            if handle is None:
                return False
            self._held[key] = (holder, handle)
            return True

    def acquire_lock(self, key: str, holder: str, acquire_timeout: float | None = None,
                     hold_timeout: float | None = None) -> bool:
        deadline = None if acquire_timeout is None else time.monotonic() + acquire_timeout
        while not self._take(key, holder):
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(POLL_SECONDS)
        return True

    async def aacquire_lock(self, key: str, holder: str, acquire_timeout: float | None = None,
                            hold_timeout: float | None = None) -> bool:
        deadline = None if acquire_timeout is None else time.monotonic() + acquire_timeout
        while not self._take(key, holder):
            if deadline is not None and time.monotonic() >= deadline:
                return False
            await asyncio.sleep(POLL_SECONDS)
        return True

    def release_lock(self, key: str, holder: str) -> None:
        with self._guard:
            held = self._held.get(key)
            if held is None or held[0] != holder:
                raise ValueError(f"{holder} does not hold the lock for {key}")
            del self._held[key]
            release_flock(held[1])

    def is_locked(self, key: str) -> bool:
        with self._guard:
            if key in self._held:
                return True
            handle = try_flock(self._path(key))
            if handle is None:
                return True
            release_flock(handle)
            return False

    def is_lock_holder(self, key: str, holder: str) -> bool:
        with self._guard:
            return key in self._held and self._held[key][0] == holder

    def wait_for_lock(self, key: str, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.is_locked(key):
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(POLL_SECONDS)
        return True

    async def await_for_lock(self, key: str, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.is_locked(key):
            if deadline is not None and time.monotonic() >= deadline:
                return False
            await asyncio.sleep(POLL_SECONDS)
        return True
