"""The director's gates, and the GPU time ahead of each: where a film run stops for a decision.

The film flow passes every gate point (a gate not asked for with the `gates` option passes
at once) and, at each, the ledger charges the GPU time spent since the one before:

- before any GPU work: the estimate of the whole film (rates learned on these servers);
- `cast`: keyframes exist, no sequence is rendered yet;
- `takes`: every sequence has its takes, before score and mux;
- `final`: the film is cut, nothing is delivered yet.

At a gate the material is published (files in the film folder, linked where they open from
anywhere, and run artifacts), the estimate of what remains is logged, and the run asks for a
`GateDecision`: from the terminal the CLI installed (`gate_answerer`), else by pausing the
Prefect run for the resume form (or suspending it: the worker is freed, and on resume the run
starts over; everything finished comes from the cache and each gate finds its answer again by
its key, `gate-<gate>-<round>`). A redo re-plans with the decided options and renders again:
only what changed costs GPU time.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from itertools import count
from pathlib import Path
from typing import TYPE_CHECKING

from prefect import get_run_logger
from prefect.context import FlowRunContext
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import apause_flow_run, asuspend_flow_run
from rich.text import Text

from flows.gate_forms import (
    GateDecision,
    GateRequest,
    GateStopped,
    decided_options,
    how_to_continue,
    parse_answer,
    problems_with,
)
from tasks.chains import render_chains
from tasks.cost import GpuLedger, Stage, cost_lines, load_rates, minutes, remaining_line, save_rates
from tasks.deliver.gate_material import (
    Material,
    cast_material,
    final_material,
    material_links,
    publish_gate,
    takes_material,
)
from tasks.deliver.names import film_folder
from tasks.deliver.takes import write_takes
from tasks.keyframe import make_keyframes
from tasks.mux import mux_film
from tasks.plan import plan_screenplay
from tasks.runtime.studio import Studio
from tasks.schema.film_plan import FilmPlan
from tasks.schema.options import Gate
from tasks.schema.outcomes import ChainStart, FilmFile, Footage, ScoreResult
from tasks.schema.record import CostEntry
from tasks.score import compose_score

if TYPE_CHECKING:
    from flows.console import RichSink

Answerer = Callable[[GateRequest, int], Awaitable[GateDecision]]
"""Asks a person (request, seconds to wait); raises TimeoutError when no answer came."""

gate_answerer: ContextVar[Answerer | None] = ContextVar("gate_answerer", default=None)
"""Who answers gates in this caller (the CLI: its terminal); None: the Prefect run's form."""


PAUSE_GRACE_S = 60
"""A pause's Prefect timeout runs this much past the gate's, so the gate ends it first."""


class NoOneToAsk(Exception):
    """A gate was reached with nobody to ask (no terminal, no Prefect run)."""


