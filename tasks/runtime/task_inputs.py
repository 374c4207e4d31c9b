"""Handing large values to Prefect tasks without Prefect walking through them.

Before a task runs, Prefect visits every element of every argument, looking for futures and
states to wait for and record as upstream runs. The studio (its workflow templates) and the
film plan (every sequence) hold none, and walking them costs tens of milliseconds per task,
growing with the plan: for a 100-sequence film, most of the orchestration time. Wrapped with
Prefect's `opaque`, a value reaches the task (and its cache key) exactly as given, unvisited.
"""

from __future__ import annotations

from typing import TypeVar, cast

from prefect.utilities.annotations import opaque

T = TypeVar("T")


def whole(value: T) -> T:
    """`value` as a task argument Prefect passes on without visiting its contents."""
    return cast(T, opaque(value))
