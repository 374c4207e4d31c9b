"""floor: the least wall time reelflow's own work adds to a film on this machine, whatever the
orchestration; the ratios no scheduler can beat here, beside the goals of `overhead`,
`scaling` and `post`.

Before the first prompt, Prefect must start the flow run. Between two renders of a chain, the
end frame must be carried: the video downloaded, its last frame taken and uploaded. After the
last GPU end, the last sequence must still be normalized (the cut is made of normalized files)
and the film cut; its dialogue check can at best run beside them. Each piece is measured
alone, in this process, one after another (no Prefect task around it, no scheduling, nothing
beside it), on the `overhead` and `scaling` films rendered at no GPU cost. A film's GPU time
at a rate is what the simulator charges for it (rate x (sequence seconds + 1 s per
keyframe)); its bound is as `scaling` defines it (one server: all of it). Left out, so each
floor is below the true least: the next prompt's submission after a carry, the keyframe's
upload, the delivery folder after the cut, and the cut's spoken-line measurement and
subtitles.

For `post`, the floor is the CPU time of every sequence's check and normalize (this process
and its ffmpeg children, one sequence at a time) shared over every core, then the score
assembly and the cut, against the same minimal path as `bench.post`.

    .venv/bin/python -m bench.floor [--minutes 10]
"""

from __future__ import annotations

import asyncio
import os
import resource
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

from prefect import flow

from bench import common, post, scaling
from bench.edit import plan_of
from bench.post import finish, studio_for
from tasks.comfyui.client import ComfyUIClient
from tasks.dialogue.check import check_dialogue
from tasks.dialogue.policy import DialoguePolicy
from tasks.media.frames import extract_last_frame
from tasks.mux import cut_film, mux_to_file
from tasks.normalize import normalize_sequence
from tasks.schema.film_plan import FilmPlan
from tasks.schema.outcomes import ChainOutcome, SequenceResult
from tasks.score import render_score