class Gates:
    """The gate points of one film run, and its GPU ledger."""

    def __init__(self, studio: Studio, plan: FilmPlan, ledger: GpuLedger) -> None:
        self.studio, self.plan, self.ledger = studio, plan, ledger
        self.keyframes: list[ChainStart] = []

    @classmethod
    async def open(cls, studio: Studio, plan: FilmPlan) -> Gates:
        """The gates of a run, and the GPU estimate of the whole film before any GPU work."""
        servers = ["embedded simulator"] if studio.animatic else [s.url for s in studio.servers]
        learned = await load_rates(studio.results, servers, plan.mode)
        keyframes = studio.options.render.keyframes == "generate"
        gates = cls(studio, plan, GpuLedger(plan, learned, keyframes=keyframes))
        remaining = gates.ledger.remaining(plan, ())
        studio.events.stage(f"{remaining_line(remaining, plan)}; {gates.ledger.rates_source()}")
        return gates

    @property
    def folder(self) -> Path:
        return film_folder(Path(self.studio.options.out), self.plan.title)

    def _charge(self, stage: Stage) -> None:
        stats = self.studio.stats
        self.ledger.charge(
            stage,
            stats.prompts,
            stats.gpu_seconds,
            score_prompts=stats.score_prompts,
            score_gpu_seconds=stats.score_gpu_seconds,
        )

    async def cast(
        self, plan: FilmPlan, keyframes: list[ChainStart]
    ) -> tuple[FilmPlan, list[ChainStart]]:
        """The cast gate: keyframes made, before any sequence renders."""
        self.plan, self.keyframes = plan, keyframes
        self._charge("keyframes")

        async def redo() -> None:
            self.keyframes = await make_keyframes(self.studio, self.plan)
            self._charge("keyframes")

        async def material() -> Material:
            return await cast_material(self.studio, self.plan, self.keyframes, self.folder)

        await self._gate("cast", material, redo, done=("keyframes",))
        return self.plan, self.keyframes

    async def takes(self, footage: Footage) -> Footage:
        """The takes gate: every sequence rendered in its takes, before score and mux.
        Every take is written into the film folder for the dailies page, gate or not."""
        self._charge("sequences")

        async def redo() -> None:
            nonlocal footage
            self.keyframes = await make_keyframes(self.studio, self.plan)
            self._charge("keyframes")
            footage = await render_chains(self.studio, self.plan, self.keyframes)
            self._charge("sequences")

        async def material() -> Material:
            return await takes_material(self.studio, footage.sequences, self.folder)

        await self._gate("takes", material, redo, done=("keyframes", "sequences"))
        await write_takes(self.studio, footage.sequences, self.folder)
        self.plan = footage.plan
        return footage

    async def final(
        self, footage: Footage, score: ScoreResult | None, film: FilmFile
    ) -> tuple[Footage, ScoreResult | None, FilmFile]:
        """The final gate: the cut made, nothing delivered. Then every GPU second is known:
        the rates learn from this run's renders."""
        self._charge("cues")

        async def redo() -> None:
            nonlocal footage, score, film
            studio = self.studio
            self.keyframes = await make_keyframes(studio, self.plan)
            self._charge("keyframes")
            footage = await render_chains(studio, self.plan, self.keyframes)
            self._charge("sequences")
            await write_takes(studio, footage.sequences, self.folder)
            score = await compose_score(studio, footage)
            self._charge("cues")
            film = await mux_film(studio, footage, score)

        async def material() -> Material:
            return await final_material(self.studio, film, self.folder, self.plan.title)

        await self._gate("final", material, redo, done=("keyframes", "sequences", "cues"))
        await self._learn()
        return footage, score, film

    def cost(self) -> CostEntry:
        """GPU time estimated beside spent, per stage, for the manifest and the end report."""
        return self.ledger.entry()

    async def _learn(self) -> None:
        for line in cost_lines(self.ledger.entry()):
            self.studio.events.outcome(f"GPU {line}")
        if sum(self.ledger.prompts.values()):
            await save_rates(self.studio.results, self.ledger.learn())

    def _redo_costs(self) -> str:
        each = self.ledger.per_render(self.plan)
        return (
            f"A redo costs about {minutes(each['keyframes'])} per keyframe and "
            f"{minutes(each['sequences'])} per take of a sequence, plus what follows it in its "
            "chain."
        )

    async def _gate(
        self,
        gate: Gate,
        material: Callable[[], Awaitable[Material]],
        redo: Callable[[], Awaitable[None]],
        done: tuple[Stage, ...],
    ) -> None:
        """Ask at `gate` (if the run asked for it) until the answer is to go on."""
        studio = self.studio
        if gate not in studio.options.render.gates:
            return
        problems: list[str] = []
        for round_ in count(1):
            made = await material()
            links, images = await material_links(studio, made, self.folder)
            request = GateRequest(
                gate=gate,
                round=round_,
                title=self.plan.title,
                summary=made.summary,
                material=links,
                estimate=remaining_line(self.ledger.remaining(self.plan, done), self.plan),
                redo_costs=self._redo_costs(),
                problems=problems,
                images=images,
                rows=made.rows,
            )
            await publish_gate(gate, request.markdown(), images, made.rows)
            studio.events.stage(f"{gate} gate: {request.estimate}; waiting for a decision")
            decision = await self._ask(request)
            problems = problems_with(decision, self.plan)
            if problems:
                studio.events.outcome(
                    f"{gate} gate: not applied: {' '.join(problems)}", warning=True
                )
                continue
            if decision.then == "stop":
                raise GateStopped(self._ended(gate, "was stopped there by the director"))
            if decision.redoes:
                studio.options = decided_options(studio.options, decision)
                self.plan = plan_screenplay(studio.screenplay, studio.options)
                studio.events.stage(f"{gate} gate: {_describe(decision)}")
                await redo()
            if decision.then == "go on":
                studio.events.outcome(f"{gate} gate: approved; going on")
                return

    async def _ask(self, request: GateRequest) -> GateDecision:
        options = self.studio.options.render
        answerer = gate_answerer.get()
        try:
            if answerer is not None:
                return await answerer(request, options.gate_timeout)
            return await ask_in_prefect(request, options.gate_wait, options.gate_timeout)
        except TimeoutError:
            reason = f"had no answer within {options.gate_timeout} s"
        except NoOneToAsk as nobody:
            reason = f"needs an answer, and {nobody}"
        message = self._ended(request.gate, reason, request)
        if answerer is None and FlowRunContext.get() is not None:  # the run's page says why
            get_run_logger().error(message)
        raise GateStopped(message)

    def _ended(self, gate: Gate, reason: str, request: GateRequest | None = None) -> str:
        studio = self.studio
        look = ""
        if request is not None and request.material:
            look = "Look at: " + "; ".join(f"{label} {where}" for label, where in request.material)
            look += "\n"
        return (
            f"The {gate} gate {reason}: the run ends here. Everything finished is kept in "
            f"{studio.store.location}.\n{look}"
            + how_to_continue(studio.screenplay, studio.options, gate)
        )


