"""The render DAG end to end on real simulator processes, through real Prefect."""

from __future__ import annotations

import subprocess
import time
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sim.embedded import RunningSimulator, start_simulator
from sim.settings import Faults, SimSettings
from tasks import media
from tasks.comfyui.errors import PreflightFailed
from tests.film_helpers import (
    film_command,
    harness_environment,
    render,
    sim_stats,
    three_chain_scenes,
    write_screenplay,
)

pytestmark = pytest.mark.usefixtures("prefect_api")

REPO = Path(__file__).resolve().parents[1]


def frames_of(video: Path) -> tuple[np.ndarray, np.ndarray]:
    last = media.extract_last_frame(video, video.parent / f"{video.stem}.last.png")
    first = media.first_frame(video)
    return np.asarray(first, dtype=float), np.asarray(Image.open(last), dtype=float)


def test_each_sequence_starts_on_the_exact_last_frame_of_the_one_before(
    tmp_path: Path, sim: RunningSimulator
) -> None:
    scenes = [
        {"description": f"Shot {n}: the tide rises.", "duration": 2.0, "relay_break": n > 0}
        for n in range(3)
    ]
    result = render(write_screenplay(tmp_path, scenes), tmp_path / "out", [sim.url])
    videos = sorted((Path(result.folder) / "sequences").glob("*_SEQ*_v*.mp4"))
    assert [media.probe(v).video.frames for v in videos] == [49, 49, 49]  # type: ignore[union-attr]
    for before, after in pairwise(videos):
        _, last = frames_of(before)
        first, _ = frames_of(after)
        # The simulator draws scene text over the picture; the carried frame shows through
        # everywhere else, so most pixels match to within codec noise.
        close = np.mean(np.abs(first - last) < 12)
        assert close > 0.6, close
    drift = [c.drift.score for outcome in result.chains for c in outcome.carried]
    assert len(drift) == 2 and all(score >= 0 for score in drift)


def test_an_unchanged_rerun_submits_no_prompts(tmp_path: Path, sim: RunningSimulator) -> None:
    screenplay = write_screenplay(tmp_path, three_chain_scenes())
    first = render(screenplay, tmp_path / "out", [sim.url])
    submitted = sim_stats(sim.url)["prompts_submitted"]
    assert first.prompts == submitted == 9
    again = render(screenplay, tmp_path / "out", [sim.url])
    assert again.prompts == 0
    assert sim_stats(sim.url)["prompts_submitted"] == submitted


def test_editing_one_scene_rerenders_only_its_sequence_and_the_rest_of_its_chain(
    tmp_path: Path, sim: RunningSimulator
) -> None:
    scenes = three_chain_scenes()
    render(write_screenplay(tmp_path, scenes), tmp_path / "out", [sim.url])
    before = sim_stats(sim.url)["prompts_submitted"]
    scenes[2]["description"] = "Chain 1 shot 0, a storm breaks."
    edited = render(write_screenplay(tmp_path, scenes), tmp_path / "out", [sim.url])
    # chain 1: a new keyframe, its first sequence, and its second (new carried frame)
    assert edited.prompts == 3
    assert sim_stats(sim.url)["prompts_submitted"] - before == 3


def test_rerender_rerolls_only_the_chosen_sequence_and_what_follows(
    tmp_path: Path, sim: RunningSimulator
) -> None:
    screenplay = write_screenplay(tmp_path, three_chain_scenes())
    render(screenplay, tmp_path / "out", [sim.url])
    rerolled = render(screenplay, tmp_path / "out", [sim.url], rerender=[5])
    assert rerolled.prompts == 1


def test_chains_spread_over_servers_and_a_one_slot_server_never_queues_two(
    tmp_path: Path,
) -> None:
    settings = SimSettings(gpu_seconds_per_output_second=0.5)
    with (
        start_simulator(settings, workdir=tmp_path / "a") as a,
        start_simulator(settings, workdir=tmp_path / "b") as b,
    ):
        result = render(
            write_screenplay(tmp_path, three_chain_scenes()), tmp_path / "out", [a.url, b.url]
        )
        stats = [sim_stats(a.url), sim_stats(b.url)]
    assert result.prompts == 9
    assert all(s["prompts_submitted"] >= 2 for s in stats)
    for s in stats:
        spans = sorted((e["start"], e["end"]) for e in s["executions"])
        assert all(later[0] >= earlier[1] - 1e-6 for earlier, later in pairwise(spans))


def test_refused_connections_and_500s_recover_by_retry(tmp_path: Path) -> None:
    faults = Faults(fail_submit_status=500, fail_submit_count=1, oom_on_prompt_n=2)
    with start_simulator(
        SimSettings(gpu_seconds_per_output_second=0, faults=faults), workdir=tmp_path / "sim"
    ) as flaky:
        scenes = [{"description": "The tide.", "duration": 2.0}]
        result = render(write_screenplay(tmp_path, scenes), tmp_path / "out", [flaky.url])
        assert len(result.chains[0].sequences) == 1


def test_preflight_names_missing_models_before_any_gpu_work(tmp_path: Path) -> None:
    models = {
        "checkpoints": [],
        "text_encoders": [],
        "loras": [],
        "diffusion_models": [],
        "vae": [],
    }
    with start_simulator(
        SimSettings(gpu_seconds_per_output_second=0, models=models), workdir=tmp_path / "sim"
    ) as bare:
        scenes = [{"description": "The tide.", "duration": 2.0}]
        with pytest.raises(PreflightFailed, match=r"ltx-2.3-22b-distilled-fp8.safetensors"):
            render(write_screenplay(tmp_path, scenes), tmp_path / "out", [bare.url])
        assert sim_stats(bare.url)["prompts_executed"] == 0


def test_a_killed_run_resumes_without_redoing_finished_renders_or_leaking_a_slot(
    tmp_path: Path,
) -> None:
    scenes = [
        {"description": f"Shot {n}: gulls circle.", "duration": 2.0, "relay_break": n > 0}
        for n in range(4)
    ]
    screenplay = write_screenplay(tmp_path, scenes)
    env = harness_environment()
    with start_simulator(
        SimSettings(gpu_seconds_per_output_second=0.75), workdir=tmp_path / "sim"
    ) as slow:
        process = subprocess.Popen(
            film_command(screenplay, tmp_path / "out", [slow.url]),
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while sim_stats(slow.url)["prompts_executed"] < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        process.kill()
        process.wait(timeout=30)
        finished = sim_stats(slow.url)["prompts_executed"]
        assert 3 <= finished < 5, "the kill should land mid-chain"
        started = time.monotonic()
        result = render(screenplay, tmp_path / "out", [slow.url])
        assert time.monotonic() - started < 60, "a leaked GPU slot would stall the re-run"
        # keyframe + 4 sequences in all; the ones finished before the kill are not redone
        assert result.prompts <= 5 - (finished - 1)
        assert len(result.chains[0].sequences) == 4


def test_a_saved_comfyui_block_names_the_server(tmp_path: Path, sim: RunningSimulator) -> None:
    from blocks.comfyui import ComfyUIPool

    ComfyUIPool.from_urls([sim.url]).save("test-studio-pool", overwrite=True)
    scenes = [{"description": "The tide.", "duration": 2.0}]
    result = render(
        write_screenplay(tmp_path, scenes),
        tmp_path / "out",
        ["block:test-studio-pool"],
        dialogue_check=False,
    )
    assert result.prompts == 2 == sim_stats(sim.url)["prompts_submitted"]
