"""A studio: several runs sharing GPU servers. Model-aware routing across runs (each run's
scheduler asks the servers what they run), GPU slot claims, and films started as deployment
runs on a real Prefect server with two workers, three simulators and an S3 store."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from blocks.comfyui import ComfyUIServer
from flows.run import build_studio
from sim.embedded import RunningSimulator, start_simulator
from sim.settings import ModelLoadSeconds, SimSettings
from tasks.runtime.schedule.policy import SchedulePolicy
from tasks.runtime.schedule.scheduler import GpuScheduler
from tasks.runtime.slots import FileLockSlots, PrefectSlots, SlotTaken
from tasks.runtime.store import local_storage
from tasks.runtime.studio import Studio, run_on_gpu
from tasks.schema.schedule import Family
from tests.film_helpers import cue_of, keyframe_of, sim_stats
from tests.fleet_figures import describe, fleet_figure
from tests.fleet_helpers import fleet, flow_run_processes, kill_groups, workers_of, write_film
from tests.prefect_server import REPO

LOADING = SimSettings(
    gpu_seconds_per_output_second=0.1,
    model_load_seconds=ModelLoadSeconds(image=0.3, ltx=0.3, ace_step=0.3),
)


@pytest.fixture
def two_sims(tmp_path: Path) -> Iterator[list[RunningSimulator]]:
    with ExitStack() as stack:
        yield [
            stack.enter_context(start_simulator(LOADING, workdir=tmp_path / f"sim{n}"))
            for n in range(2)
        ]


async def a_run(root: Path, urls: list[str], policy: SchedulePolicy | None = None) -> Studio:
    """One film run's studio on `urls`; runs built on the same `root` share its slot locks."""
    studio = await build_studio(
        [ComfyUIServer(url=url) for url in urls],
        local_storage(root / "store"),
        root / f"scratch-{time.monotonic_ns()}",
        "fast",
    )
    studio.scheduler = GpuScheduler(policy or SchedulePolicy())
    return studio


def prompt_of(studio: Studio, family: Family, n: int, seconds: float = 2.0) -> dict[str, Any]:
    if family == "image":
        return keyframe_of(studio, n, size=64)
    return cue_of(studio, n, seconds)


async def render(studio: Studio, family: Family, n: int) -> str:
    """One render through the scheduler and slots, as a stage does; the server it ran on."""
    output_s = 1.0 if family == "image" else 2.0
    result = await run_on_gpu(
        studio,
        prompt_of(studio, family, n),
        uploads=[],
        label=f"{family}-{n}",
        family=family,
        output_s=output_s,
    )
    return result.server


def families_run(url: str) -> list[str]:
    runs = sorted(sim_stats(url)["executions"], key=lambda e: e["start"])
    return [e["family"] for e in runs]


@pytest.mark.usefixtures("prefect_api")
def test_a_run_renders_each_family_where_another_run_left_it_loaded(
    tmp_path: Path, two_sims: list[RunningSimulator]
) -> None:
    music, pictures = (sim.url for sim in two_sims)

    async def go() -> GpuScheduler:
        # Earlier runs, each on one server: a cue on the first, a keyframe on the second.
        await render(await a_run(tmp_path, [music]), "ace_step", 100)
        await render(await a_run(tmp_path, [pictures]), "image", 100)
        # A new run on both servers knows nothing of them but what the servers say.
        studio = await a_run(tmp_path, [pictures, music])
        work = [("image", n) for n in range(3)] + [("ace_step", n) for n in range(3)]
        await asyncio.gather(*(render(studio, family, n) for family, n in work))  # type: ignore[arg-type]
        return studio.scheduler

    scheduler = asyncio.run(go())
    assert families_run(music) == ["ace_step"] * 4
    assert families_run(pictures) == ["image"] * 4
    assert sim_stats(music)["model_loads"] == {"ace_step": 1}
    assert sim_stats(pictures)["model_loads"] == {"image": 1}
    report = scheduler.report()
    assert (report.loads, report.minimum_loads) == (0, 0)
    assert scheduler.observations >= 1


@pytest.mark.usefixtures("prefect_api")
def test_a_render_goes_to_the_idle_server_not_behind_another_clients_prompt(
    tmp_path: Path, two_sims: list[RunningSimulator]
) -> None:
    busy, idle = (sim.url for sim in two_sims)

    async def go() -> tuple[str, float]:
        studio = await a_run(tmp_path, [busy, idle])
        # Another client (no reelflow slots) queues a 30 s cue: 3 s on this GPU.
        async with ComfyUIServer(url=busy).client() as client:
            await client.submit(prompt_of(studio, "ace_step", 7, seconds=30.0))
        while not httpx.get(f"{busy}/queue", timeout=5).json()["queue_running"]:
            await asyncio.sleep(0.02)
        began = time.monotonic()
        server = await render(studio, "image", 1)
        return server, time.monotonic() - began

    server, took = asyncio.run(go())
    assert server == idle
    assert took < 2.0
    assert families_run(idle) == ["image"]


