"""Withdrawing a task run nobody needs any more, without calling it a crash.

The speculative render of a chain's next sequence is cancelled when the sequence before
it must be rendered again. Prefect treats any cancelled task run as crashed: an ERROR line
"Crash detected!", another "Finished in state Crashed", and a red Crashed state, in every
normal run that re-renders. For a withdrawn render that is false. Its two lines become one
INFO line saying what happened, and its state becomes Cancelled with the reason.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from uuid import UUID
from weakref import WeakKeyDictionary

from prefect.client.orchestration import get_client
from prefect.states import Cancelled

log = logging.getLogger(__name__)

_reasons: WeakKeyDictionary[asyncio.Task[Any], str] = WeakKeyDictionary()
_task_runs: WeakKeyDictionary[asyncio.Task[Any], str] = WeakKeyDictionary()


def _current() -> asyncio.Task[Any] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:
        return None


class _WithdrawnRuns(logging.Filter):
    """Rewrites the crash report of a withdrawn task run (recognised by its asyncio task)."""

    def filter(self, record: logging.LogRecord) -> bool:
        task = _current()
        reason = _reasons.get(task) if task is not None else None
        if reason is None or task is None:
            return True
        run_id = getattr(record, "task_run_id", None)
        if run_id:
            _task_runs[task] = str(run_id)
        message = record.getMessage()
        if message.startswith("Finished in state Crashed"):
            return False
        if message.startswith("Crash detected!"):
            record.msg, record.args = f"withdrawn: {reason}", None
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.exc_info = record.exc_text = None
        return True


_FILTER = _WithdrawnRuns()


def _install() -> None:
    logger = logging.getLogger("prefect.task_runs")
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)


async def withdraw(task: asyncio.Task[Any] | None, reason: str) -> None:
    """Cancel `task` (a Prefect task run awaited inside it), saying why instead of "crash"."""
    if task is None:
        return
    _install()
    _reasons[task] = reason
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    run_id = _task_runs.get(task)
    if run_id is None:
        return  # it ended before it reported a crash (finished, or never started)
    try:
        async with get_client() as client:
            await client.set_task_run_state(
                UUID(run_id), Cancelled(message=f"withdrawn: {reason}"), force=True
            )
    except Exception as failure:  # the state is cosmetic; the run goes on regardless
        log.debug("could not mark task run %s as cancelled: %s", run_id, failure)
