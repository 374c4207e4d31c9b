"""Cache locks: a cancelled holder never blocks the next task, and no wait is silent or endless.

The holders here are real: asyncio tasks cancelled mid-way, Prefect tasks cancelled while
they write their result record, and a separate process holding the lock file.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from prefect import flow, task
from prefect.filesystems import LocalFileSystem

from tasks.errors import LockTimeout
from tasks.runtime.caching import keyed_by
from tasks.runtime.locks import LOCK_WAIT_ENV, FlockLockManager


def test_a_lock_taken_by_a_task_that_was_cancelled_is_released_for_the_next(
    tmp_path: Path,
) -> None:
    locks = FlockLockManager(tmp_path)

    async def scenario() -> bool:
        taken = asyncio.Event()

        async def speculative() -> None:
            await locks.aacquire_lock("render-1", holder="ahead")
            taken.set()
            await asyncio.sleep(3600)  # cancelled before it could release

        ahead = asyncio.create_task(speculative())
        await taken.wait()
        ahead.cancel()
        await asyncio.gather(ahead, return_exceptions=True)
        # Another manager, as every bound task gets its own: the lock is the file's.
        again = FlockLockManager(tmp_path)
        return await asyncio.wait_for(again.aacquire_lock("render-1", holder="real"), 10)

    assert asyncio.run(scenario())


class StallingFileSystem(LocalFileSystem):
    """A local result storage whose writes take a while, like a slow network disk."""

    _block_type_slug = "reelflow-test-stalling-filesystem"
    stall_s: float = 2.0

    def write_path(self, path: str, content: bytes) -> str:
        time.sleep(self.stall_s)
        return super().write_path(path, content)  # type: ignore[no-any-return]

    async def awrite_path(self, path: str, content: bytes) -> str:
        await asyncio.to_thread(time.sleep, self.stall_s)
        return await super().awrite_path(path, content)  # type: ignore[no-any-return]


@pytest.mark.usefixtures("prefect_api")
def test_a_task_cancelled_while_it_saves_its_result_does_not_hang_the_next(
    tmp_path: Path,
) -> None:
    """What a withdrawn render-ahead did: Prefect keeps the lock when a commit is cancelled."""
    reached_commit = threading.Event()

    @task(persist_result=True, result_serializer="json", cache_policy=keyed_by(lambda p: "seq-2"))
    async def render(value: int) -> int:
        reached_commit.set()
        return value

    @flow
    async def chain() -> int:
        storage = StallingFileSystem(basepath=str(tmp_path / "results"))
        await storage.asave("reelflow-test-stalling", overwrite=True)
        policy = render.cache_policy.configure(  # type: ignore[union-attr]
            isolation_level="SERIALIZABLE", lock_manager=FlockLockManager(tmp_path / "locks")
        )

        def bound() -> Any:
            return render.with_options(result_storage=storage, cache_policy=policy)

        ahead = asyncio.create_task(bound()(1))
        while not reached_commit.is_set():
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.5)  # inside the stalled write of its result record
        ahead.cancel()
        await asyncio.gather(ahead, return_exceptions=True)
        value: int = await asyncio.wait_for(bound()(2), 20)
        return value

    assert asyncio.run(chain()) in (1, 2)


def hold_lock_in_another_process(path: Path) -> subprocess.Popen[str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    code = (
        "import fcntl, os, sys, time\n"
        f"fd = os.open({str(path)!r}, os.O_CREAT | os.O_RDWR)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "os.write(fd, f'pid {os.getpid()} on this host'.encode())\n"
        "print('held', flush=True)\n"
        "time.sleep(60)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def test_a_lock_held_by_another_run_is_waited_for_with_a_message_and_a_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(LOCK_WAIT_ENV, "1.5")
    locks = FlockLockManager(tmp_path)
    holder = hold_lock_in_another_process(tmp_path / "render-7.lock")
    try:
        started = time.monotonic()
        with caplog.at_level(logging.WARNING), pytest.raises(LockTimeout) as waited:
            asyncio.run(asyncio.wait_for(locks.aacquire_lock("render-7", holder="me"), 15))
        took = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()
    message = str(waited.value)
    assert f"pid {holder.pid}" in message and "render-7.lock" in message, message
    assert LOCK_WAIT_ENV in message
    assert 1.4 < took < 10
    notices = [r.getMessage() for r in caplog.records]
    assert any("waiting for" in n and "render-7" in n for n in notices), notices
