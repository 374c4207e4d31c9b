"""Score cues start from the plan's lengths instead of after the last sequence: a render lasts
exactly its planned frames, so the cues rendered ahead are the ones the film needs, and only a
cue whose zone really changed length renders again."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from blocks.comfyui import ComfyUIServer
from flows.film import film
from flows.run import build_studio
from sim.embedded import start_simulator
from sim.settings import SimSettings
from tasks.plan.film import with_sequences
from tasks.runtime.store import local_storage
from tasks.schema.options import FilmOptions
from tasks.schema.outcomes import FilmResult, ScoreResult
from tasks.score import ScoreAhead, cue_key, planned_seconds, render_score, retime_cues
from tests.film_helpers import task_run_times, write_screenplay
from tests.sim_helpers import posted_prompts
from tests.test_score import (
    harbour_plan,
    measured_seconds,
    offline_studio,
    render_sequences,
    sim_prompts,
    start_sim,
)


def test_the_planned_lengths_are_what_the_rendered_sequences_measure(tmp_path: Path) -> None:
    plan = harbour_plan()
    with start_sim() as sim:
        studio = offline_studio(sim.url, tmp_path)
        measured = measured_seconds(studio, render_sequences(studio, plan))
    assert planned_seconds(plan) == measured
    ahead = [cue_key(studio, cue) for cue in retime_cues(plan, planned_seconds(plan))]
    assert ahead == [cue_key(studio, cue) for cue in retime_cues(plan, measured)]


@pytest.mark.usefixtures("prefect_api")
def test_only_the_cue_whose_zone_grew_renders_again(tmp_path: Path) -> None:
    plan = harbour_plan()
    last = plan.sequences[-1]
    # A re-render that needed room: the last sequence came back 8 frames (one 8n+1 step) longer.
    longer = with_sequences(
        plan, [*plan.sequences[:-1], last.model_copy(update={"frames": last.frames + 8})]
    )

    async def compose() -> tuple[list[str], ScoreResult, ScoreResult, int, int]:
        studio = await build_studio(
            [ComfyUIServer(url=sim.url)], local_storage(tmp_path / "store"), tmp_path / "s", "fast"
        )
        ahead = ScoreAhead(studio, plan)
        ahead.release()
        early = await asyncio.gather(*ahead.renders.values())
        before = sim_prompts(sim.url)
        same = await render_score(studio, plan, planned_seconds(plan), ahead)
        unchanged_prompts = sim_prompts(sim.url) - before
        grown = await render_score(studio, longer, planned_seconds(longer), None)
        assert same is not None and grown is not None
        return [r.audio.sha256 for r in early], same, grown, unchanged_prompts, sim_prompts(sim.url)

    with start_sim() as sim:
        early, same, grown, unchanged_prompts, total = asyncio.run(compose())
    assert unchanged_prompts == 0
    assert [r.audio.sha256 for r in same.renders] == early
    assert len(plan.cues) == len(early) == 4
    # Only the last zone holds the longer sequence: three cues come from the cache.
    assert [r.cached for r in grown.renders] == [True, True, True, False]
    assert total == len(early) + 1
    assert grown.cues[-1].duration_s == pytest.approx(same.cues[-1].duration_s + 8 / 24)


def scored_chain(folder: Path, *, last_s: float) -> Path:
    """One chain of three sequences (2 s, 2 s, `last_s`) with the default score: cues on the
    GPU."""
    scenes: list[dict[str, Any]] = [
        {"description": "Waves roll in under a grey sky.", "duration": 2.0},
        {"description": "Gulls circle the harbour.", "duration": 2.0, "relay_break": True},
        {"description": "A boat rounds the pier.", "duration": last_s, "relay_break": True},
    ]
    screenplay = write_screenplay(folder, scenes)
    document = json.loads(screenplay.read_text())
    del document["score"]
    screenplay.write_text(json.dumps(document))
    return screenplay


@pytest.mark.usefixtures("prefect_api")
def test_on_one_gpu_the_cues_wait_in_line_behind_the_last_sequence(tmp_path: Path) -> None:
    screenplay = scored_chain(tmp_path, last_s=10.0)
    settings = SimSettings(gpu_seconds_per_output_second=0.6)
    with start_simulator(settings, workdir=tmp_path / "sim") as sim:
        options = FilmOptions.of(comfyui=(sim.url,), out=str(tmp_path / "out"))
        state = asyncio.run(film(screenplay=str(screenplay), options=options, return_state=True))
        stats = httpx.get(f"{sim.url}/reelflow-sim/stats", timeout=10).json()
    result = state.result()
    assert isinstance(result, FilmResult)
    times = task_run_times(state.state_details.flow_run_id)
    runs = stats["executions"]
    families = [run["family"] for run in runs]
    assert result.score is not None and len(result.score.cues) >= 1
    # Every cue rendered once, after every sequence: the GPU never swapped models mid-chain.
    assert families.count("ace_step") == len(result.score.cues)
    assert families == sorted(families, key=["image", "ltx", "ace_step"].index)
    # Queued while the last sequence rendered, the cue ran while that sequence was still being
    # heard and normalized: the score no longer waits for the chains' post work.
    first_cue = min(run["start"] for run in runs if run["family"] == "ace_step")
    last = len(result.plan.sequences) - 1
    assert first_cue < times[f"normalize-seq{last}"][1]


@pytest.mark.usefixtures("prefect_api")
def test_on_gpus_another_run_holds_the_cues_still_wait_behind_the_last_sequence(
    tmp_path: Path,
) -> None:
    screenplay = scored_chain(tmp_path, last_s=4.0)
    # Another studio's keyframe holds the second GPU for longer than this whole film.
    foreign = posted_prompts("26")[0]["request"]["json"]["prompt"]
    free_settings = SimSettings(gpu_seconds_per_output_second=0.6)
    held_settings = SimSettings(gpu_seconds_per_output_second=600)
    with (
        start_simulator(free_settings, workdir=tmp_path / "free") as free,
        start_simulator(held_settings, workdir=tmp_path / "held") as held,
    ):
        taken = httpx.post(f"{held.url}/prompt", json={"prompt": foreign}, timeout=10)
        assert taken.status_code == 200, taken.text
        options = FilmOptions.of(comfyui=(free.url, held.url), out=str(tmp_path / "out"))
        result = asyncio.run(film(screenplay=str(screenplay), options=options))
        families = [
            run["family"]
            for run in httpx.get(f"{free.url}/reelflow-sim/stats", timeout=10).json()["executions"]
        ]
        held_queue = httpx.get(f"{held.url}/queue", timeout=10).json()
    assert isinstance(result, FilmResult) and result.score is not None
    # One chain on the one GPU left to it: two free slots in all would have let a cue in
    # between two sequences; the GPU ran its model families once each, cues last.
    assert families.count("ltx") == len(result.plan.sequences) == 3
    assert families.count("ace_step") == len(result.score.cues)
    assert families == sorted(families, key=["image", "ltx", "ace_step"].index)
    assert len(held_queue["queue_running"]) == 1 and held_queue["queue_pending"] == []
