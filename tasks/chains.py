"""Rendering the chains: keyframe, then each sequence from the last frame of the one before.

While the dialogue of sequence N is being heard (CPU), sequence N+1 already renders from
N's last frame (GPU). If N must be re-rendered, that speculative render is cancelled (the
client withdraws it from the server) and N+1 renders again from the new last frame.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from tasks import media
from tasks.dialogue import DialoguePolicy, SequenceVerdict, unchecked
from tasks.film_plan import Chain, FilmPlan, Sequence
from tasks.plan import revise_sequence
from tasks.post import FinishedSequence, check_dialogue, finish_sequence
from tasks.render import (
    RenderedSequence,
    carry_frame,
    generate_keyframe,
    render_sequence,
    store_source_image,
)
from tasks.repeats import HeardRender, stop_repeats
from tasks.store import MediaRef
from tasks.studio import Studio


class CarriedFrame(BaseModel):
    """A carried-forward frame and how far it drifted from its chain's keyframe."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    into_sequence: int
    frame: MediaRef
    drift: media.Drift


class Attempt(BaseModel):
    """One render of a sequence and what the dialogue check made of it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int
    frames: int
    verdict: SequenceVerdict


class SequenceResult(BaseModel):
    """A sequence as it ends up in the film: its plan, renders, verdicts and finished file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sequence: Sequence
    rendered: RenderedSequence
    attempts: tuple[Attempt, ...]
    finished: FinishedSequence


class ChainOutcome(BaseModel):
    """What one chain rendered, what it carried, and where it stopped if it failed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    chain: int
    keyframe: MediaRef | None
    sequences: tuple[SequenceResult, ...]
    carried: tuple[CarriedFrame, ...]
    failed_sequence: int | None = None
    failure: str | None = None


class ChainRun:
    """The state of one chain's render: its accepted sequences and background finishing."""

    def __init__(
        self, studio: Studio, plan: FilmPlan, chain: Chain, policy: DialoguePolicy
    ) -> None:
        self.studio, self.plan, self.chain, self.policy = studio, plan, chain, policy
        self.keyframe: MediaRef | None = None
        self.carried: list[CarriedFrame] = []
        self.accepted: list[tuple[Sequence, RenderedSequence, list[Attempt]]] = []
        self.finishing: list[asyncio.Task[FinishedSequence]] = []
        self.current = chain.sequences[0]
        self.ahead: asyncio.Task[RenderedSequence] | None = None

    def _render(self, sequence: Sequence, start: MediaRef | None) -> asyncio.Task[RenderedSequence]:
        return asyncio.create_task(
            self.studio.bind(render_sequence)(self.studio, self.plan, sequence, start)
        )

    async def run(self, source_folder: Path, use_keyframe: bool) -> MediaRef | None:
        chain, studio = self.chain, self.studio
        if chain.keyframe.source_image is not None:
            self.keyframe = await store_source_image(
                studio, source_folder / chain.keyframe.source_image
            )
        elif use_keyframe:
            self.keyframe = await studio.bind(generate_keyframe)(studio, self.plan, chain)
        start = self.keyframe
        for position, index in enumerate(chain.sequences):
            sequence, attempts = self.plan.sequences[index], []
            heard: list[HeardRender] = []
            self.current = index
            while True:
                rendered = await (self.ahead or self._render(sequence, start))
                self.ahead, carry = None, None
                studio.events.render_done(
                    f"sequence {index}", f"{rendered.seconds:.1f} s, seed {rendered.seed}"
                )
                if position + 1 < len(chain.sequences):
                    carry = await studio.bind(carry_frame)(studio, rendered.video)
                    self.ahead = self._render(
                        self.plan.sequences[chain.sequences[position + 1]], carry
                    )
                verdict = await self._check(sequence, rendered, len(attempts) + 1)
                heard.append(HeardRender(media_sha256=rendered.video.sha256, verdict=verdict))
                verdict = stop_repeats(heard, self.policy)
                attempts.append(
                    Attempt(seed=sequence.seed, frames=sequence.frames, verdict=verdict)
                )
                revised = self._revision(sequence, verdict, len(attempts))
                if revised is None or verdict.rerender is None:
                    break
                change = verdict.rerender.describe(revised.seed, revised.frames - sequence.frames)
                studio.events.stage(
                    f"sequence {index}: {verdict.kind}; re-rendering with {change} "
                    f"(attempt {len(attempts) + 1})"
                )
                await cancel_render(self.ahead)
                self.ahead, sequence = None, revised
            self.accepted.append((sequence, rendered, attempts))
            self.finishing.append(
                asyncio.create_task(studio.bind(finish_sequence)(studio, rendered, verdict))
            )
            if carry is not None and self.keyframe is not None:
                self.carried.append(await self._drift(chain.sequences[position + 1], carry))
            start = carry
        return self.keyframe

    async def _check(
        self, sequence: Sequence, rendered: RenderedSequence, attempt: int
    ) -> SequenceVerdict:
        if not self.policy.enabled:
            return unchecked()
        return await self.studio.bind(check_dialogue)(
            self.studio, self.plan, sequence, rendered, attempt, self.policy
        )

    def _revision(
        self, sequence: Sequence, verdict: SequenceVerdict, attempts: int
    ) -> Sequence | None:
        if verdict.action != "rerender" or verdict.rerender is None:
            return None
        return revise_sequence(
            sequence,
            verdict.rerender.segment_seconds,
            attempt=attempts,
            budget=self.plan.frame_budget,
        )

    async def _drift(self, into: int, frame: MediaRef) -> CarriedFrame:
        assert self.keyframe is not None
        drift = await asyncio.to_thread(
            media.frame_drift,
            await self.studio.store.fetch(self.keyframe),
            await self.studio.store.fetch(frame),
        )
        return CarriedFrame(into_sequence=into, frame=frame, drift=drift)

    async def results(self) -> list[SequenceResult]:
        finished = await asyncio.gather(*self.finishing)
        return [
            SequenceResult(sequence=s, rendered=r, attempts=tuple(a), finished=f)
            for (s, r, a), f in zip(self.accepted, finished, strict=True)
        ]


async def render_chain(
    studio: Studio,
    plan: FilmPlan,
    chain: Chain,
    *,
    source_folder: Path,
    policy: DialoguePolicy,
    use_keyframe: bool = True,
) -> ChainOutcome:
    """Render a chain strictly in order; a failure stops it: nothing renders from a stale frame."""
    run = ChainRun(studio, plan, chain, policy)
    failure: str | None = None
    try:
        await run.run(source_folder, use_keyframe)
    except Exception as error:  # the chain stops here; other chains go on
        failure = f"{type(error).__name__}: {error}"
        await cancel_render(run.ahead)
    try:
        sequences = await run.results()
    except Exception as error:
        failure = failure or f"{type(error).__name__}: {error}"
        sequences = []
    return ChainOutcome(
        chain=chain.index,
        keyframe=run.keyframe,
        sequences=tuple(sequences),
        carried=tuple(run.carried),
        failed_sequence=run.current if failure else None,
        failure=failure,
    )


async def cancel_render(task: asyncio.Task[RenderedSequence] | None) -> None:
    """Withdraw a render that is no longer wanted (the client interrupts it on the server)."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(BaseException):
        await task
