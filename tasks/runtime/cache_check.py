"""A cached result counts only while the media it names are intact in the store.

Prefect's cache answers by key: a result record whose file was deleted or damaged in the
store would be handed back forever, and every later step would fail on it (or deliver it).
A bound task here checks the media of a cached result; when one is missing or damaged it
says so and runs the task again with its cache refreshed, so that just that piece is made
again (a render whose prompt the server still has is fetched again, not re-rendered).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prefect import Task
from prefect.exceptions import MissingContextError
from prefect.logging import get_run_logger
from prefect.states import State
from pydantic import BaseModel

from tasks.schema.refs import MediaRef

if TYPE_CHECKING:
    from tasks.runtime.studio import Studio

log = logging.getLogger(__name__)


def media_of(value: Any) -> Iterator[MediaRef]:
    """Every MediaRef inside a result: models, tuples, lists and dicts are searched."""
    if isinstance(value, MediaRef):
        yield value
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from media_of(getattr(value, name))
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from media_of(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from media_of(item)


def run_name(task: Task[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """The task run's name as Prefect shows it (`render-seq3`), or the task's name."""
    template = task.task_run_name
    if not isinstance(template, str):
        return task.name
    try:
        arguments = inspect.signature(task.fn).bind_partial(*args, **kwargs).arguments
        return template.format(**arguments)
    except (TypeError, KeyError, AttributeError, IndexError, ValueError):
        return task.name


def _warn(studio: Studio, text: str) -> None:
    studio.events.stage(f"warning: {text}")
    try:
        get_run_logger().warning(text)
    except MissingContextError:
        log.warning(text)


class MediaChecked:
    """A bound task, called exactly as the task itself, whose cache hits are checked."""

    def __init__(self, task: Task[Any, Any], studio: Studio) -> None:
        self.task = task
        self.studio = studio
        self.name = task.name

    def __call__(self, *args: Any, return_state: bool = False, **kwargs: Any) -> Any:
        return self._run(args, kwargs, return_state)

    async def _run(self, args: tuple[Any, ...], kwargs: dict[str, Any], return_state: bool) -> Any:
        state: State[Any] = await self.task(*args, return_state=True, **kwargs)
        if state.is_completed() and state.name == "Cached":
            damage = await self._damage(await state.aresult())
            if damage:
                name = run_name(self.task, args, kwargs)
                _warn(self.studio, f"{name}: {damage}; making it again")
                fresh = self.task.with_options(refresh_cache=True)
                state = await fresh(*args, return_state=True, **kwargs)
        if return_state:
            return state
        return await state.aresult()

    async def _damage(self, result: Any) -> str | None:
        for ref in dict.fromkeys(media_of(result)):
            problem = await self.studio.store.damage(ref)
            if problem is not None:
                return f"the stored file {ref.key} is {problem}"
        return None
