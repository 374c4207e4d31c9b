"""Model-aware GPU scheduling: the policy's choices, and model loads on real simulators."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blocks.comfyui import ComfyUIServer
from flows.run import build_studio
from sim.embedded import RunningSimulator, start_simulator
from sim.settings import ModelLoadSeconds, SimSettings
from tasks.runtime.schedule.policy import (
    Estimates,
    Held,
    Request,
    ScheduleError,
    SchedulePolicy,
    ServerReport,
    ServerState,
    assign,
    fold_report,
    policy_from_environment,
)
from tasks.runtime.schedule.scheduler import GpuScheduler
from tasks.runtime.schedule.servers import family_of, report_from
from tasks.runtime.store import local_storage
from tasks.runtime.studio import Studio, run_on_gpu
from tasks.schema.schedule import Family, ScheduleReport
from tests.film_helpers import (
    cue_of,
    keyframe_of,
    render,
    sim_stats,
    three_chain_scenes,
    write_screenplay,
)
from tests.sim_helpers import http_steps

POLICY = SchedulePolicy(load_s=2.0, gpu_s_per_output_s=0.5)


def request(number: int, family: Family, arrived: float = 0.0, output_s: float = 2.0) -> Request:
    return Request(number=number, family=family, output_s=output_s, arrived=arrived)


def grants(
    servers: list[ServerState], waiting: list[Request], now: float = 0.0, **served: float
) -> list[tuple[int, str]]:
    made = assign(servers, waiting, now, POLICY, Estimates(POLICY), served)  # type: ignore[arg-type]
    return [(r.number, s.name) for r, s, _ in made]


def test_a_free_server_keeps_to_its_loaded_model_before_older_renders_of_another() -> None:
    server = ServerState("a", 1, loaded="image")
    assert grants([server], [request(0, "ltx"), request(1, "image", arrived=0.5)], now=1) == [
        (1, "a")
    ]


def test_of_one_family_the_render_with_the_longest_chain_behind_it_goes_first() -> None:
    servers = [ServerState("a", 1, loaded="ltx"), ServerState("b", 1, loaded="ltx")]
    short = [request(n, "ltx", arrived=n * 0.1) for n in range(3)]  # the last of their chains
    long = Request(number=3, family="ltx", output_s=2.0, arrived=0.5, after_s=10.0)
    middle = Request(number=4, family="ltx", output_s=2.0, arrived=0.6, after_s=4.0)
    # Two slots: the chains with 10 s and 4 s still to render start now, the short ones wait.
    assert grants(servers, [*short, long, middle], now=1.0) == [(3, "a"), (4, "b")]
    # Among equals, first come first served.
    assert grants([ServerState("a", 1, loaded="ltx")], short, now=1.0) == [(0, "a")]


def _sequence(number: int, chain: int, after_s: float, arrived: float = 0.0) -> Request:
    return Request(number, "ltx", output_s=5.0, arrived=arrived, after_s=after_s, chain=chain)


def _held_for_chain_0() -> ServerState:
    """A server whose slot chain 0's render just freed; 10 s of that chain still to render."""
    return ServerState(
        "a",
        1,
        loaded="ltx",
        held=Held(chain=0, family="ltx", behind_s=10.0, until=0.5, swap_until=2.0),
    )


def test_a_slot_a_chain_freed_waits_for_its_next_render_not_a_shorter_chains() -> None:
    """Chain 0's next render asks a moment after its last one ended (the carried frame); the
    last render of chain 1 waits meanwhile, and so does a score cue."""
    shorter = _sequence(0, chain=1, after_s=0.0)
    cue = Request(1, "ace_step", output_s=30.0, arrived=0.0)
    assert grants([_held_for_chain_0()], [shorter, cue], now=0.1) == []
    held = _held_for_chain_0()
    following = _sequence(2, chain=0, after_s=5.0, arrived=0.2)
    assert grants([held], [shorter, cue, following], now=0.2) == [(2, "a")]
    assert held.held is None  # taken: the next free slot is anyone's


