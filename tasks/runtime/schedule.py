"""Model-aware GPU scheduling: which waiting render gets a free slot, and on which server.

A film uses three model families: `image` (keyframes), `ltx` (sequences) and `ace_step`
(score cues). Switching a GPU between them reloads tens of GB of weights (about a minute on
real hardware), so the order in which waiting renders get a slot decides how much GPU time
goes to loading. Whenever a server has a free slot, the policy picks, in this order:

1. Starving first. A render whose family has not been served anywhere for `patience_loads`
   of its load times, while it waited, goes next on any free server (its own family's
   renders first). This aging bound keeps affinity from holding a chain back for long.
2. Affinity. The oldest render of the family the server has loaded goes next: no load.
   Renders of other families are passed over, for at most the aging bound; on one GPU
   that only reorders work it must do anyway, minus the loads it saves.
3. Switch only when it pays. A render whose family is loaded on another server waits for
   that server when it would start there within two load times from now: here it would
   first wait one load, so waiting delays it by at most the load it saves, and the
   critical path never pays more than the saving. Otherwise the server loads a family:
   the earliest DAG stage first (keyframes unblock whole chains; cues come last), oldest
   first within it.
4. Otherwise the server stays idle until a render arrives, one ends, or one starves.

Projections use estimated load times and GPU seconds per output second for each family,
measured from this run's renders (the policy's figures stand in until the first
measurement). `aware=False` turns the policy off: a render takes whichever slot frees first
(the schedule-unaware DAG), and is still counted in the report.

The scheduler sees the renders of one process; a server's loaded family is what this
scheduler last ran on it (another client, or `POST /free`, can change that unseen).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from statistics import fmean
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from blocks.comfyui import ComfyUIServer
from tasks.errors import ReelflowError
from tasks.runtime.slots import GpuSlots, Slot

Family = Literal["image", "ltx", "ace_step"]
FAMILIES: tuple[Family, ...] = get_args(Family)
LoadReason = Literal["needed", "starving", "unaware"]


class ScheduleError(ReelflowError):
    """The scheduling policy was configured with values it cannot use."""


class SchedulePolicy(BaseModel):
    """How renders are ordered and placed; every figure is an estimate or a bound."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    aware: bool = Field(True, description="False: first free slot wins (schedule-unaware).")
    load_s: float = Field(60.0, gt=0, description="Assumed load time until one is measured.")
    gpu_s_per_output_s: float = Field(
        1.0, gt=0, description="Assumed GPU seconds per output second until measured."
    )
    patience_loads: float = Field(
        4.0, gt=0, description="Aging bound: a family waits at most this many of its loads."
    )
    stage_order: tuple[Family, ...] = Field(FAMILIES, description="Which family loads first.")
    tick_s: float = Field(
        0.25, gt=0, description="How often waiting renders re-check the aging bound."
    )


def policy_from_environment(environ: Mapping[str, str] | None = None) -> SchedulePolicy:
    """`REELFLOW_SCHEDULE`: `aware` (the default), `unaware`, or a SchedulePolicy as JSON.

    Read when a studio is built, so one process can render films under different policies.
    """
    value = (os.environ if environ is None else environ).get("REELFLOW_SCHEDULE", "aware")
    if value in ("aware", "unaware"):
        return SchedulePolicy(aware=value == "aware")
    try:
        return SchedulePolicy.model_validate_json(value)
    except ValidationError as bad:
        raise ScheduleError(
            f"REELFLOW_SCHEDULE={value!r}: use 'aware', 'unaware' or a policy as JSON "
            f"({bad.error_count()} problem(s): {bad.errors()[0]['msg']})"
        ) from bad


@dataclass(frozen=True)
class Request:
    """One render waiting for a GPU slot."""

    number: int
    family: Family
    output_s: float
    arrived: float


@dataclass
class ServerState:
    """A server as the scheduler sees it: its loaded family and estimated ends of its renders."""

    name: str
    slots: int
    loaded: Family | None = None
    running: dict[int, float] = field(default_factory=dict)

    @property
    def free(self) -> bool:
        return len(self.running) < self.slots

    def lanes(self, now: float) -> list[float]:
        """When each of its slots is expected to be free."""
        ends = sorted(max(now, end) for end in self.running.values())
        return [now] * (self.slots - len(ends)) + ends


@dataclass
class Estimates:
    """Load seconds and GPU seconds per output second of each family, measured as renders end.

    A render that loaded is kept as (busy, output seconds): its load is what is left after
    the family's work at the current rate, so later measurements of the rate correct it.
    """

    policy: SchedulePolicy
    loading_runs: dict[Family, list[tuple[float, float]]] = field(default_factory=dict)
    rates: dict[Family, list[float]] = field(default_factory=dict)
    _loads: dict[Family, float] = field(default_factory=dict)  # cleared by each observation

    def rate(self, family: Family) -> float:
        return _measured(self.rates, family, self.policy.gpu_s_per_output_s)

    def load_of(self, family: Family, busy_s: float, output_s: float) -> float:
        """The part of one loading render's time that was not the family's work."""
        return max(0.0, busy_s - self.rate(family) * output_s)

    def load_s(self, family: Family) -> float:
        if family not in self._loads:
            loads = {
                f: [self.load_of(f, busy, out) for busy, out in runs]
                for f, runs in self.loading_runs.items()
            }
            self._loads[family] = _measured(loads, family, self.policy.load_s)
        return self._loads[family]

    def work_s(self, family: Family, output_s: float, *, loading: bool) -> float:
        return self.rate(family) * output_s + (self.load_s(family) if loading else 0.0)

    def observe(self, family: Family, output_s: float, busy_s: float, *, loaded: bool) -> None:
        """Learn from one finished render."""
        self._loads.clear()
        if loaded:
            self.loading_runs.setdefault(family, []).append((busy_s, output_s))
        elif output_s > 0:
            self.rates.setdefault(family, []).append(busy_s / output_s)


