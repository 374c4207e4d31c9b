"""The GPU scheduler: grants slots to waiting renders by the policy, and counts model loads."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace

from blocks.comfyui import ComfyUIServer
from tasks.runtime.schedule.policy import (
    Estimates,
    Held,
    Request,
    SchedulePolicy,
    ServerState,
    assign,
    fold_report,
)
from tasks.runtime.schedule.servers import ask_all
from tasks.runtime.slots import GpuSlots, Slot, SlotTaken
from tasks.schema.schedule import Family, LoadReason, ScheduleReport, ServerLoads


@dataclass(frozen=True)
class _Run:
    server: str
    family: Family
    reason: LoadReason | None
    busy_s: float
    output_s: float


@dataclass
class Grant:
    """A slot the scheduler granted; call `ran` with the measured GPU seconds when it ends."""

    slot: Slot
    family: Family
    output_s: float
    reason: LoadReason | None
    scheduler: GpuScheduler
    finished: bool = False

    def ran(self, busy_s: float) -> None:
        self.scheduler._record(self, busy_s)
        self.finished = True


_REASON_TEXT: dict[LoadReason, str] = {
    "starving": "for renders that waited past the aging bound",
    "needed": "for renders whose family came back after the server switched away",
    "unaware": "in whatever order slots freed (policy off)",
}


class GpuScheduler:
    """Grants GPU slots to waiting renders by `SchedulePolicy`, and counts model loads."""

    def __init__(self, policy: SchedulePolicy | None = None) -> None:
        self.policy = policy or SchedulePolicy()
        self.estimates = Estimates(self.policy)
        self._servers: dict[str, tuple[ComfyUIServer, ServerState]] = {}
        self._waiting: list[Request] = []
        self._wakes: dict[int, Callable[[], object]] = {}
        self._granted: dict[int, tuple[ServerState, LoadReason | None, Family | None]] = {}
        self._last_served: dict[Family, float] = {}
        self._runs: list[_Run] = []
        self._numbers = itertools.count()
        self._found: dict[str, Family | None] = {}
        self._shared: set[str] = set()  # servers another run or client was seen using
        self._observed_at = float("-inf")
        self._observing = False
        self._turn = random.randrange(1 << 16)
        self.observations = 0
        """How many times the servers' reports were folded in (for tests and benchmarks)."""
        # Renders wait in one event loop today; the lock keeps the state whole if not.
        self._lock = threading.Lock()

    def _state(self, server: ComfyUIServer) -> ServerState:
        if server.url not in self._servers:
            self._servers[server.url] = (server, ServerState(server.url, server.gpu_slots))
        return self._servers[server.url][1]

    @asynccontextmanager
    async def hold(
        self,
        slots: GpuSlots,
        servers: Sequence[ComfyUIServer],
        family: Family,
        output_s: float,
        after_s: float = 0.0,
        chain: int | None = None,
    ) -> AsyncIterator[Grant]:
        """Wait for this scheduler's grant, then hold that server's slot for the render.

        A slot that another run took first (the servers' reports lag) is given back to the
        policy, which grants again with that server counted busy. `chain`: the render's
        chain, whose next render the freed slot then waits for (`SchedulePolicy.hold_s`).
        """
        if not self.policy.aware:
            async with slots.hold(servers) as slot:
                with self._lock:
                    state = self._state(slot.server)
                    previous, state.loaded = state.loaded, family
                reason: LoadReason | None = "unaware" if previous != family else None
                yield Grant(slot, family, output_s, reason, self)
            return
        request = self._enqueue(servers, family, output_s, after_s, chain)
        grant: Grant | None = None
        granted: tuple[ServerState, LoadReason | None, Family | None] | None = None
        try:
            while True:
                granted = await self._wait(request, servers)
                state, reason, previous = granted
                held = AsyncExitStack()
                try:
                    slot = await held.enter_async_context(slots.claim(self._servers[state.name][0]))
                except SlotTaken:
                    with self._lock:
                        self._release(state, request.number, previous, ran=False)
                        state.others += 1  # until the next report says otherwise
                        self._shared.add(state.name)
                        self._waiting.append(request)
                    granted = None
                    continue
                async with held:
                    grant = Grant(slot, family, output_s, reason, self)
                    yield grant
                return
        finally:
            with self._lock:
                if request in self._waiting:
                    self._waiting.remove(request)
                unclaimed = self._granted.pop(request.number, None)
                settled = granted or unclaimed
                if settled is not None:
                    ran = grant is not None and grant.finished
                    self._release(settled[0], request.number, settled[2], ran=ran)
                    if ran:
                        self._hold_for_next(settled[0], request)
                self._wakes.pop(request.number, None)
                self._dispatch()

    async def own_slots(self, servers: Sequence[ComfyUIServer]) -> int:
        """Slots on the `servers` no other run or client has used during this run, by the
        servers' answers at most `observe_s` old (every slot when the policy observes none)."""
        with self._lock:
            for server in servers:
                self._state(server)
        await self._observe(servers)
        with self._lock:
            return sum(s.gpu_slots for s in servers if s.url not in self._shared)

    def _enqueue(
        self,
        servers: Sequence[ComfyUIServer],
        family: Family,
        output_s: float,
        after_s: float,
        chain: int | None,
    ) -> Request:
        with self._lock:
            for server in servers:
                self._state(server)
            request = Request(
                next(self._numbers), family, output_s, time.monotonic(), after_s, chain
            )
            if chain is not None:  # it asks now: whatever announced it is settled
                self._waiting = [r for r in self._waiting if not _announces(r, chain)]
            self._waiting.append(request)
            return request

    def expect(
        self,
        servers: Sequence[ComfyUIServer],
        family: Family,
        output_s: float,
        after_s: float,
        chain: int,
    ) -> None:
        """Announce chain `chain`'s next render, which will ask within `hold_s` (it is being
        prepared): ranked with the waiting renders, it holds the slot it wins for that long.

        When a gate opens every chain asks at once, in whatever order their tasks start: a
        render with little of its chain behind it would otherwise take a slot just before
        one with a long chain asks.
        """
        if not self.policy.aware or self.policy.hold_s <= 0:
            return
        with self._lock:
            for server in servers:
                self._state(server)
            now = time.monotonic()
            expected = Request(next(self._numbers), family, output_s, now, after_s, chain)
            until = now + self._hold_s(expected)
            self._waiting.append(replace(expected, expected_until=until))
            self._dispatch()

    def _hold_for_next(self, state: ServerState, request: Request) -> None:
        """After a chain's render, its slot waits a moment for the chain's next render."""
        if request.chain is None or request.after_s <= 0 or self.policy.hold_s <= 0:
            return
        now = time.monotonic()
        state.held = Held(
            request.chain,
            request.family,
            request.after_s,
            until=now + self._hold_s(request),
            swap_until=now + self.policy.hold_s,
        )

    def _hold_s(self, request: Request) -> float:
        """How long a slot waits for `request`'s chain (`hold_s`, `hold_share`)."""
        work_s = self.estimates.work_s(request.family, request.output_s, loading=False)
        return min(self.policy.hold_s, self.policy.hold_share * work_s)

    async def _wait(
        self, request: Request, servers: Sequence[ComfyUIServer]
    ) -> tuple[ServerState, LoadReason | None, Family | None]:
        wake = asyncio.Event()
        loop = asyncio.get_running_loop()
        with self._lock:
            self._wakes[request.number] = lambda: loop.call_soon_threadsafe(wake.set)
        while True:
            # A grant made by a release is taken at once: the carry path asks no server.
            with self._lock:
                granted = self._granted.pop(request.number, None)
            if granted is None:
                await self._observe(servers)
                with self._lock:
                    blind = self._observing and self._observed_at == float("-inf")
                if blind:  # the first answers are on their way: deciding without them is a guess
                    await asyncio.sleep(0.01)
                    continue
                with self._lock:
                    self._dispatch()
                    granted = self._granted.pop(request.number, None)
            if granted is not None:
                return granted
            # Grants and releases wake the waiter at once; the tick serves aging and reports.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), self.policy.tick_s)
            wake.clear()

    async def _observe(self, servers: Sequence[ComfyUIServer]) -> None:
        """Fold the servers' own reports into the policy's view, at most every `observe_s`."""
        with self._lock:
            stale = time.monotonic() - self._observed_at >= self.policy.observe_s
            if self._observing or not stale:
                return
            if not self.policy.observe:
                # Seeing only its own renders, a run forgets a slot it found taken and
                # claims it again.
                for _, state in self._servers.values():
                    state.others = 0
                self._observed_at = time.monotonic()
                return
            self._observing = True
        try:
            reports = await ask_all(servers, timeout_s=self.policy.observe_s)
        finally:
            with self._lock:
                self._observing = False
                self._observed_at = time.monotonic()
        with self._lock:
            for url, report in reports.items():
                state = self._servers[url][1]
                fold_report(state, report)
                if state.others:
                    self._shared.add(url)
                # What a server held before this run's first render there costs this run
                # no load: it is not part of this run's minimum.
                self._found.setdefault(url, state.loaded)
            self.observations += 1

    @staticmethod
    def _release(state: ServerState, number: int, previous: Family | None, *, ran: bool) -> None:
        state.running.pop(number, None)
        state.changed = time.monotonic()
        # A render that never ran may not have loaded anything: believe the old model.
        if not ran and not state.running:
            state.loaded = previous

    def _dispatch(self) -> None:
        now = time.monotonic()
        self._waiting = [r for r in self._waiting if (r.expected_until or now) >= now]
        states = [state for _, state in self._servers.values()]
        # Ties go to the first free server: each run starts its list elsewhere, so runs that
        # decide at the same moment on the same reports spread instead of colliding.
        turn = self._turn % len(states) if states else 0
        states = [*states[turn:], *states[:turn]]
        before = {state.name: state.loaded for state in states}
        grants = assign(states, self._waiting, now, self.policy, self.estimates, self._last_served)
        for request, state, reason in grants:
            self._waiting.remove(request)
            if request.expected_until is not None:
                continue  # a hold (`Held`): nobody asks for it yet
            state.changed = now
            self._last_served[request.family] = now
            self._granted[request.number] = (state, reason, before[state.name])
            before[state.name] = request.family
            self._wakes[request.number]()

    def _record(self, grant: Grant, busy_s: float) -> None:
        with self._lock:
            self.estimates.observe(
                grant.family, grant.output_s, busy_s, loaded=grant.reason is not None
            )
            self._runs.append(
                _Run(grant.slot.server.url, grant.family, grant.reason, busy_s, grant.output_s)
            )

    def report(self) -> ScheduleReport:
        """Loads per server so far, against one per family per server used."""
        with self._lock:
            runs, estimates = list(self._runs), self.estimates
            servers = [
                _server_loads(
                    url, [r for r in runs if r.server == url], estimates, self._found.get(url)
                )
                for url in self._servers
            ]
        used = [s for s in servers if s.prompts]
        return ScheduleReport(
            policy="aware" if self.policy.aware else "unaware",
            servers=tuple(used),
            loads=sum(s.loads for s in used),
            minimum_loads=sum(s.minimum_loads for s in used),
            load_seconds=round(sum(s.load_seconds for s in used), 3),
            minimum_load_seconds=round(
                sum(
                    estimates.load_s(f)
                    for s in used
                    for f in s.families
                    if f != self._found.get(s.server)
                ),
                3,
            ),
            notes=tuple(_note(s) for s in used if s.loads > s.minimum_loads),
        )


def _announces(request: Request, chain: int) -> bool:
    return request.expected_until is not None and request.chain == chain


def _server_loads(
    url: str, runs: Sequence[_Run], estimates: Estimates, found: Family | None
) -> ServerLoads:
    loads = [run for run in runs if run.reason is not None]
    reasons: dict[LoadReason, int] = {}
    for run in loads:
        assert run.reason is not None
        reasons[run.reason] = reasons.get(run.reason, 0) + 1
    return ServerLoads(
        server=url,
        prompts=len(runs),
        families=tuple(dict.fromkeys(run.family for run in runs)),
        load_order=tuple(run.family for run in loads),
        loads=len(loads),
        switches=max(0, len(loads) - 1),
        minimum_loads=len({run.family for run in runs} - {found}),
        load_seconds=round(
            sum(estimates.load_of(run.family, run.busy_s, run.output_s) for run in loads), 3
        ),
        reasons=reasons,
    )


def _note(server: ServerLoads) -> str:
    why = ", ".join(f"{n} {_REASON_TEXT[reason]}" for reason, n in server.reasons.items())
    return (
        f"{server.server} loaded {server.loads} times for {server.minimum_loads} "
        f"famil{'y' if server.minimum_loads == 1 else 'ies'}: {why}"
    )