def test_an_announced_render_holds_the_slot_it_wins_until_it_asks() -> None:
    servers = [ServerState("a", 1, loaded="ltx"), ServerState("b", 1, loaded="ltx")]
    announced = Request(0, "ltx", 5.0, arrived=0.0, after_s=10.0, chain=0, expected_until=2.0)
    shorter = [_sequence(n, chain=n, after_s=0.0) for n in (1, 2)]
    # Chain 0 (15 s to render) wins server a, which waits for it; b runs a shorter chain.
    assert grants(servers, [announced, *shorter], now=0.1) == [(0, "a"), (1, "b")]
    assert servers[0].held is not None and servers[0].held.chain == 0
    assert not servers[0].running


def test_a_held_slot_goes_to_a_longer_chain_at_once_and_to_anyone_once_the_wait_is_over() -> None:
    longer = _sequence(0, chain=2, after_s=10.0)  # 15 s of its chain still to render
    assert grants([_held_for_chain_0()], [longer], now=0.1) == [(0, "a")]
    shorter = _sequence(1, chain=1, after_s=0.0)
    assert grants([_held_for_chain_0()], [shorter], now=0.5) == [(1, "a")]


def test_a_held_slot_refuses_another_family_longer_than_a_shorter_chain() -> None:
    """A cue on the held slot would unload the model the chain's next render needs: that
    costs a load, where a shorter chain's render costs the longer chain only its order."""
    cue = Request(0, "ace_step", output_s=30.0, arrived=0.0)
    assert grants([_held_for_chain_0()], [cue], now=1.0) == []
    assert grants([_held_for_chain_0()], [cue], now=2.0) == [(0, "a")]


def test_a_render_waiting_past_the_aging_bound_gets_the_next_slot_despite_the_load() -> None:
    server = ServerState("a", 1, loaded="image")
    waiting = [request(0, "ltx"), request(1, "image", arrived=0.5)]
    # patience: 4 loads of 2 s; the ltx render has waited 9 s and ltx was never served
    assert grants([server], waiting, now=9.0, image=8.9) == [(0, "a")]
    assert grants([ServerState("a", 1, loaded="image")], waiting, now=9.0, ltx=6.0) == [(1, "a")]


def test_of_a_family_past_the_aging_bound_its_longest_chain_still_goes_first() -> None:
    """The aging bound picks the family; which of its renders starts is the usual order."""
    first_come = request(0, "ltx")  # the last render of its chain
    longer = Request(1, "ltx", output_s=1.0, arrived=0.5, after_s=10.0)
    server = ServerState("a", 1, loaded="image")
    assert grants([server], [first_come, longer], now=9.0, image=8.9) == [(1, "a")]


def test_a_server_that_must_load_loads_keyframes_before_sequences_and_cues() -> None:
    server = ServerState("a", 1)
    waiting = [request(0, "ace_step"), request(1, "ltx"), request(2, "image", arrived=0.1)]
    assert grants([server], waiting, now=0.2) == [(2, "a")]


def test_a_render_waits_for_the_server_holding_its_model_when_that_is_sooner_than_a_load() -> None:
    busy = ServerState("a", 1, loaded="ltx", running={99: 3.0})
    idle = ServerState("b", 1, loaded="image")
    assert grants([busy, idle], [request(0, "ltx")], now=0.0) == []
    assert idle.loaded == "image"


def test_a_render_loads_on_an_idle_server_when_waiting_would_cost_more_than_the_load() -> None:
    busy = ServerState("a", 1, loaded="ltx", running={99: 4.5})
    idle = ServerState("b", 1, loaded="image")
    assert grants([busy, idle], [request(0, "ltx")], now=0.0) == [(0, "b")]
    assert idle.loaded == "ltx" and 0 in idle.running


def test_a_load_goes_to_an_empty_gpu_or_a_spare_copy_before_the_only_copy_of_a_model() -> None:
    only_image, empty = ServerState("a", 1, loaded="image"), ServerState("b", 1)
    assert grants([only_image, empty], [request(0, "ltx")]) == [(0, "b")]
    spare = [ServerState("a", 1, loaded="image"), *(ServerState(n, 1, loaded="ltx") for n in "bc")]
    assert grants(spare, [request(1, "ace_step")]) in ([(1, "b")], [(1, "c")])


