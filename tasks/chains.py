"""Rendering the chains: each sequence from the last frame of the one before, heard, normalized.

Per sequence: render -> check dialogue -> normalize -> carry the last frame forward.

While the dialogue of sequence N is being heard (CPU), sequence N+1 already renders from
N's last frame (GPU). If N must be re-rendered, that speculative render is cancelled (the
client withdraws it from the server) and N+1 renders again from the new last frame.

A sequence with several takes renders them all at once, hears and scores each (`tasks.takes`),
and carries forward the best one (or the one picked by hand); re-renders then apply to it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence as Seq
from dataclasses import dataclass

from tasks.chain_stops import ChainStop, describe_failure, raise_if_failed
from tasks.deliver.tables import final_action
from tasks.dialogue.check import check_dialogue
from tasks.dialogue.judge import unchecked
from tasks.dialogue.policy import DialoguePolicy
from tasks.dialogue.repeats import HeardRender, stop_repeats
from tasks.normalize import normalize_sequence
from tasks.plan.film import revise_sequence, with_sequences
from tasks.plan.takes import take_of
from tasks.render import last_frame_of, render_sequence
from tasks.runtime.studio import Studio
from tasks.runtime.task_inputs import whole
from tasks.runtime.withdraw import withdraw
from tasks.schema.film_plan import Chain, FilmPlan, Sequence
from tasks.schema.outcomes import (
    Attempt,
    CarriedFrame,
    ChainOutcome,
    ChainStart,
    Footage,
    RenderedSequence,
    SequenceResult,
    Take,
)
from tasks.schema.refs import MediaRef
from tasks.schema.verdicts import SequenceVerdict
from tasks.take_measure import drift_from, measure_take
from tasks.takes import kept_take


@dataclass(frozen=True)
class FirstRender:
    """A sequence's first render as kept: the only take, or the best (or picked) of several."""

    sequence: Sequence
    rendered: RenderedSequence
    carry: MediaRef | None
    verdict: SequenceVerdict
    takes: tuple[Take, ...] = ()
    kept: int = 0
    picked: bool = False


