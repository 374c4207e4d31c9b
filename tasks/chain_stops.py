"""When chains stop: why each stopped, what was kept, and the one message that says so."""

from __future__ import annotations

from collections.abc import Sequence as Seq
from dataclasses import dataclass

from tasks.errors import DiskFull, ReelflowError
from tasks.runtime.disk import disk_full, failing_path, is_disk_full
from tasks.runtime.studio import Studio
from tasks.schema.film_plan import FilmPlan
from tasks.schema.outcomes import (
    ChainOutcome,
)


@dataclass(frozen=True)
class ChainStop:
    """Why a chain stopped (None: its keyframe failed before it began) and how many of its
    sequences were rendered and kept by then."""

    error: BaseException | None
    rendered: int


class FilmFailed(ReelflowError):
    """Some sequences could not be rendered; everything finished is kept for the re-run."""

    def __init__(self, message: str, causes: Seq[BaseException] = ()) -> None:
        super().__init__(message)
        self.causes = tuple(causes)


def describe_failure(error: BaseException) -> str:
    """A chain's failure in one line: a full disk is named with its free space."""
    if is_disk_full(error) and not isinstance(error, DiskFull):
        path = failing_path(error)
        error = disk_full(path) if path is not None else error
    return str(error) if isinstance(error, ReelflowError) else f"{type(error).__name__}: {error}"


def raise_if_failed(
    plan: FilmPlan,
    outcomes: Seq[ChainOutcome],
    studio: Studio,
    stops: dict[int, ChainStop] | None = None,
) -> None:
    """Raise FilmFailed naming each stopped chain; "rendered" counts the renders made and kept
    (in the store, so a re-run does not make them again), not only the fully finished ones."""
    failed = [o for o in outcomes if o.failure is not None]
    if not failed:
        return
    known = stops or {}

    def rendered(outcome: ChainOutcome) -> int:
        stop = known.get(outcome.chain)
        return stop.rendered if stop is not None else len(outcome.sequences)

    done = sum(rendered(o) for o in outcomes)
    lines = [
        f"chain {o.chain} stopped at sequence {o.failed_sequence} "
        f"({rendered(o)} of {len(plan.chains[o.chain].sequences)} rendered): {o.failure}"
        for o in failed
    ]
    raise FilmFailed(
        "\n".join(
            [
                f"{len(failed)} of {len(plan.chains)} chain(s) failed; "
                f"{done} of {len(plan.sequences)} sequences rendered:",
                *lines,
                f"Renders that reached the media store ({studio.store.location}) are kept; "
                "run the same command again to continue where it stopped.",
            ]
        ),
        causes=[
            stop.error
            for o in failed
            if (stop := known.get(o.chain)) is not None and stop.error is not None
        ],
    )