def test_renders_queued_ahead_count_when_deciding_whether_to_wait() -> None:
    busy = ServerState("a", 1, loaded="ltx", running={99: 1.5})
    idle = ServerState("b", 1, loaded="image")
    # each 2 s ltx render is 1 s of GPU: the fourth would start at 4.5 s, past 2 loads of 2 s
    waiting = [request(n, "ltx", arrived=n / 10) for n in range(4)]
    assert grants([busy, idle], waiting, now=0.0) == [(3, "b")]


def test_the_policy_is_chosen_by_environment_and_a_typo_is_refused() -> None:
    assert policy_from_environment({}).aware
    assert not policy_from_environment({"REELFLOW_SCHEDULE": "unaware"}).aware
    tuned = policy_from_environment({"REELFLOW_SCHEDULE": '{"load_s": 2, "patience_loads": 8}'})
    assert (tuned.aware, tuned.load_s, tuned.patience_loads) == (True, 2.0, 8.0)
    with pytest.raises(ScheduleError, match="REELFLOW_SCHEDULE='off'"):
        policy_from_environment({"REELFLOW_SCHEDULE": "off"})
    with pytest.raises(ScheduleError, match="greater than 0"):
        policy_from_environment({"REELFLOW_SCHEDULE": '{"load_s": -1}'})


def one_server_loads(
    arrivals: list[tuple[Family, float]], policy: SchedulePolicy = POLICY
) -> list[Family]:
    """Serve `arrivals` on one server through `assign`; the family of every load, in order."""
    server, estimates = ServerState("a", 1), Estimates(policy)
    waiting = [request(n, family, at) for n, (family, at) in enumerate(arrivals)]
    pending = sorted(waiting, key=lambda r: r.arrived)
    queue: list[Request] = []
    served: dict[Family, float] = {}
    loads: list[Family] = []
    now = 0.0
    while pending or queue:
        queue += [r for r in pending if r.arrived <= now]
        pending = [r for r in pending if r.arrived > now]
        server.running.clear()
        made = assign([server], queue, now, policy, estimates, served)
        if not made:
            now = pending[0].arrived
            continue
        chosen, _, reason = made[0]
        queue.remove(chosen)
        served[chosen.family] = now
        loads += [chosen.family] if reason else []
        now = server.running[chosen.number]
    return loads


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["image", "ltx", "ace_step"]), st.floats(0, 1)),
        min_size=1,
        max_size=12,
    )
)
def test_one_server_loads_each_family_once_when_renders_arrive_within_the_aging_bound(
    arrivals: list[tuple[Family, float]],
) -> None:
    # 12 renders of 1 s and 3 loads of 2 s: nobody waits 20 loads
    loads = one_server_loads(arrivals, POLICY.model_copy(update={"patience_loads": 20.0}))
    assert sorted(loads) == sorted({family for family, _ in arrivals})


def test_on_one_server_a_long_wait_costs_at_most_one_extra_load_per_aging_period() -> None:
    # an ltx render arrives while a long stream of keyframes runs: it waits 8 s, not forever
    keyframes: list[tuple[Family, float]] = [("image", 0.0)] * 40
    assert one_server_loads([*keyframes, ("ltx", 0.5)]) == ["image", "ltx", "image"]


# --- what the servers report (other runs, other clients) ------------------------------------

WORKFLOWS = Path(__file__).resolve().parents[1] / "config" / "workflows"


def captured_history(name: str, step: int) -> dict[str, Any]:
    """The body of a `GET /history/...` a real ComfyUI v0.27 answered (conformance capture)."""
    body: dict[str, Any] = http_steps(name)[step]["response"]["body"]["json"]
    return body


def history(*bodies: dict[str, Any]) -> dict[str, Any]:
    """Finished entries, oldest first, as `GET /history?max_items=N` lists them."""
    return {key: value for body in bodies for key, value in body.items()}


IDLE: dict[str, Any] = {"queue_running": [], "queue_pending": []}