class ChainRun:
    """The state of one chain's render: its accepted sequences and background finishing."""

    def __init__(
        self, studio: Studio, plan: FilmPlan, chain: Chain, policy: DialoguePolicy
    ) -> None:
        self.studio, self.plan, self.chain, self.policy = studio, plan, chain, policy
        self.keyframe: MediaRef | None = None  # set by run()
        self.carried: list[CarriedFrame] = []
        self.finishing: list[tuple[int, asyncio.Task[SequenceResult]]] = []
        self.current = chain.sequences[0]
        self.ahead: list[asyncio.Task[RenderedSequence]] = []  # the next sequence's takes
        self.rendered: set[int] = set()
        """Sequences whose render is in the store and stands (no re-render asked since)."""

    def _render(self, sequence: Sequence, start: MediaRef | None) -> asyncio.Task[RenderedSequence]:
        return asyncio.create_task(
            self.studio.bind(render_sequence)(whole(self.studio), whole(self.plan), sequence, start)
        )

    def _render_takes(
        self, sequence: Sequence, start: MediaRef | None
    ) -> list[asyncio.Task[RenderedSequence]]:
        """Every take of a sequence at once: the GPU slots queue them."""
        return [self._render(take_of(sequence, take), start) for take in range(sequence.takes)]

    async def cancel_ahead(self, reason: str) -> None:
        """Withdraw the speculative renders of the next sequence."""
        ahead, self.ahead = self.ahead, []
        for task in ahead:
            await cancel_render(task, reason)

    def _following(self, position: int) -> Sequence | None:
        members = self.chain.sequences
        return self.plan.sequences[members[position + 1]] if position + 1 < len(members) else None

    async def run(self, keyframe: MediaRef | None) -> None:
        chain, studio = self.chain, self.studio
        self.keyframe = start = keyframe
        for position, index in enumerate(chain.sequences):
            following = self._following(position)
            self.current = index
            renders = self.ahead or self._render_takes(self.plan.sequences[index], start)
            self.ahead = []
            first = await self._first_render(self.plan.sequences[index], renders, following)
            sequence, rendered, carry = first.sequence, first.rendered, first.carry
            verdict = first.verdict
            attempts: list[Attempt] = []
            heard: list[HeardRender] = []
            while True:
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
                self.rendered.discard(index)
                await self.cancel_ahead(
                    f"sequence {index} is rendered again, so the next one must start from its "
                    "new last frame"
                )
                sequence = revised
                rendered = await self._render(sequence, start)
                self._report_render(rendered)
                carry = await self._carry_on(rendered, following)
                verdict = await self._check(sequence, rendered, len(attempts) + 1)
            self.finishing.append(
                (
                    index,
                    asyncio.create_task(self._finish(sequence, rendered, tuple(attempts), first)),
                )
            )
            if carry is not None and self.keyframe is not None and following is not None:
                self.carried.append(await self._drift(following.index, carry))
            start = carry

    def _report_render(self, rendered: RenderedSequence, take: int | None = None) -> None:
        self.rendered.add(rendered.index)
        events, which = self.studio.events, "" if take is None else f" take {take}"
        events.render_done(
            f"sequence {rendered.index}", f"{rendered.seconds:.1f} s, seed {rendered.seed}{which}"
        )
        events.outcome(
            f"sequence {rendered.index}{which}: rendered {rendered.seconds:.1f} s with seed "
            f"{rendered.seed} on {rendered.server} ({rendered.gpu_seconds:.1f} GPU s)"
        )

    async def _carry_on(
        self, rendered: RenderedSequence, following: Sequence | None
    ) -> MediaRef | None:
        """The last frame into the next sequence, whose takes start rendering at once (this
        one is heard once they are on their way); None at the end of the chain."""
        if following is None:
            return None
        carry = await last_frame_of(self.studio, rendered)
        acceptances = self.studio.acceptances
        accepted = acceptances.expect(f"sequence {following.index}")
        self.ahead = self._render_takes(following, carry)
        await acceptances.wait(accepted, self.ahead)  # it goes first; hearing this one waits
        return carry

    async def _first_render(
        self,
        sequence: Sequence,
        renders: list[asyncio.Task[RenderedSequence]],
        following: Sequence | None,
    ) -> FirstRender:
        """The sequence's first render: one take as it is, or every take heard, measured and
        scored, and the best one (or the one picked by hand) kept and carried forward."""
        if len(renders) == 1:
            rendered = await renders[0]
            self._report_render(rendered)
            carry = await self._carry_on(rendered, following)
            return FirstRender(sequence, rendered, carry, await self._check(sequence, rendered, 1))
        try:
            candidates = await asyncio.gather(*renders)
        except BaseException:  # one take failed for good: the others are not wanted either
            for task in renders:
                await cancel_render(task, f"a take of sequence {sequence.index} failed")
            raise
        for number, rendered in enumerate(candidates):
            self._report_render(rendered, number)
        measured = await asyncio.gather(
            *(
                self._hear_and_measure(take_of(sequence, number), number, rendered)
                for number, rendered in enumerate(candidates)
            )
        )
        takes = tuple(take for take, _, _ in measured)
        kept = kept_take(takes, sequence.pick)
        _, verdict, last_frame = measured[kept]
        scores = ", ".join(f"{t.score.total:.2f}" for t in takes)
        how = "picked by hand" if sequence.pick is not None else "best score"
        self.studio.events.outcome(
            f"sequence {sequence.index}: {len(takes)} takes scored {scores}; "
            f"take {kept} kept ({how})"
        )
        carry = None
        if following is not None:
            carry = last_frame
            self.ahead = self._render_takes(following, carry)
        return FirstRender(
            take_of(sequence, kept),
            candidates[kept],
            carry,
            verdict,
            takes,
            kept,
            sequence.pick is not None,
        )

    async def _hear_and_measure(
        self, sequence: Sequence, number: int, rendered: RenderedSequence
    ) -> tuple[Take, SequenceVerdict, MediaRef]:
        """Hear one take, then measure and score it (`tasks.take_measure`)."""
        verdict = await self._check(sequence, rendered, 1)
        take, last_frame = await measure_take(
            self.studio, sequence, number, rendered, verdict, self.keyframe
        )
        return take, verdict, last_frame

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
        drift = await drift_from(self.studio, self.keyframe, frame)
        return CarriedFrame(into_sequence=into, frame=frame, drift=drift)

    async def _finish(
        self,
        sequence: Sequence,
        rendered: RenderedSequence,
        attempts: tuple[Attempt, ...],
        first: FirstRender,
    ) -> SequenceResult:
        """Normalize the kept render (off the GPU-feeding path) and report it finished."""
        studio = self.studio
        verdict = attempts[-1].verdict
        finished = await studio.bind(normalize_sequence)(whole(studio), rendered, verdict)
        result = SequenceResult(
            sequence=sequence,
            rendered=rendered,
            attempts=attempts,
            finished=finished,
            takes=first.takes,
            kept_take=first.kept,
            picked=first.picked,
        )
        before, after = finished.before.integrated_lufs, finished.after.integrated_lufs
        change = f"{finished.gain_db:+.1f} dB" if finished.gain_db else finished.gain_reason
        studio.events.outcome(
            f"sequence {sequence.index}: loudness {before:.1f} -> {after:.1f} LUFS ({change})"
        )
        studio.events.sequence_finished(result)
        return result

    async def results(self) -> tuple[list[SequenceResult], BaseException | None, int | None]:
        """The finished sequences in order up to the first that could not be finished,
        that failure, and the index of the sequence it stopped."""
        finished = await asyncio.gather(*(t for _, t in self.finishing), return_exceptions=True)
        kept: list[SequenceResult] = []
        for (index, _), result in zip(self.finishing, finished, strict=True):
            if isinstance(result, BaseException):
                return kept, result, index
            kept.append(result)
        return kept, None, None