T = TypeVar("T")
FILMS = {"overhead": ([10], 1), "scaling": (scaling.CHAINS, 4)}
GOALS = {"overhead": 1.03, "scaling": 1.10}
KEYFRAME_OUTPUT_S = 1.0
"""What the simulator charges a keyframe for, in output seconds (a still counts as one)."""


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (ffmpeg), user and system."""
    own, children = (
        resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


async def timed(work: Awaitable[T]) -> tuple[T, float]:
    started = time.perf_counter()
    value = await work
    return value, time.perf_counter() - started


@flow(name="floor-empty-flow")
async def empty_flow() -> None:
    """Nothing: what starting and ending a flow run costs on its own (async, as the film's
    flow is: a sync flow's end waits ~1 s more here)."""


def flow_start_s() -> float:
    """The shortest of three empty flow runs, call to return."""
    walls = []
    for _ in range(3):
        started = time.perf_counter()
        asyncio.run(empty_flow())
        walls.append(time.perf_counter() - started)
    return min(walls)


def rendered(
    folder: Path, url: str, chains: list[int], seconds: float, scored: bool
) -> tuple[FilmPlan, tuple[ChainOutcome, ...], Path]:
    """The bench film rendered by the flow: its plan, its chains and its output folder."""
    screenplay = common.write_screenplay(folder, common.film_scenes(chains, seconds), scored=scored)
    run = common.run_film(screenplay, folder / "out", [url])
    return plan_of(screenplay), run.result.chains, folder / "out"


async def tail_pieces(
    url: str, plan: FilmPlan, results: list[SequenceResult], out: Path
) -> dict[str, float]:
    """The last sequence's check and normalize, then the cut, each timed alone."""
    studio = await studio_for(url, plan, out)
    *earlier, last = results
    finished = [await finish(studio, plan, result) for result in earlier]  # models loaded
    verdict, check_s = await timed(
        check_dialogue.fn(studio, plan, last.sequence, last.rendered, 1, DialoguePolicy())
    )
    done, normalize_s = await timed(normalize_sequence.fn(studio, last.rendered, verdict))
    clips = [f.video for f in sorted([*finished, done], key=lambda f: f.index)]
    _, cut_s = await timed(cut_film.fn(studio, plan, clips, None, profile=plan.delivery_profile))
    return {"check_s": check_s, "normalize_s": normalize_s, "cut_s": cut_s}


async def carry_floor(url: str, folder: Path) -> float:
    """The shortest of five carries of the last sequence's end frame, alone: its video
    downloaded, the last frame taken (checked PNG) and uploaded. The next prompt's
    submission is left out."""
    (entry,) = [e for e in common.executions(url) if e.kind == "sequence"][-1:]
    walls = []
    async with ComfyUIClient(url) as client:
        history = await client.history(entry.prompt_id)
        if history is None:
            raise common.BenchError(f"the simulator forgot prompt {entry.prompt_id}")
        (video,) = [f for f in history.outputs_files() if f.filename.endswith(".mp4")]
        for attempt in range(5):
            started = time.perf_counter()
            local = await client.download(video, folder / f"carry{attempt}")
            frame = await asyncio.to_thread(extract_last_frame, local, local.with_suffix(".png"))
            await client.upload_file(frame, name=f"floor_carry{attempt}.png")
            walls.append(time.perf_counter() - started)
    return min(walls)


def film_floor(folder: Path, url: str, name: str, start_s: float) -> dict[str, Any]:
    chains, servers = FILMS[name]
    plan, outcomes, out = rendered(folder / name, url, chains, 5.0, scored=False)
    results = sorted((r for o in outcomes for r in o.sequences), key=lambda r: r.sequence.index)
    pieces = asyncio.run(tail_pieces(url, plan, results, out))
    carry_s = asyncio.run(carry_floor(url, folder / name))
    chain_output_s = [
        KEYFRAME_OUTPUT_S + sum(r.rendered.seconds for r in outcome.sequences)
        for outcome in outcomes
    ]
    tail = {
        "serial": pieces["check_s"] + pieces["normalize_s"] + pieces["cut_s"],
        "check_beside": max(pieces["check_s"], pieces["normalize_s"] + pieces["cut_s"]),
    }
    rates = {}
    for rate in common.RATES.values():
        bound = rate.gpu_cost * max(max(chain_output_s), sum(chain_output_s) / servers)
        # A chain's renders wait for each carry between them; the GPUs for nothing else.
        critical = max(
            bound,
            *(
                rate.gpu_cost * seconds + (len(outcome.sequences) - 1) * carry_s
                for seconds, outcome in zip(chain_output_s, outcomes, strict=True)
            ),
        )
        rates[rate.name] = {
            "bound_s": round(bound, 2),
            "room_s": round(bound * (GOALS[name] - 1), 2),
            **{
                f"floor_{way}": round((start_s + critical + seconds) / bound, 4)
                for way, seconds in tail.items()
            },
        }
    return {
        "goal": GOALS[name],
        "flow_start_s": round(start_s, 3),
        "carry_s": round(carry_s, 3),
        "longest_chain": max(chains),
        **{key: round(value, 3) for key, value in pieces.items()},
        "rates": rates,
    }


async def post_pieces(
    url: str, plan: FilmPlan, results: list[SequenceResult], out: Path, folder: Path
) -> tuple[dict[str, float], Path, list[Path]]:
    studio = await studio_for(url, plan, out)
    await finish(studio, plan, results[0])  # models loaded before the clock starts
    cpu = cpu_seconds()
    finished = [await finish(studio, plan, result) for result in results]
    cpu = cpu_seconds() - cpu
    score, score_s = await timed(render_score(studio, plan, [f.seconds for f in finished]))
    if score is None:
        raise common.BenchError("the post film has no score to assemble")
    _, cut_s = await timed(
        mux_to_file(studio, plan, [f.video for f in finished], score.score, folder / "cut.mp4")
    )
    clips = [await studio.store.fetch(r.rendered.video) for r in results]
    pieces = {"check_and_normalize_cpu_s": cpu, "score_assembly_s": score_s, "cut_s": cut_s}
    return pieces, await studio.store.fetch(score.score), clips


def post_floor(folder: Path, url: str, minutes: float) -> dict[str, Any]:
    count = max(1, round(minutes * 60 / post.SEQUENCE_S))
    plan, outcomes, out = rendered(folder / "post", url, [count], post.SEQUENCE_S, scored=True)
    results = sorted((r for o in outcomes for r in o.sequences), key=lambda r: r.sequence.index)
    pieces, score, clips = asyncio.run(post_pieces(url, plan, results, out, folder / "post"))
    minimal = post.minimal_path(clips, score, folder / "post")
    cores = os.cpu_count() or 1
    floor = pieces["check_and_normalize_cpu_s"] / cores + pieces["score_assembly_s"]
    floor += pieces["cut_s"]
    return {
        "goal": post.GOAL,
        "sequences": count,
        "cores": cores,
        **{key: round(value, 3) for key, value in pieces.items()},
        "floor_s": round(floor, 3),
        "minimal_s": round(minimal, 3),
        "floor": round(floor / minimal, 4),
    }


def main() -> None:
    arguments = common.parser(__doc__ or "", rates=False)
    arguments.add_argument("--minutes", type=float, default=10.0, help="the post film's length")
    options = arguments.parse_args()
    with (
        common.workdir(options.workdir, "floor") as folder,
        common.prefect_api(),
        common.simulators(1, 0.0, folder) as sims,
    ):
        start_s = flow_start_s()
        figures: dict[str, Any] = {
            name: film_floor(folder, sims[0].url, name, start_s) for name in FILMS
        }
        figures["post"] = post_floor(folder, sims[0].url, options.minutes)
    figures["load_average"] = common.load_average()
    print(f"results: {common.write_result('floor', figures, {'post_minutes': options.minutes})}")
    for name in FILMS:
        figure = figures[name]
        print(
            f"{name}: flow start {figure['flow_start_s']} s, carry {figure['carry_s']} s "
            f"(chains of up to {figure['longest_chain']}), last check {figure['check_s']} s, "
            f"normalize {figure['normalize_s']} s, cut {figure['cut_s']} s"
        )
        for rate, shown in figure["rates"].items():
            print(
                f"  {rate}: bound {shown['bound_s']} s, room under {figure['goal']} "
                f"{shown['room_s']} s; floor {shown['floor_serial']} (check beside the cut: "
                f"{shown['floor_check_beside']})"
            )
    shown = figures["post"]
    print(
        f"post: check + normalize {shown['check_and_normalize_cpu_s']} CPU s / "
        f"{shown['cores']} cores + score {shown['score_assembly_s']} s + cut {shown['cut_s']} s"
        f" = {shown['floor_s']} s against {shown['minimal_s']} s: floor {shown['floor']}x"
    )
    print(
        "floor: "
        + " | ".join(
            f"{name} {figures[name]['rates']['stress']['floor_check_beside']} stress, "
            f"{figures[name]['rates']['production']['floor_check_beside']} production "
            f"(goal {GOALS[name]})"
            for name in FILMS
        )
        + f" | post {shown['floor']}x (goal {post.GOAL}) (load {figures['load_average']})"
    )


if __name__ == "__main__":
    main()
