"""Rendering the chains: each sequence from the last frame of the one before, heard, normalized.

Per sequence: render -> check dialogue -> normalize -> carry the last frame forward.

While the dialogue of sequence N is being heard (CPU), sequence N+1 already renders from
N's last frame (GPU). If N must be re-rendered, that speculative render is cancelled (the
client withdraws it from the server) and N+1 renders again from the new last frame.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence as Seq

from tasks import media
from tasks.deliver.tables import final_action
from tasks.dialogue.check import check_dialogue
from tasks.dialogue.judge import unchecked
from tasks.dialogue.policy import DialoguePolicy
from tasks.dialogue.repeats import HeardRender, stop_repeats
from tasks.errors import ReelflowError
from tasks.normalize import normalize_sequence
from tasks.plan.film import revise_sequence, with_sequences
from tasks.render import carry_frame, render_sequence
from tasks.runtime.studio import Studio
from tasks.runtime.task_inputs import whole
from tasks.schema.film_plan import Chain, FilmPlan, Sequence
from tasks.schema.outcomes import (
    Attempt,
    CarriedFrame,
    ChainOutcome,
    ChainStart,
    Footage,
    RenderedSequence,
    SequenceResult,
)
from tasks.schema.refs import MediaRef
from tasks.schema.verdicts import SequenceVerdict


class ChainRun:
    """The state of one chain's render: its accepted sequences and background finishing."""

    def __init__(
        self, studio: Studio, plan: FilmPlan, chain: Chain, policy: DialoguePolicy
    ) -> None:
        self.studio, self.plan, self.chain, self.policy = studio, plan, chain, policy
        self.keyframe: MediaRef | None = None  # set by run()
        self.carried: list[CarriedFrame] = []
        self.finishing: list[asyncio.Task[SequenceResult]] = []
        self.current = chain.sequences[0]
        self.ahead: asyncio.Task[RenderedSequence] | None = None

    def _render(self, sequence: Sequence, start: MediaRef | None) -> asyncio.Task[RenderedSequence]:
        return asyncio.create_task(
            self.studio.bind(render_sequence)(whole(self.studio), whole(self.plan), sequence, start)
        )

    async def run(self, keyframe: MediaRef | None) -> None:
        chain, studio = self.chain, self.studio
        self.keyframe = start = keyframe
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
                studio.events.outcome(
                    f"sequence {index}: rendered {rendered.seconds:.1f} s with seed "
                    f"{rendered.seed} on {rendered.server} ({rendered.gpu_seconds:.1f} GPU s)"
                )
                if position + 1 < len(chain.sequences):
                    carry = await studio.bind(carry_frame)(whole(studio), rendered)
                    self.ahead = self._render(
                        self.plan.sequences[chain.sequences[position + 1]], carry
                    )
                verdict = await self._check(sequence, rendered, len(attempts) + 1)
                heard.append(HeardRender(media_sha256=rendered.video.sha256, verdict=verdict))
                verdict = stop_repeats(heard, self.policy)
                attempts.append(
                    Attempt(seed=sequence.seed, frames=sequence.frames, verdict=verdict)
                )
                studio.events.outcome(
                    f"sequence {index}: heard {verdict.kind} ({verdict.heard or 'nothing'}), "
                    f"{final_action(verdict.action)}",
                    warning=verdict.action != "keep",
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
            self.finishing.append(
                asyncio.create_task(self._finish(sequence, rendered, tuple(attempts)))
            )
            if carry is not None and self.keyframe is not None:
                self.carried.append(await self._drift(chain.sequences[position + 1], carry))
            start = carry

    async def _check(
        self, sequence: Sequence, rendered: RenderedSequence, attempt: int
    ) -> SequenceVerdict:
        if not self.policy.enabled:
            return unchecked()
        return await self.studio.bind(check_dialogue)(
            whole(self.studio), whole(self.plan), sequence, rendered, attempt, self.policy
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

    async def _finish(
        self, sequence: Sequence, rendered: RenderedSequence, attempts: tuple[Attempt, ...]
    ) -> SequenceResult:
        """Normalize the kept render (off the GPU-feeding path) and report it finished."""
        studio = self.studio
        verdict = attempts[-1].verdict
        finished = await studio.bind(normalize_sequence)(whole(studio), rendered, verdict)
        result = SequenceResult(
            sequence=sequence, rendered=rendered, attempts=attempts, finished=finished
        )
        before, after = finished.before.integrated_lufs, finished.after.integrated_lufs
        change = f"{finished.gain_db:+.1f} dB" if finished.gain_db else finished.gain_reason
        studio.events.outcome(
            f"sequence {sequence.index}: loudness {before:.1f} -> {after:.1f} LUFS ({change})"
        )
        studio.events.sequence_finished(result)
        return result

    async def results(self) -> list[SequenceResult]:
        return list(await asyncio.gather(*self.finishing))


class FilmFailed(ReelflowError):
    """Some sequences could not be rendered; everything finished is kept for the re-run."""


async def render_chain(
    studio: Studio, plan: FilmPlan, chain: Chain, start: ChainStart, policy: DialoguePolicy
) -> ChainOutcome:
    """Render a chain strictly in order; a failure stops it: nothing renders from a stale frame."""
    run = ChainRun(studio, plan, chain, policy)
    failure = start.failure
    if failure is None:
        try:
            await run.run(start.keyframe)
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


async def render_chains(studio: Studio, plan: FilmPlan, starts: Seq[ChainStart]) -> Footage:
    """Every chain at once (the GPU slots limit them), each strictly in order.

    Raises FilmFailed, naming each chain that stopped, once every other chain has finished.
    """
    studio.events.stage(f"rendering {len(plan.sequences)} sequences in {len(plan.chains)} chain(s)")
    policy = DialoguePolicy(enabled=studio.options.render.dialogue_check)
    with studio.timer.stage("render"):
        outcomes = await asyncio.gather(
            *(
                render_chain(studio, plan, chain, start, policy)
                for chain, start in zip(plan.chains, starts, strict=True)
            )
        )
    _raise_if_failed(plan, outcomes, studio)
    rendered = sorted((r for o in outcomes for r in o.sequences), key=lambda r: r.sequence.index)
    return Footage(
        plan=with_sequences(plan, [r.sequence for r in rendered]), chains=tuple(outcomes)
    )


def _raise_if_failed(plan: FilmPlan, outcomes: Seq[ChainOutcome], studio: Studio) -> None:
    failed = [o for o in outcomes if o.failure is not None]
    if not failed:
        return
    lines = [
        f"chain {o.chain} stopped at sequence {o.failed_sequence} "
        f"({len(o.sequences)} of {len(plan.chains[o.chain].sequences)} rendered): {o.failure}"
        for o in failed
    ]
    raise FilmFailed(
        "\n".join(
            [
                f"{len(failed)} of {len(plan.chains)} chain(s) failed:",
                *lines,
                f"Finished renders are kept in {studio.store.location}; run the same command "
                "again to continue where it stopped.",
            ]
        )
    )


async def cancel_render(task: asyncio.Task[RenderedSequence] | None) -> None:
    """Withdraw a render that is no longer wanted (the client interrupts it on the server)."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(BaseException):
        await task