def _measured(table: Mapping[Family, list[float]], family: Family, prior: float) -> float:
    """This family's mean; else the mean over the others (one GPU, similar costs); else prior."""
    if table.get(family):
        return fmean(table[family])
    others = [value for values in table.values() for value in values]
    return fmean(others) if others else prior


def patience_s(policy: SchedulePolicy, estimates: Estimates, family: Family) -> float:
    return policy.patience_loads * estimates.load_s(family)


def waited_s(request: Request, now: float, last_served: Mapping[Family, float]) -> float:
    """How long a render has waited while no render of its family got a slot."""
    return now - max(request.arrived, last_served.get(request.family, request.arrived))


def projected_start(
    request: Request,
    servers: Sequence[ServerState],
    waiting: Sequence[Request],
    now: float,
    estimates: Estimates,
) -> float | None:
    """When `request` would start on the servers that have its family loaded (None: none has).

    Renders of its family that arrived before it go first, each on the earliest free slot.
    """
    lanes = sorted(lane for s in servers if s.loaded == request.family for lane in s.lanes(now))
    if not lanes:
        return None
    ahead = [r for r in waiting if r.family == request.family and r.number < request.number]
    for other in ahead:
        lanes[0] += estimates.work_s(other.family, other.output_s, loading=False)
        lanes.sort()
    return lanes[0]


def pick(
    server: ServerState,
    servers: Sequence[ServerState],
    waiting: Sequence[Request],
    now: float,
    policy: SchedulePolicy,
    estimates: Estimates,
    last_served: Mapping[Family, float],
) -> tuple[Request, LoadReason | None] | None:
    """The render `server` should run next and why it loads (None: no load), or None: idle."""
    starving = [
        r
        for r in waiting
        if waited_s(r, now, last_served) >= patience_s(policy, estimates, r.family)
    ]
    if starving:
        chosen = min(starving, key=lambda r: (r.family != server.loaded, r.arrived, r.number))
        return chosen, None if chosen.family == server.loaded else "starving"
    same = [r for r in waiting if r.family == server.loaded]
    if same:
        return min(same, key=lambda r: (r.arrived, r.number)), None
    others = [s for s in servers if s.name != server.name]
    for request in sorted(
        waiting, key=lambda r: (policy.stage_order.index(r.family), r.arrived, r.number)
    ):
        elsewhere = projected_start(request, others, waiting, now, estimates)
        if elsewhere is None or elsewhere - now > 2 * estimates.load_s(request.family):
            return request, "needed"
    return None


def assign(
    servers: Sequence[ServerState],
    waiting: Sequence[Request],
    now: float,
    policy: SchedulePolicy,
    estimates: Estimates,
    last_served: Mapping[Family, float],
) -> list[tuple[Request, ServerState, LoadReason | None]]:
    """Grants for every free slot, applied to `servers` as they are made.

    Servers whose loaded family has renders waiting choose first, so that affinity grants
    are settled before any server decides whether a switch pays.
    """
    grants: list[tuple[Request, ServerState, LoadReason | None]] = []
    remaining = list(waiting)
    served = dict(last_served)
    passed: set[str] = set()
    while remaining:
        free = [s for s in servers if s.free and s.name not in passed]
        if not free:
            break
        families = {r.family for r in remaining}
        server = min(free, key=lambda s: s.loaded not in families)
        choice = pick(server, servers, remaining, now, policy, estimates, served)
        if choice is None:
            passed.add(server.name)
            continue
        request, reason = choice
        loading = server.loaded != request.family
        server.running[request.number] = now + estimates.work_s(
            request.family, request.output_s, loading=loading
        )
        server.loaded = request.family
        served[request.family] = now
        remaining.remove(request)
        grants.append((request, server, reason if loading else None))
    return grants


class ServerLoads(BaseModel):
    """One server's model loads in a film run, against the fewest it could have done."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    server: str
    prompts: int
    families: tuple[Family, ...] = Field(description="The families it ran.")
    load_order: tuple[Family, ...] = Field(description="The family of each load, in order.")
    loads: int
    switches: int = Field(description="Loads that replaced a loaded family.")
    minimum_loads: int = Field(description="One load per family the server ran.")
    load_seconds: float = Field(description="Measured render time beyond the estimated work.")
    reasons: dict[LoadReason, int]


class ScheduleReport(BaseModel):
    """Model loads per server for one film, and the minimum: one per family per server used."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    policy: Literal["aware", "unaware"]
    servers: tuple[ServerLoads, ...]
    loads: int
    minimum_loads: int
    load_seconds: float
    minimum_load_seconds: float
    notes: tuple[str, ...] = Field(description="Why a server loaded more than its minimum.")


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
