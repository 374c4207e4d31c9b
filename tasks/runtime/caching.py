"""Cache keys by content, and the retry rule by error class.

Prefect's default policy includes the run id (a re-run never hits) and TASK_SOURCE changes
with any edit of the decorator; GPU renders are keyed on what was sent to the GPU instead.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from prefect.cache_policies import CacheKeyFnPolicy
from prefect.client.schemas.objects import TaskRun
from prefect.context import TaskRunContext
from prefect.states import State

from tasks.comfyui.errors import ServerDown, TransientError

RENDER_KEY_VERSION = "1"
"""Bump to invalidate every cached render after a change that alters outputs."""


def content_key(kind: str, document: Any) -> str:
    """A stable key for JSON-able content: same content, same key, on any machine."""
    canonical = json.dumps(
        {"kind": kind, "version": RENDER_KEY_VERSION, "content": document},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=_plain,
    )
    return f"{kind}-{hashlib.sha256(canonical.encode()).hexdigest()}"


def _plain(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if dump is None:
        raise TypeError(f"{type(value).__name__} cannot be part of a cache key")
    return dump(mode="json")


def keyed_by(compute: Callable[[dict[str, Any]], str]) -> CacheKeyFnPolicy:
    """A cache policy whose key is `compute(task parameters)`."""

    def key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
        return compute(parameters)

    return CacheKeyFnPolicy(cache_key_fn=key)


def retry_if_transient(task: object, task_run: TaskRun, state: State[Any]) -> bool:
    """Retry refused connections, timeouts, 5xx and OOM; fail at once on anything else.

    A server the client already waited for through its whole window is not retried: the
    wait was the retry (REELFLOW_SERVER_WAIT_S), and another would only repeat it.
    """
    return isinstance(state.data, TransientError) and not isinstance(state.data, ServerDown)


GPU_TASK_OPTIONS: dict[str, Any] = {
    "retries": 3,
    "retry_delay_seconds": [2, 8, 30],
    "retry_jitter_factor": 0.5,
    "retry_condition_fn": retry_if_transient,
    "persist_result": True,
    "result_serializer": "json",
    "cache_result_in_memory": False,
}