@pytest.mark.usefixtures("prefect_api")
def test_a_slot_another_run_claimed_first_sends_the_render_to_the_other_server(
    tmp_path: Path, two_sims: list[RunningSimulator]
) -> None:
    warm, fresh = (sim.url for sim in two_sims)
    quick = SchedulePolicy(load_s=0.1, gpu_s_per_output_s=0.1)

    async def go() -> str:
        await render(await a_run(tmp_path, [warm]), "image", 0)
        other = await a_run(tmp_path, [warm])
        studio = await a_run(tmp_path, [warm, fresh], quick)
        # Another run holds the warm server's slot but has not submitted yet: the server
        # looks idle and holds the model, so the policy picks it and the claim finds it taken.
        assert isinstance(other.slots, FileLockSlots)
        async with other.slots.claim(other.servers[0]):
            return await render(studio, "image", 1)

    assert asyncio.run(go()) == fresh
    assert families_run(fresh) == ["image"]


@pytest.mark.usefixtures("prefect_api")
def test_a_prefect_slot_claim_is_refused_at_once_while_another_holds_it() -> None:
    server = ComfyUIServer(url="http://gpu-box-9:8188")
    slots = PrefectSlots()

    async def go() -> float:
        await slots.ensure_limits([server])
        try:
            async with slots.claim(server):
                began = time.monotonic()
                with pytest.raises(SlotTaken):
                    async with slots.claim(server):
                        pass
                refused_in = time.monotonic() - began
            async with slots.claim(server) as again:
                assert again.server == server
            return refused_in
        finally:
            await slots.remove_limits([server])

    assert asyncio.run(go()) < 5.0


# --- a studio: a Prefect server, two workers, three GPUs, a bucket ---------------------------

FLEET_SIMS = SimSettings(
    gpu_seconds_per_output_second=0.5,
    model_load_seconds=ModelLoadSeconds(image=0.5, ltx=0.5, ace_step=0.5),
)


def operator_schedule(settings: SimSettings) -> str:
    """`REELFLOW_SCHEDULE` as an operator sets it on the workers: the GPUs' own figures."""
    return SchedulePolicy(
        load_s=settings.model_load_seconds.ltx,
        gpu_s_per_output_s=settings.gpu_seconds_per_output_second,
    ).model_dump_json()


def test_three_films_started_together_on_two_workers_render_every_prompt_once_a_gpu_each(
    tmp_path: Path,
) -> None:
    films = [
        write_film(tmp_path / "screenplays", f"Film {name}", chains=2, shots=2, seconds=2.0)
        for name in "ABC"
    ]
    with fleet(tmp_path, sims=3, settings=FLEET_SIMS) as studio:
        for name in ("gpu-box-1", "gpu-box-2"):
            studio.start_worker(name, limit=2, REELFLOW_SCHEDULE=operator_schedule(FLEET_SIMS))
        ids = studio.start_films(films)
        runs = studio.wait_final(ids, timeout=540)
        failed = [
            f"{run.name}: {run.state.message if run.state else 'no state'}"
            for run in runs
            if not run.state or not run.state.is_completed()
        ]
        assert not failed, f"{failed}\n{studio.server.log_tail()}"
        figure = fleet_figure(studio, runs, films, FLEET_SIMS)
        workers = workers_of(studio.server.api_url, ids)
    print("\nFLEET " + "\nFLEET ".join(describe(figure)))
    # Every planned render ran exactly once, across the three servers.
    assert figure.planned_renders == 18
    assert figure.prompts == figure.planned_renders and figure.rerendered == 0
    assert all(server.prompts > 0 for server in figure.servers)
    # The slots held: no server ever had a prompt waiting behind another, nor two at once.
    assert [(s.queued_behind, s.overlapping) for s in figure.servers] == [(0, 0)] * 3
    # Both GPU boxes' workers took films.
    assert set(workers) == set(ids)
    assert set().union(*workers.values()) == {"gpu-box-1", "gpu-box-2"}
    assert figure.makespan_s >= figure.lower_bound_s > 0


# --- a GPU box dies mid-render --------------------------------------------------------------

AUTOMATIONS = REPO / "deployments" / "automations.yaml"
CRASH_SIMS = SimSettings(
    gpu_seconds_per_output_second=1.0,
    model_load_seconds=ModelLoadSeconds(image=0.5, ltx=0.5, ace_step=0.5),
)
LEASE_S = 60.0


