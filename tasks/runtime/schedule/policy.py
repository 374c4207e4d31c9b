"""The scheduling policy: pure decisions over waiting renders and servers (no I/O, no clock)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from statistics import fmean

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tasks.errors import ReelflowError
from tasks.schema.schedule import FAMILIES, Family, LoadReason


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
    observe: bool = Field(
        True,
        description="Ask the servers what they run (their queue and history), so renders of "
        "other runs and clients count; False: see only this run's renders.",
    )
    observe_s: float = Field(
        1.0, gt=0, description="How old the servers' answers may be when renders wait."
    )
    hold_s: float = Field(
        2.0,
        ge=0,
        description="How long a slot a chain's render frees waits for that chain's next "
        "render (its carry-forward frame is on its way) before a render of another family, "
        "which would unload the chain's model, may take the slot; 0: never.",
    )
    hold_share: float = Field(
        0.1,
        gt=0,
        le=1,
        description="Against a render of the same family with less of its chain behind it, "
        "a held slot waits at most this share of the estimated GPU time of the render it "
        "waits for: on a fast GPU an idle slot costs more than the order it keeps.",
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
    after_s: float = 0.0
    """Output seconds its chain renders after it: of one family's waiting renders, the one
    with the most work behind it goes first (longest chain first: the film ends sooner)."""
    chain: int | None = None
    """The chain it renders for, when its chain's next render follows it on the GPU: the
    slot it frees is held for that render (`Held`)."""
    expected_until: float | None = None
    """Set for a render announced before it asks (`GpuScheduler.expect`): a slot it wins is
    held for its chain until then (`Held`), not granted."""

    @property
    def behind_s(self) -> float:
        """Output seconds of its chain from it to the chain's end."""
        return self.output_s + self.after_s


@dataclass(frozen=True)
class Held:
    """A freed slot waiting, until `until`, for chain `chain`'s next render.

    The next render asks only once its start frame is carried (download, check, upload):
    a moment in which a render with less work behind it would otherwise take the slot and
    push the longer chain back by a whole render. A render of its `family` with more work
    behind it than `behind_s` (the chain's rest, the next render included) may still take it.
    A render of another family waits until `swap_until` (`SchedulePolicy.hold_s`, however
    fast the GPU): it would unload the model the chain's next render needs, and a load costs
    more than the moment a carry takes.
    """

    chain: int
    family: Family
    behind_s: float
    until: float
    swap_until: float

    def admits(self, request: Request, now: float) -> bool:
        if request.chain == self.chain:
            return True
        if request.family != self.family:
            return now >= self.swap_until
        return now >= self.until or request.behind_s > self.behind_s


@dataclass
class ServerState:
    """A server as the scheduler sees it: its loaded family and estimated ends of its renders.

    `running` are this scheduler's renders; `others` the slots that other runs or clients
    hold, as the server last reported. `changed` is when this scheduler last granted or
    released one of its slots: a report asked before then is older news. `held`: a slot
    just freed waits for its chain's next render.
    """

    name: str
    slots: int
    loaded: Family | None = None
    running: dict[int, float] = field(default_factory=dict)
    others: int = 0
    changed: float = float("-inf")
    held: Held | None = None

    @property
    def free(self) -> bool:
        return len(self.running) + self.others < self.slots

    def lanes(self, now: float) -> list[float]:
        """When each slot this scheduler can count on is expected to be free: now for a free
        slot, the estimated end for one of its own renders. Slots other runs hold are left
        out: a run keeps a server for as long as it has renders of that family, and no
        report shows how many it has left."""
        ends = sorted(max(now, end) for end in self.running.values())
        return [now] * max(0, self.slots - len(ends) - self.others) + ends


@dataclass(frozen=True)
class ServerReport:
    """What one server said about itself: prompts it holds, and the family on its GPU.

    `family` is the family of the last prompt queued on it, else of the one running, else of
    the newest it finished (None: it ran nothing with a model). `asked` is when the question
    was sent, on the scheduler's clock.
    """

    busy: int
    family: Family | None
    asked: float


def fold_report(state: ServerState, report: ServerReport) -> None:
    """Bring `state` up to what its server reported, unless this scheduler changed it since.

    Prompts beyond this scheduler's own hold the other slots; the reported family is
    believed while none of this scheduler's renders is on the server (then the GPU runs
    ours).
    """
    if report.asked < state.changed:
        return
    theirs = max(0, report.busy - len(state.running))
    state.others = min(theirs, max(0, state.slots - len(state.running)))
    if not state.running and report.family is not None:
        state.loaded = report.family


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


def _longest_chain_first(request: Request) -> tuple[float, float, int]:
    return -request.after_s, request.arrived, request.number


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
    if server.held is not None:
        held = server.held
        waiting = [r for r in waiting if held.admits(r, now)]
    starving = [
        r
        for r in waiting
        if waited_s(r, now, last_served) >= patience_s(policy, estimates, r.family)
    ]
    if starving:
        first = min(starving, key=lambda r: (r.family != server.loaded, r.arrived, r.number))
        chosen = min((r for r in starving if r.family == first.family), key=_longest_chain_first)
        return chosen, None if chosen.family == server.loaded else "starving"
    same = [r for r in waiting if r.family == server.loaded]
    if same:
        return min(same, key=_longest_chain_first), None
    others = [s for s in servers if s.name != server.name]
    for request in sorted(
        waiting, key=lambda r: (policy.stage_order.index(r.family), r.arrived, r.number)
    ):
        elsewhere = projected_start(request, others, waiting, now, estimates)
        if elsewhere is None or elsewhere - now > 2 * estimates.load_s(request.family):
            return request, "needed"
    return None


def eviction_cost(server: ServerState, servers: Sequence[ServerState]) -> int:
    """What loading another family on `server` throws away: nothing (0), a model another
    server also holds (1), or the only copy (2), which the next render of that family, in
    this run or another, would have to load again."""
    if server.loaded is None:
        return 0
    copies = sum(1 for s in servers if s.loaded == server.loaded)
    return 1 if copies > 1 else 2


def assign(
    servers: Sequence[ServerState],
    waiting: Sequence[Request],
    now: float,
    policy: SchedulePolicy,
    estimates: Estimates,
    last_served: Mapping[Family, float],
) -> list[tuple[Request, ServerState, LoadReason | None]]:
    """Grants for every free slot, applied to `servers` as they are made (an expected
    render's grant is a hold on its server, `Request.expected_until`).

    Servers whose loaded family has renders waiting choose first, so that affinity grants
    are settled before any server decides whether a switch pays; of the rest, the server
    whose model is least missed (`eviction_cost`) loads first.
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
        server = min(free, key=lambda s: (s.loaded not in families, eviction_cost(s, servers)))
        choice = pick(server, servers, remaining, now, policy, estimates, served)
        if choice is None:
            passed.add(server.name)
            continue
        request, reason = choice
        remaining.remove(request)
        if request.expected_until is not None and request.chain is not None:
            # Announced, not asking yet: the slot waits for it as for a carried frame.
            server.held = Held(
                request.chain,
                request.family,
                request.behind_s,
                until=request.expected_until,
                swap_until=request.arrived + policy.hold_s,
            )
            passed.add(server.name)
            grants.append((request, server, None))
            continue
        loading = server.loaded != request.family
        server.running[request.number] = now + estimates.work_s(
            request.family, request.output_s, loading=loading
        )
        server.loaded = request.family
        server.held = None
        served[request.family] = now
        grants.append((request, server, reason if loading else None))
    return grants