def _describe(decision: GateDecision) -> str:
    parts = [f"re-rolling keyframe {n}" for n in decision.redo_keyframes]
    parts += [f"re-rolling sequence {n}" for n in decision.redo_sequences]
    parts += [
        f"picking take {p.split('=')[1]} of sequence {p.split('=')[0]}" for p in decision.pick
    ]
    return ", ".join(parts)


async def ask_in_prefect(request: GateRequest, wait: str, timeout: int) -> GateDecision:
    """Pause (or suspend) the Prefect run until its resume form is answered."""
    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        raise NoOneToAsk("this is not a Prefect flow run whose form a person could answer")
    form = GateDecision.with_initial_data(description=request.markdown())
    key = f"gate-{request.gate}-{request.round}"
    run = context.flow_run
    if wait == "suspend" and (run.deployment_id is None or run.parent_task_run_id is not None):
        get_run_logger().warning(
            "gate_wait=suspend needs a deployment run of its own (a suspended run is started "
            "again by a worker); this gate pauses instead"
        )
        wait = "pause"
    if wait == "suspend":  # the process ends here; Prefect runs the flow again on resume
        answer = await asuspend_flow_run(wait_for_input=form, timeout=timeout, key=key)
        return GateDecision.model_validate(answer.model_dump())
    try:
        # We stop waiting before Prefect's own pause expires: an expired pause can only end
        # as Prefect's "paused and never resumed", while this run ends with our explanation.
        async with asyncio.timeout(timeout):
            answer = await apause_flow_run(
                wait_for_input=form,
                timeout=timeout + PAUSE_GRACE_S,
                poll_interval=min(2, timeout),
                key=key,
            )
    except FlowPauseTimeout as late:
        raise TimeoutError(str(late)) from late
    return GateDecision.model_validate(answer.model_dump())


def terminal_answerer(sink: RichSink) -> Answerer:
    """Gates asked on the terminal: the material and estimate printed, one line read."""

    async def ask(request: GateRequest, timeout: int) -> GateDecision:
        sink.progress.stop()  # the live bars would draw over the question
        try:
            sink.console.print(Text(request.text()))
            while True:
                line = await _read_line(
                    "Enter: go on · 'keyframe 1', 'sequence 2', 'pick 2=1' (comma-separated): "
                    "redo and look again · 'stop': end here > ",
                    timeout,
                )
                try:
                    return parse_answer(line)
                except ValueError as unreadable:
                    sink.console.print(Text(str(unreadable), style="red"))
        finally:
            sink.progress.start()

    return ask


async def no_terminal(request: GateRequest, timeout: int) -> GateDecision:
    """The CLI without a terminal: nobody can answer, so the gate ends the run at once."""
    raise NoOneToAsk("this run has no terminal to ask on (standard input is not a terminal)")


async def _read_line(prompt: str, timeout: int) -> str:
    """One line from standard input, or TimeoutError. The reader is a daemon thread: a run
    that ends on the timeout does not wait for a line that never comes."""
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[str] = loop.create_future()

    def deliver(line: str) -> None:
        if not answer.done():
            answer.set_result(line)

    def read() -> None:
        try:
            line = input(prompt)
        except EOFError:  # the terminal closed: nobody will answer
            line = "stop"
        loop.call_soon_threadsafe(deliver, line)

    threading.Thread(target=read, name="gate-answer", daemon=True).start()
    return await asyncio.wait_for(answer, timeout)