def automations_with_silence(folder: Path, silence_s: int) -> Path:
    """The studio's automations, with a shorter heartbeat silence (the test's patience)."""
    document = yaml.safe_load(AUTOMATIONS.read_text())
    for automation in document["automations"]:
        if automation["trigger"]["posture"] == "Proactive":
            automation["trigger"]["within"] = silence_s
    path = folder / "automations.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def gpu_in_use(urls: list[str]) -> str | None:
    """The server whose GPU is running a prompt right now, if any."""
    for url in urls:
        if httpx.get(f"{url}/queue", timeout=5).json()["queue_running"]:
            return url
    return None


class SlotWatch(threading.Thread):
    """Polls one server's Prefect limit; `returned` is the first time its slot was free or
    a prompt started on its GPU again (only a slot holder submits), after `since`."""

    def __init__(self, api_url: str, url: str, since: float, until_s: float = 150) -> None:
        super().__init__(daemon=True)
        self.api_url, self.url, self.since, self.until_s = api_url, url, since, until_s
        self.name_ = ComfyUIServer(url=url).concurrency_limit_name
        self.free_at: float | None = None

    def run(self) -> None:
        while self.free_at is None and time.time() - self.since < self.until_s:
            limit = httpx.get(f"{self.api_url}/v2/concurrency_limits/{self.name_}", timeout=10)
            if limit.json()["active_slots"] == 0:
                self.free_at = time.time()
            time.sleep(0.25)

    def returned_after(self, orphan_end: float) -> float | None:
        started = [e["start"] for e in sim_stats(self.url)["executions"] if e["start"] > orphan_end]
        moments = [t for t in [self.free_at, min(started, default=None)] if t is not None]
        return min(moments) - self.since if moments else None


def flow_run_states(api_url: str, run_id: str) -> list[str]:
    answer = httpx.get(f"{api_url}/flow_run_states/", params={"flow_run_id": run_id}, timeout=30)
    answer.raise_for_status()
    return [state["type"] for state in answer.json()]


def test_a_film_whose_gpu_box_dies_mid_render_is_crashed_rescheduled_and_finished_elsewhere(
    tmp_path: Path,
) -> None:
    film = write_film(tmp_path / "screenplays", "Film K", chains=1, shots=4, seconds=2.0)
    with fleet(tmp_path, sims=3, settings=CRASH_SIMS) as studio:
        api = studio.server.api_url
        studio.server.cli(
            "automation", "create", "--from-file", str(automations_with_silence(tmp_path, 60))
        )
        for name in ("gpu-box-1", "gpu-box-2"):
            studio.start_worker(
                name,
                limit=1,
                PREFECT_FLOWS_HEARTBEAT_FREQUENCY="30",
                REELFLOW_SCHEDULE=operator_schedule(CRASH_SIMS),
            )
        (run_id,) = studio.start_films([film])
        deadline = time.monotonic() + 300
        # Mid-render: the keyframe and the first sequence done, the second on a GPU.
        while True:
            assert time.monotonic() < deadline, studio.server.log_tail()
            executed = sum(sim_stats(url)["prompts_executed"] for url in studio.urls)
            busy = gpu_in_use(studio.urls)
            if executed >= 3 and busy is not None:
                break
            time.sleep(0.1)
        (victim,) = workers_of(api, [run_id])[run_id]
        killed_at = time.time()
        kill_groups([studio.workers[victim].pid, *flow_run_processes(api, run_id)])
        watch = SlotWatch(api, busy, since=killed_at)
        watch.start()
        (crashed,) = studio.wait_final([run_id], timeout=240)
        while crashed.state_name != "Completed" and time.monotonic() < deadline + 300:
            time.sleep(1)
            (crashed,) = studio.read_runs([run_id])
        watch.join()
        states = flow_run_states(api, run_id)
        orphan = max(e["end"] for e in sim_stats(busy)["executions"] if e["start"] < killed_at)
        returned = watch.returned_after(orphan)
        figure = fleet_figure(studio, [crashed], [film], CRASH_SIMS)
        boxes = workers_of(api, [run_id])[run_id]
    print(
        f"\nCRASH killed {victim} at a render on {busy}; slot back after "
        f"{returned if returned is None else round(returned, 1)} s (lease {LEASE_S:.0f} s); "
        f"states {states}; GPU re-work {figure.rerendered} prompt(s), "
        f"{figure.rerendered_s:.1f} GPU s"
    )
    assert crashed.state_name == "Completed", states
    assert "CRASHED" in states and states.count("RUNNING") >= 2
    assert boxes == {"gpu-box-1", "gpu-box-2"}  # the other box finished it
    assert returned is not None and returned <= LEASE_S + 20
    # Renders finished before the crash came from the cache; at most the one on the GPU
    # when the box died ran again (its result was lost with the client).
    assert figure.planned_renders == 5
    assert figure.rerendered <= 1 and figure.prompts == figure.planned_renders + figure.rerendered
