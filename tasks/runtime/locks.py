"""Locks that die with their holder: flock on a file, freed by the kernel when a process ends.

Used for GPU slots on one host and for Prefect's serializable cache isolation (two runs
wanting the same render: one renders, the other waits and reads the cached result). A
SIGKILLed run leaves nothing stale behind, so a re-run never waits on a dead holder.

Inside one process a lock belongs to the asyncio task that took it: when that task ends
(cancelled, crashed) without releasing it, the lock is released for it. Prefect releases a
transaction's lock on commit or rollback, but a task cancelled while it commits or opens its
transaction does neither, and the next task with the same key would wait forever.
Every wait has a limit, and says what it waits for.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from prefect.exceptions import MissingContextError
from prefect.logging import get_run_logger

from tasks.errors import LockTimeout

POLL_SECONDS = 0.05
LOCK_WAIT_ENV = "REELFLOW_LOCK_WAIT_S"
DEFAULT_LOCK_WAIT_S = 4 * 3600.0
"""How long a render waits for another run rendering the same thing: longer than any render."""
FIRST_NOTICE_S = 5.0
NOTICE_EVERY_S = 300.0

log = logging.getLogger(__name__)


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


def lock_wait_s() -> float:
    """The longest a lock is waited for ($REELFLOW_LOCK_WAIT_S, default four hours)."""
    try:
        return max(0.0, float(os.environ.get(LOCK_WAIT_ENV, DEFAULT_LOCK_WAIT_S)))
    except ValueError:
        return DEFAULT_LOCK_WAIT_S


def _current_task() -> asyncio.Task[object] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:  # no event loop in this thread
        return None


@dataclass
class _Held:
    holder: str
    handle: int
    owner: asyncio.Task[object] | None

    def orphaned(self) -> bool:
        """Its asyncio task ended, or asks for the lock again under a new holder."""
        return self.owner is not None and (self.owner.done() or self.owner is _current_task())


_held: dict[Path, _Held] = {}
_guard = threading.Lock()


def _describe_holder(path: Path) -> str:
    try:
        text = path.read_text().strip()
    except OSError:
        text = ""
    return text or "another process"


def _notice(text: str) -> None:
    try:
        get_run_logger().warning(text)
    except MissingContextError:
        log.warning(text)


class FlockLockManager:
    """A Prefect lock manager (prefect.locking.protocol.LockManager) built on flock."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.lock"

    def _take(self, key: str, holder: str) -> bool:
        path = self._path(key)
        with _guard:
            held = _held.get(path)
            if held is not None:
                if held.holder == holder:
                    return True
                if not held.orphaned():
                    return False
                del _held[path]
                release_flock(held.handle)
            handle = try_flock(path)
            if handle is None:
                return False
            owner = _current_task()
            _held[path] = _Held(holder, handle, owner)
        os.ftruncate(handle, 0)
        os.pwrite(handle, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        if owner is not None:
            owner.add_done_callback(lambda _: self._release_if_held(path, holder))
        return True

    def _release_if_held(self, path: Path, holder: str) -> None:
        with _guard:
            held = _held.get(path)
            if held is None or held.holder != holder:
                return
            del _held[path]
            release_flock(held.handle)

    def _waiting(self, key: str, limit: float | None) -> Callable[[], bool]:
        """A check to call while waiting: False when the wait is over its limit; says why."""
        started = time.monotonic()
        limit = lock_wait_s() if limit is None else limit
        next_notice = min(FIRST_NOTICE_S, limit / 2)

        def check() -> bool:
            nonlocal next_notice
            waited = time.monotonic() - started
            if waited >= limit:
                return False
            if waited >= next_notice:
                next_notice += NOTICE_EVERY_S
                _notice(
                    f"waiting for {_describe_holder(self._path(key))}, which is making the "
                    f"same render ({key}); waited {waited:.0f} s of at most {limit:.0f} s"
                )
            return True

        return check

    def _timed_out(self, key: str, limit: float | None) -> LockTimeout:
        path = self._path(key)
        waited = lock_wait_s() if limit is None else limit
        return LockTimeout(
            f"gave up after {waited:.0f} s waiting for {_describe_holder(path)}, which holds "
            f"the lock of the same render ({path}). If no other reelflow run is working on "
            f"this film, stop the process named, then run the same command again "
            f"(${LOCK_WAIT_ENV} sets the wait)."
        )

    def acquire_lock(
        self,
        key: str,
        holder: str,
        acquire_timeout: float | None = None,
        hold_timeout: float | None = None,
    ) -> bool:
        waiting = self._waiting(key, acquire_timeout)
        while not self._take(key, holder):
            if not waiting():
                if acquire_timeout is not None:
                    return False
                raise self._timed_out(key, acquire_timeout)
            time.sleep(POLL_SECONDS)
        return True

    async def aacquire_lock(
        self,
        key: str,
        holder: str,
        acquire_timeout: float | None = None,
        hold_timeout: float | None = None,
    ) -> bool:
        waiting = self._waiting(key, acquire_timeout)
        while not self._take(key, holder):
            if not waiting():
                if acquire_timeout is not None:
                    return False
                # Prefect calls without a limit and ignores a False: raise instead.
                raise self._timed_out(key, acquire_timeout)
            await asyncio.sleep(POLL_SECONDS)
        return True

    def release_lock(self, key: str, holder: str) -> None:
        path = self._path(key)
        with _guard:
            held = _held.get(path)
            if held is None or held.holder != holder:
                raise ValueError(f"{holder} does not hold the lock for {key}")
            del _held[path]
            release_flock(held.handle)

    def is_locked(self, key: str) -> bool:
        path = self._path(key)
        with _guard:
            held = _held.get(path)
            if held is not None:
                return not held.orphaned()
            handle = try_flock(path)
            if handle is None:
                return True
            release_flock(handle)
            return False

    def is_lock_holder(self, key: str, holder: str) -> bool:
        with _guard:
            held = _held.get(self._path(key))
            return held is not None and held.holder == holder

    def wait_for_lock(self, key: str, timeout: float | None = None) -> bool:
        waiting = self._waiting(key, timeout)
        while self.is_locked(key):
            if not waiting():
                return False
            time.sleep(POLL_SECONDS)
        return True

    async def await_for_lock(self, key: str, timeout: float | None = None) -> bool:
        waiting = self._waiting(key, timeout)
        while self.is_locked(key):
            if not waiting():
                return False
            await asyncio.sleep(POLL_SECONDS)
        return True
