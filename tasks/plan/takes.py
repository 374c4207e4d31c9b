"""Takes in the plan: how many candidates each sequence renders, which one a person picked,
and the seed of each take."""

from __future__ import annotations

from collections.abc import Mapping

from tasks.errors import ReelflowError
from tasks.plan.seeds import take_seed
from tasks.schema.film_plan import Sequence
from tasks.schema.screenplay import Screenplay


def with_takes(
    screenplay: Screenplay, sequences: list[Sequence], takes: int, picks: Mapping[int, int]
) -> list[Sequence]:
    """Each sequence's takes (the most any of its scenes asks for, or `takes` for all) and
    the take a person picked; a pick of a sequence or take that does not exist is refused."""
    default = screenplay.render.takes
    planned = [
        sequence.model_copy(
            update={
                "takes": takes
                or max(screenplay.scenes[s].takes or default for s in sequence.scene_indices),
                "pick": picks.get(sequence.index),
            }
        )
        for sequence in sequences
    ]
    for index, take in sorted(picks.items()):
        if index >= len(planned):
            raise ReelflowError(
                f"--pick {index}={take}: the film has sequences 0 to {len(planned) - 1}; "
                "pick one of those (`python -m flows.film plan` lists them)."
            )
        if take >= planned[index].takes:
            raise ReelflowError(
                f"--pick {index}={take}: sequence {index} has {planned[index].takes} take(s), "
                f"numbered 0 to {planned[index].takes - 1}; pick one of those, or render more "
                "with --takes."
            )
    return planned


def take_of(sequence: Sequence, take: int) -> Sequence:
    """One take of a sequence: the same sequence with that take's seed (take 0: unchanged)."""
    return (
        sequence
        if take == 0
        else sequence.model_copy(update={"seed": take_seed(sequence.seed, take)})
    )