def test_the_family_a_real_comfyui_last_ran_is_read_from_its_history() -> None:
    ltx, ace = captured_history("23", 5), captured_history("23", 7)
    keyframe = next(
        step["response"]["body"]["json"]
        for step in http_steps("26")
        if step["request"]["path"].startswith("/history/")
    )
    model_free = captured_history("19", 0)
    assert report_from(IDLE, history(ace, ltx), asked=0).family == "ltx"
    assert report_from(IDLE, history(ltx, ace), asked=0).family == "ace_step"
    assert report_from(IDLE, history(ace, keyframe), asked=0).family == "image"
    # A newer prompt without a model (an EmptyImage test) leaves the model where it was.
    assert report_from(IDLE, history(ltx, model_free), asked=0).family == "ltx"
    assert report_from(IDLE, {}, asked=0) == ServerReport(busy=0, family=None, asked=0)


def test_a_busy_real_comfyui_counts_running_and_pending_and_the_last_queued_decides() -> None:
    queue = next(
        step["response"]["body"]["json"]
        for step in http_steps("16")
        if step["request"]["path"] == "/queue"
    )
    assert report_from(queue, {}, asked=0).busy == 4  # one running, three pending
    ltx_graph = json.loads((WORKFLOWS / "ltx23_relay_t2v.json").read_text())
    cue_graph = json.loads((WORKFLOWS / "acestep15_cue.json").read_text())
    waiting = {"queue_running": [[5, "a", ltx_graph, {}, []]], "queue_pending": []}
    assert report_from(waiting, {}, asked=0).family == "ltx"
    waiting["queue_pending"] = [[7, "c", cue_graph, {}, []], [6, "b", ltx_graph, {}, []]]
    assert report_from(waiting, {}, asked=0).family == "ace_step"


def test_each_of_reelflows_templates_is_known_by_its_model_family() -> None:
    families = {
        path.stem: family_of(json.loads(path.read_text())) for path in WORKFLOWS.glob("*.json")
    }
    assert families == {
        "keyframe_t2i": "image",
        "keyframe_cast": "image",
        "ltx23_relay_i2v": "ltx",
        "ltx23_relay_t2v": "ltx",
        "ltx23_relay_i2v_voice": "ltx",
        "ltx23_relay_t2v_voice": "ltx",
        "acestep15_cue": "ace_step",
    }


def test_a_server_another_run_is_using_is_not_free_and_its_model_draws_its_family() -> None:
    ltx_box, image_box, empty = ServerState("a", 1), ServerState("b", 1), ServerState("c", 1)
    fold_report(ltx_box, ServerReport(busy=1, family="ltx", asked=0.0))
    fold_report(image_box, ServerReport(busy=0, family="image", asked=0.0))
    fold_report(empty, ServerReport(busy=0, family=None, asked=0.0))
    assert (ltx_box.free, ltx_box.loaded, image_box.free, image_box.loaded) == (
        False, "ltx", True, "image",
    )  # fmt: skip
    servers = [ltx_box, image_box, empty]
    # An image render takes the idle server that holds its model.
    assert grants(servers, [request(0, "image")]) == [(0, "b")]
    # An ltx render does not wait behind another run, which keeps its server while it has
    # ltx renders of its own: it loads, on the empty GPU rather than over the only image model.
    servers = [ltx_box, ServerState("b", 1, loaded="image"), ServerState("c", 1)]
    assert grants(servers, [request(1, "ltx")]) == [(1, "c")]


def test_a_report_asked_before_this_run_changed_a_server_is_old_news() -> None:
    server = ServerState("a", 2, loaded="ltx", running={3: 5.0}, changed=2.0)
    fold_report(server, ServerReport(busy=0, family="image", asked=1.5))
    assert (server.loaded, server.others) == ("ltx", 0)
    # While this run's render is on the GPU, the GPU runs its family whatever came before.
    fold_report(server, ServerReport(busy=2, family="image", asked=2.5))
    assert (server.loaded, server.others, server.free) == ("ltx", 1, False)
    server.running.clear()
    fold_report(server, ServerReport(busy=0, family="image", asked=3.5))
    assert (server.loaded, server.others, server.free) == ("image", 0, True)


# --- on real simulators --------------------------------------------------------------------

