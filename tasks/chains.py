"""Rendering the chains: each sequence from the last frame of the one before, heard, normalized.

Per sequence: render -> check dialogue -> normalize -> carry the last frame forward.

While the dialogue of sequence N is being heard (CPU), sequence N+1 already renders from
N's last frame (GPU). If N must be re-rendered, that speculative render is cancelled (the
client withdraws it from the server) and N+1 renders again from the new last frame.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence as Seq
from dataclasses import dataclass

from tasks import media
from tasks.deliver.tables import final_action
from tasks.dialogue.check import check_dialogue
from tasks.dialogue.judge import unchecked
from tasks.dialogue.policy import DialoguePolicy
from tasks.dialogue.repeats import HeardRender, stop_repeats
from tasks.errors import DiskFull, ReelflowError
from tasks.normalize import normalize_sequence
from tasks.plan.film import revise_sequence, with_sequences
from tasks.render import carry_frame, render_sequence
from tasks.runtime.disk import disk_full, failing_path, is_disk_full
from tasks.runtime.studio import Studio
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
        self.finishing: list[tuple[int, asyncio.Task[SequenceResult]]] = []
        self.current = chain.sequences[0]
        self.ahead: asyncio.Task[RenderedSequence] | None = None
        self.rendered: set[int] = set()
        """Sequences whose render is in the store and stands (no re-render asked since)."""

    def _render(self, sequence: Sequence, start: MediaRef | None) -> asyncio.Task[RenderedSequence]:
        return asyncio.create_task(
            self.studio.bind(render_sequence)(self.studio, self.plan, sequence, start)
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
                self.rendered.add(index)
                studio.events.render_done(
                    f"sequence {index}", f"{rendered.seconds:.1f} s, seed {rendered.seed}"
                )
                studio.events.outcome(
                    f"sequence {index}: rendered {rendered.seconds:.1f} s with seed "
                    f"{rendered.seed} on {rendered.server} ({rendered.gpu_seconds:.1f} GPU s)"
                )
                if position + 1 < len(chain.sequences):
                    carry = await studio.bind(carry_frame)(studio, rendered)
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
                self.rendered.discard(index)
                change = verdict.rerender.describe(revised.seed, revised.frames - sequence.frames)
                studio.events.stage(
                    f"sequence {index}: {verdict.kind}; re-rendering with {change} "
                    f"(attempt {len(attempts) + 1})"
                )
                if self.ahead is not None:
                    await cancel_render(
                        self.ahead,
                        f"sequence {index} is rendered again, so the next one must start "
                        "from its new last frame",
                    )
                self.ahead, sequence = None, revised
            self.finishing.append(
                (index, asyncio.create_task(self._finish(sequence, rendered, tuple(attempts))))
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

    async def _finish(
        self, sequence: Sequence, rendered: RenderedSequence, attempts: tuple[Attempt, ...]
    ) -> SequenceResult:
        """Normalize the kept render (off the GPU-feeding path) and report it finished."""
        studio = self.studio
        finished = await studio.bind(normalize_sequence)(studio, rendered, attempts[-1].verdict)
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
            ahead = run.ahead
            # A render-ahead that already finished is in the store: the re-run has it.
            if ahead and ahead.done() and not ahead.cancelled() and ahead.exception() is None:
                run.rendered.add(ahead.result().index)
            await cancel_render(run.ahead, f"chain {chain.index} stopped")
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
    with studio.timer.stage("render"):
        outcomes = await asyncio.gather(
            *(
                render_chain(studio, plan, chain, start, policy, stops)
                for chain, start in zip(plan.chains, starts, strict=True)
            )
        )
    _raise_if_failed(plan, outcomes, studio, stops)
    rendered = sorted((r for o in outcomes for r in o.sequences), key=lambda r: r.sequence.index)
    return Footage(
        plan=with_sequences(plan, [r.sequence for r in rendered]), chains=tuple(outcomes)
    )


def _raise_if_failed(
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


async def cancel_render(
    task: asyncio.Task[RenderedSequence] | None, reason: str = "no longer needed"
) -> None:
    """Withdraw a render that is no longer wanted (the client interrupts it on the server).

    Its cache lock goes with it (tasks.runtime.locks), and Prefect records it as withdrawn,
    not as a crash (tasks.runtime.withdraw).
    """
    await withdraw(task, reason)
