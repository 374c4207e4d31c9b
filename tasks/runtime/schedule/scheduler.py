"""The GPU scheduler: grants slots to waiting renders by the policy, and counts model loads."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from blocks.comfyui import ComfyUIServer
from tasks.runtime.schedule.policy import Estimates, Request, SchedulePolicy, ServerState, assign
from tasks.runtime.slots import GpuSlots, Slot
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
        # Renders wait in one event loop today; the lock keeps the state whole if not.
        self._lock = threading.Lock()

    def _state(self, server: ComfyUIServer) -> ServerState:
        if server.url not in self._servers:
            self._servers[server.url] = (server, ServerState(server.url, server.gpu_slots))
        return self._servers[server.url][1]

    @asynccontextmanager
    async def hold(
        self, slots: GpuSlots, servers: Sequence[ComfyUIServer], family: Family, output_s: float
    ) -> AsyncIterator[Grant]:
        """Wait for this scheduler's grant, then hold that server's slot for the render."""
        if not self.policy.aware:
            async with slots.hold(servers) as slot:
                with self._lock:
                    state = self._state(slot.server)
                    previous, state.loaded = state.loaded, family
                reason: LoadReason | None = "unaware" if previous != family else None
                yield Grant(slot, family, output_s, reason, self)
            return
        number, (state, reason, previous) = await self._wait(servers, family, output_s)
        grant: Grant | None = None
        try:
            async with slots.hold([self._servers[state.name][0]]) as slot:
                grant = Grant(slot, family, output_s, reason, self)
                yield grant
        finally:
            with self._lock:
                self._release(state, number, previous, ran=grant is not None and grant.finished)
                self._dispatch()

    async def _wait(
        self, servers: Sequence[ComfyUIServer], family: Family, output_s: float
    ) -> tuple[int, tuple[ServerState, LoadReason | None, Family | None]]:
        wake = asyncio.Event()
        loop = asyncio.get_running_loop()
        with self._lock:
            for server in servers:
                self._state(server)
            request = Request(next(self._numbers), family, output_s, time.monotonic())
            self._waiting.append(request)
            self._wakes[request.number] = lambda: loop.call_soon_threadsafe(wake.set)
        try:
            while True:
                with self._lock:
                    self._dispatch()
                    granted = self._granted.pop(request.number, None)
                if granted is not None:
                    return request.number, granted
                # Grants and releases wake the waiter at once; the tick only serves aging.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), self.policy.tick_s)
                wake.clear()
        except BaseException:
            with self._lock:
                if request in self._waiting:
                    self._waiting.remove(request)
                unclaimed = self._granted.pop(request.number, None)
                if unclaimed is not None:
                    self._release(unclaimed[0], request.number, unclaimed[2], ran=False)
                    self._dispatch()
            raise
        finally:
            with self._lock:
                self._wakes.pop(request.number, None)

    @staticmethod
    def _release(state: ServerState, number: int, previous: Family | None, *, ran: bool) -> None:
        state.running.pop(number, None)
        # A render that never ran may not have loaded anything: believe the old model.
        if not ran and not state.running:
            state.loaded = previous

    def _dispatch(self) -> None:
        now = time.monotonic()
        states = [state for _, state in self._servers.values()]
        before = {state.name: state.loaded for state in states}
        grants = assign(states, self._waiting, now, self.policy, self.estimates, self._last_served)
        for request, state, reason in grants:
            self._waiting.remove(request)
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
                _server_loads(url, [r for r in runs if r.server == url], estimates)
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
                sum(estimates.load_s(f) for s in used for f in s.families), 3
            ),
            notes=tuple(_note(s) for s in used if s.loads > s.minimum_loads),
        )


def _server_loads(url: str, runs: Sequence[_Run], estimates: Estimates) -> ServerLoads:
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
        minimum_loads=len({run.family for run in runs}),
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
