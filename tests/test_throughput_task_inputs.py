"""Large task arguments (the studio, the plan) reach the task untouched and unvisited."""

from __future__ import annotations

from typing import Any

import pytest
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from tasks.runtime.task_inputs import whole

pytestmark = pytest.mark.usefixtures("prefect_api")


class CountedList(list[Any]):
    """A list that counts how often something walks through it."""

    walks = 0

    def __iter__(self) -> Any:
        CountedList.walks += 1
        return super().__iter__()


@task(cache_policy=NO_CACHE)  # no input hashing: only Prefect's own walk is counted
def length(items: list[Any]) -> tuple[int, bool]:
    return len(items), isinstance(items, CountedList)


@flow
def hand_over(wrapped: bool) -> tuple[int, bool]:
    items = CountedList(range(1000))
    CountedList.walks = 0
    return length(whole(items) if wrapped else items)


def test_a_whole_argument_reaches_the_task_as_given_without_prefect_walking_it() -> None:
    assert hand_over(wrapped=True) == (1000, True)
    assert CountedList.walks == 0
    # Unwrapped, Prefect walks the list looking for futures before the task may start.
    assert hand_over(wrapped=False) == (1000, True)
    assert CountedList.walks > 0