LOADING = SimSettings(
    gpu_seconds_per_output_second=0.05,
    model_load_seconds=ModelLoadSeconds(image=0.3, ltx=0.3, ace_step=0.3),
)


@pytest.fixture
def loading_sim(tmp_path: Path) -> Iterator[RunningSimulator]:
    with start_simulator(LOADING, workdir=tmp_path / "sim") as running:
        yield running


def scored_screenplay(folder: Path) -> Path:
    """Three chains of two 2 s sequences, with reelflow's default score (cues on the GPU)."""
    path = write_screenplay(folder, three_chain_scenes())
    document = json.loads(path.read_text())
    del document["score"]
    path.write_text(json.dumps(document))
    return path


def loads_in_order(url: str) -> list[str]:
    runs = sorted(sim_stats(url)["executions"], key=lambda e: e["start"])
    return [e["family"] for e in runs if e["load_s"] > 0]


@pytest.mark.usefixtures("prefect_api")
def test_a_scored_three_chain_film_on_one_gpu_loads_each_model_family_once(
    tmp_path: Path, loading_sim: RunningSimulator
) -> None:
    result = render(scored_screenplay(tmp_path), tmp_path / "out", [loading_sim.url])
    assert result.prompts == sim_stats(loading_sim.url)["prompts_executed"] > 9
    assert loads_in_order(loading_sim.url) == ["image", "ltx", "ace_step"]
    assert sim_stats(loading_sim.url)["model_loads"] == {"image": 1, "ltx": 1, "ace_step": 1}


@pytest.mark.usefixtures("prefect_api")
def test_on_three_gpus_no_server_loads_a_model_family_twice(tmp_path: Path) -> None:
    with ExitStack() as stack:
        sims = [
            stack.enter_context(start_simulator(LOADING, workdir=tmp_path / f"sim{n}"))
            for n in range(3)
        ]
        render(scored_screenplay(tmp_path), tmp_path / "out", [sim.url for sim in sims])
        orders = [loads_in_order(sim.url) for sim in sims]
    assert all(len(order) == len(set(order)) for order in orders), orders
    assert sum(len(order) for order in orders) < 9, orders


def mixed_prompts(studio: Studio) -> list[tuple[Family, float, dict[str, Any]]]:
    """Keyframes and cues alternating, as a naive DAG would submit them."""
    prompts: list[tuple[Family, float, dict[str, Any]]] = []
    for n in range(3):
        image, music = keyframe_of(studio, n), cue_of(studio, n, 4.0)
        prompts += [("image", 1.0, image), ("ace_step", 4.0, music)]
    return prompts


def run_mixed(url: str, root: Path, policy: SchedulePolicy) -> ScheduleReport:
    async def go() -> ScheduleReport:
        studio = await build_studio(
            [ComfyUIServer(url=url)], local_storage(root / "store"), root / "scratch", "fast"
        )
        studio.scheduler = GpuScheduler(policy)
        await asyncio.gather(
            *(
                run_on_gpu(studio, prompt, uploads=[], label=family, family=family, output_s=out)
                for family, out, prompt in mixed_prompts(studio)
            )
        )
        return studio.scheduler.report()

    return asyncio.run(go())


@pytest.mark.usefixtures("prefect_api")
def test_the_schedule_report_counts_the_loads_the_gpu_really_did(
    tmp_path: Path, loading_sim: RunningSimulator
) -> None:
    report = run_mixed(loading_sim.url, tmp_path, SchedulePolicy())
    (server,) = report.servers
    assert list(server.load_order) == loads_in_order(loading_sim.url) == ["image", "ace_step"]
    assert (report.loads, report.minimum_loads, report.notes) == (2, 2, ())
    assert server.prompts == 6 and server.switches == 1
    assert 0.15 < report.load_seconds < 1.2


@pytest.mark.usefixtures("prefect_api")
def test_with_the_policy_off_the_report_still_matches_the_gpu_and_says_why_it_reloaded(
    tmp_path: Path, loading_sim: RunningSimulator
) -> None:
    report = run_mixed(loading_sim.url, tmp_path, SchedulePolicy(aware=False))
    (server,) = report.servers
    assert list(server.load_order) == loads_in_order(loading_sim.url)
    assert report.policy == "unaware" and set(server.reasons) == {"unaware"}


