"""Rendering the chains: keyframe, then each sequence from the last frame of the one before."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from tasks import media
from tasks.film_plan import Chain, FilmPlan
from tasks.render import (
    RenderedSequence,
    carry_frame,
    generate_keyframe,
    render_sequence,
    store_source_image,
)
from tasks.store import MediaRef
from tasks.studio import Studio

SequenceReady = Callable[[RenderedSequence], Awaitable[None]]


class CarriedFrame(BaseModel):
    """A carried-forward frame and how far it drifted from its chain's keyframe."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    into_sequence: int
    frame: MediaRef
    drift: media.Drift


class ChainOutcome(BaseModel):
    """What one chain rendered, what it carried, and where it stopped if it failed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    chain: int
    keyframe: MediaRef | None
    rendered: tuple[RenderedSequence, ...]
    carried: tuple[CarriedFrame, ...]
    failed_sequence: int | None = None
    failure: str | None = None


async def render_chain(
    studio: Studio,
    plan: FilmPlan,
    chain: Chain,
    *,
    source_folder: Path,
    on_ready: SequenceReady,
    use_keyframe: bool = True,
) -> ChainOutcome:
    """Render a chain strictly in order; a failure stops it: nothing renders from a stale frame."""
    rendered: list[RenderedSequence] = []
    carried: list[CarriedFrame] = []
    keyframe: MediaRef | None = None
    current = chain.sequences[0]
    try:
        if chain.keyframe.source_image is not None:
            keyframe = await store_source_image(studio, source_folder / chain.keyframe.source_image)
        elif use_keyframe:
            keyframe = await studio.bind(generate_keyframe)(studio, plan, chain)
        start = keyframe
        for position, index in enumerate(chain.sequences):
            current = index
            result = await studio.bind(render_sequence)(studio, plan, plan.sequences[index], start)
            rendered.append(result)
            await on_ready(result)
            if position + 1 < len(chain.sequences):
                start = await studio.bind(carry_frame)(studio, result.video)
                if keyframe is not None:
                    carried.append(
                        await _measure_drift(studio, chain.sequences[position + 1], keyframe, start)
                    )
    except Exception as failure:  # the chain stops here; other chains go on
        return ChainOutcome(
            chain=chain.index,
            keyframe=keyframe,
            rendered=tuple(rendered),
            carried=tuple(carried),
            failed_sequence=current,
            failure=f"{type(failure).__name__}: {failure}",
        )
    return ChainOutcome(
        chain=chain.index, keyframe=keyframe, rendered=tuple(rendered), carried=tuple(carried)
    )


async def _measure_drift(
    studio: Studio, into: int, keyframe: MediaRef, frame: MediaRef
) -> CarriedFrame:
    drift = await asyncio.to_thread(
        media.frame_drift, await studio.store.fetch(keyframe), await studio.store.fetch(frame)
    )
    return CarriedFrame(into_sequence=into, frame=frame, drift=drift)