async def render_chain(
    studio: Studio,
    plan: FilmPlan,
    chain: Chain,
    start: ChainStart,
    policy: DialoguePolicy,
    stops: dict[int, ChainStop] | None = None,
) -> ChainOutcome:
    """Render a chain strictly in order; a failure stops it: nothing renders from a stale frame.

    What stopped it, and how many of its renders were made and kept, go into `stops`.
    """
    run = ChainRun(studio, plan, chain, policy)
    failure, error, stopped = start.failure, None, None
    if failure is None:
        try:
            await run.run(start.keyframe)
        except Exception as raised:  # the chain stops here; other chains go on
            error, stopped = raised, run.current
            # A render-ahead that already finished is in the store: the re-run has it.
            for ahead in run.ahead:
                if ahead.done() and not ahead.cancelled() and ahead.exception() is None:
                    run.rendered.add(ahead.result().index)
            await run.cancel_ahead(f"chain {chain.index} stopped")
    sequences, unfinished, at = await run.results()
    if error is None and unfinished is not None:
        error, stopped = unfinished, at
    if error is not None:
        failure = describe_failure(error)
    if failure is not None and stops is not None:
        stops[chain.index] = ChainStop(error=error, rendered=len(run.rendered))
    return ChainOutcome(
        chain=chain.index,
        keyframe=run.keyframe,
        sequences=tuple(sequences),
        carried=tuple(run.carried),
        failed_sequence=(stopped if stopped is not None else run.current) if failure else None,
        failure=failure,
    )


async def render_chains(studio: Studio, plan: FilmPlan, starts: Seq[ChainStart]) -> Footage:
    """Every chain at once (the GPU slots limit them), each strictly in order.

    Raises FilmFailed, naming each chain that stopped, once every other chain has finished.
    """
    studio.events.stage(f"rendering {len(plan.sequences)} sequences in {len(plan.chains)} chain(s)")
    policy = DialoguePolicy(enabled=studio.options.render.dialogue_check)
    stops: dict[int, ChainStop] = {}
    for chain in plan.chains:  # they all ask at once: the longest chains first
        first = plan.sequences[chain.sequences[0]]
        studio.scheduler.expect(
            studio.servers, "ltx", first.seconds, plan.seconds_after(first), first.chain
        )
    with studio.timer.stage("render"):
        outcomes = await asyncio.gather(
            *(
                render_chain(studio, plan, chain, start, policy, stops)
                for chain, start in zip(plan.chains, starts, strict=True)
            )
        )
    raise_if_failed(plan, outcomes, studio, stops)
    rendered = sorted((r for o in outcomes for r in o.sequences), key=lambda r: r.sequence.index)
    return Footage(
        plan=with_sequences(plan, [r.sequence for r in rendered]), chains=tuple(outcomes)
    )


async def cancel_render(
    task: asyncio.Task[RenderedSequence] | None, reason: str = "no longer needed"
) -> None:
    """Withdraw a render that is no longer wanted (the client interrupts it on the server).

    Its cache lock goes with it (tasks.runtime.locks), and Prefect records it as withdrawn,
    not as a crash (tasks.runtime.withdraw).
    """
    await withdraw(task, reason)