def run_chains(
    urls: list[str], root: Path, policy: SchedulePolicy, *, late: bool = False
) -> list[str]:
    """Chain a (three renders) and chains d, e, f (one each) on two servers; each of a's next
    renders asks 0.3 s after the one before ends, as a carried frame does. a1 and d1 take the
    two slots; e1 and f1 ask 1 s later (on a loaded machine the tasks reach the scheduler in
    any order). `late`: a's first render asks 0.3 s after d1, e1 and f1, announced at once
    (as chains after a gate). The renders in the order the GPUs started them."""

    async def go() -> list[str]:
        studio = await build_studio(
            [ComfyUIServer(url=url) for url in urls],
            local_storage(root / "store"),
            root / "scratch",
            "fast",
        )
        studio.scheduler = GpuScheduler(policy)
        prompts = {key: keyframe_of(studio, seed) for seed, key in enumerate("abcdef")}
        labels: dict[str, str] = {}

        async def render(label: str, prompt: dict[str, Any], chain: int, after_s: float) -> None:
            done = await run_on_gpu(
                studio, prompt, uploads=[], label=label, family="image", output_s=1.0,
                after_s=after_s, chain=chain,
            )  # fmt: skip
            labels[done.prompt_id] = label

        async def chain_a() -> None:
            for number, key in enumerate("abc"):
                if number or late:
                    await asyncio.sleep(0.3)
                await render(f"a{number + 1}", prompts[key], 0, 2.0 - number)

        if late:
            studio.scheduler.expect(studio.servers, "image", 1.0, 2.0, 0)

        async def one_render_chain(chain: int, key: str) -> None:
            if not late and key != "d":
                await asyncio.sleep(1.0)
            await render(f"{key}1", prompts[key], chain, 0.0)

        await asyncio.gather(
            chain_a(), *(one_render_chain(n + 1, key) for n, key in enumerate("def"))
        )
        runs = [run for url in urls for run in sim_stats(url)["executions"]]
        ours = sorted((run for run in runs if run["prompt_id"] in labels), key=lambda r: r["start"])
        return [labels[run["prompt_id"]] for run in ours]

    return asyncio.run(go())


@pytest.mark.usefixtures("prefect_api")
def test_a_freed_slot_waits_for_its_chains_next_render_so_the_longest_chain_is_not_pushed_back(
    tmp_path: Path,
) -> None:
    steady = SimSettings(
        gpu_seconds_per_output_second=2.0,
        model_load_seconds=ModelLoadSeconds(image=0.0, ltx=0.0, ace_step=0.0),
    )
    # 2 s renders: a slot may wait all of one for the 0.3 s carry (by default a tenth), so a
    # loaded machine's slower carry still arrives in time.
    no_loads = SchedulePolicy(load_s=0.001, gpu_s_per_output_s=2.0, hold_share=1.0)
    with ExitStack() as stack:
        urls = [
            stack.enter_context(start_simulator(steady, workdir=tmp_path / f"sim{n}")).url
            for n in range(2)
        ]
        held = run_chains(urls, tmp_path / "held", no_loads)
        unheld = run_chains(urls, tmp_path / "unheld", no_loads.model_copy(update={"hold_s": 0}))
        announced = run_chains(urls, tmp_path / "announced", no_loads, late=True)
        unannounced = run_chains(
            urls, tmp_path / "unannounced", no_loads.model_copy(update={"hold_s": 0}), late=True
        )

    def second_short(order: list[str]) -> int:  # the later of the two that waited for a2
        return max(order.index("e1"), order.index("f1"))

    # Held, a1's slot waited the 0.3 s for a2; the one-render chains shared the other one.
    assert held.index("a2") < second_short(held), held
    # Not held, e1 and f1 took both slots while a2's frame was carried: a was pushed back.
    assert unheld.index("a2") > second_short(unheld), unheld
    # Announced, chain a holds a slot for its first render, which asks after d1, e1 and f1.
    assert announced.index("a1") == 1, announced
    assert unannounced.index("a1") >= 2, unannounced
