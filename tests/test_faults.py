"""The fault matrix: whatever breaks, nothing finished is lost and no GPU work is done twice.

Every count is taken at the simulator (prompts it accepted and executed), never from
reelflow's own report of itself.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest

from sim.embedded import RunningSimulator, start_simulator
from sim.settings import Faults, SimSettings
from tasks import media
from tasks.runtime.store import file_sha256
from tests.fault_helpers import (
    ComfyProxy,
    FilmThread,
    ProxyTricks,
    TcpOutage,
    small_tmpfs,
    wait_until,
)
from tests.film_helpers import (
    chain_scenes,
    film_command,
    harness_environment,
    render,
    sim_stats,
    write_screenplay,
)
from tests.s3_helpers import moto_server, use_s3

pytestmark = pytest.mark.usefixtures("prefect_api")

REPO = Path(__file__).resolve().parents[1]
SEQUENCES = 3
PROMPTS = SEQUENCES + 1  # one keyframe, then each sequence from the last frame of the one before


def one_chain(tmp_path: Path) -> Path:
    scenes = [
        {"description": f"Shot {n}: gulls circle the mast.", "duration": 2.0, "relay_break": n > 0}
        for n in range(SEQUENCES)
    ]
    return write_screenplay(tmp_path, scenes)


def simulator(tmp_path: Path, faults: Faults, cost: float = 0.25, **kw: object) -> RunningSimulator:
    settings = SimSettings(gpu_seconds_per_output_second=cost, faults=faults)
    return start_simulator(settings, workdir=tmp_path / "sim", **kw)  # type: ignore[arg-type]


def assert_intact(folder: Path, count: int = SEQUENCES) -> None:
    videos = sorted((folder / "sequences").glob("*_SEQ*_v*.mp4"))
    assert len(videos) == count, videos
    for video in videos:
        media.verify_decodes(video)
        info = media.probe(video)
        assert info.video is not None and info.video.frames == 49, video
        assert info.audio is not None, video


def executed_with_outputs(url: str) -> int:
    return sum(bool(e["outputs"]) for e in sim_stats(url)["executions"])


def test_a_server_killed_mid_render_and_rebooted_redoes_only_the_interrupted_prompt(
    tmp_path: Path,
) -> None:
    first = simulator(tmp_path, Faults(crash_mid_prompt_n=3))
    run = FilmThread(one_chain(tmp_path), tmp_path / "out", [first.url], dialogue_check=False)
    wait_until(lambda: not first.is_alive(), 60, "the simulator to crash mid-prompt")
    first.stop()
    # The box comes back on the same port, refusing connections while it boots.
    with simulator(tmp_path, Faults(refuse_connections_for_s=1.5), port=first.port) as again:
        run.join()
        assert run.error is None, run.error
        stats = sim_stats(again.url)
    # keyframe and sequence 0 finished before the crash; sequence 1 was on the GPU
    assert stats["prompts_submitted"] == PROMPTS - 2
    assert run.result is not None
    assert_intact(Path(run.result.folder))


def test_a_server_refusing_connections_at_the_start_is_waited_for(tmp_path: Path) -> None:
    with simulator(tmp_path, Faults(refuse_connections_for_s=2.0)) as booting:
        result = render(one_chain(tmp_path), tmp_path / "out", [booting.url], dialogue_check=False)
        assert sim_stats(booting.url)["prompts_submitted"] == PROMPTS
    assert_intact(Path(result.folder))


def test_5xx_answers_at_submit_are_retried_without_extra_gpu_work(tmp_path: Path) -> None:
    with simulator(tmp_path, Faults(fail_submit_status=503, fail_submit_count=1)) as flaky:
        result = render(one_chain(tmp_path), tmp_path / "out", [flaky.url], dialogue_check=False)
        stats = sim_stats(flaky.url)
    assert stats["prompts_submitted"] == stats["prompts_executed"] == PROMPTS
    assert_intact(Path(result.folder))


def test_an_out_of_memory_error_reruns_that_one_prompt_only(tmp_path: Path) -> None:
    with simulator(tmp_path, Faults(oom_on_prompt_n=2)) as tight:
        result = render(one_chain(tmp_path), tmp_path / "out", [tight.url], dialogue_check=False)
        stats = sim_stats(tight.url)
        finished = executed_with_outputs(tight.url)
    assert stats["prompts_submitted"] == PROMPTS + 1
    assert finished == PROMPTS
    assert result.prompts == PROMPTS + 1, "the report counts the attempt that ran out of memory"
    assert_intact(Path(result.folder))


def test_a_websocket_dropped_mid_prompt_costs_no_gpu_work(tmp_path: Path) -> None:
    with simulator(tmp_path, Faults(drop_ws_after_s=0.1)) as dropping:
        result = render(one_chain(tmp_path), tmp_path / "out", [dropping.url], dialogue_check=False)
        stats = sim_stats(dropping.url)
    assert stats["prompts_submitted"] == PROMPTS
    assert_intact(Path(result.folder))


def test_a_truncated_mp4_from_the_server_is_caught_and_fetched_again(tmp_path: Path) -> None:
    tricks = ProxyTricks(truncate_mp4_views=1)
    with simulator(tmp_path, Faults(), cost=0) as sim:
        proxy = ComfyProxy(sim.url, tricks)
        try:
            result = render(
                one_chain(tmp_path), tmp_path / "out", [proxy.url], dialogue_check=False
            )
        finally:
            proxy.close()
        stats = sim_stats(sim.url)
    assert len(tricks.truncated) == 1
    # re-requesting or re-rendering the damaged sequence is fine; nothing else is redone
    assert stats["prompts_submitted"] <= PROMPTS + 1
    assert_intact(Path(result.folder))


def test_a_killed_multi_chain_run_redoes_at_most_the_prompts_that_were_on_the_gpus(
    tmp_path: Path,
) -> None:
    screenplay = write_screenplay(tmp_path, chain_scenes(chains=2, shots=3))
    settings = SimSettings(gpu_seconds_per_output_second=0.4)
    with (
        start_simulator(settings, workdir=tmp_path / "a") as a,
        start_simulator(settings, workdir=tmp_path / "b") as b,
    ):
        urls = [a.url, b.url]
        command = film_command(screenplay, tmp_path, urls, "--no-dialogue-check")
        process = subprocess.Popen(
            command,
            env=harness_environment(),
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def executed() -> int:
            return sum(sim_stats(url)["prompts_executed"] for url in urls)

        wait_until(lambda: executed() >= 4, 120, "four prompts to start")
        process.kill()
        process.wait(timeout=30)
        time.sleep(0.5)  # let the GPUs finish (or drop) what they were given
        finished = sum(executed_with_outputs(url) for url in urls)
        before = sum(sim_stats(url)["prompts_submitted"] for url in urls)
        assert finished < 8, "the kill should land mid-film"
        result = render(screenplay, tmp_path, urls, dialogue_check=False)
        redone = sum(sim_stats(url)["prompts_submitted"] for url in urls) - before
    # 2 keyframes + 6 sequences; at most one prompt per GPU was lost with the killed run
    assert redone <= 8 - finished + 2
    assert result.prompts == redone
    assert_intact(Path(result.folder), 6)


def test_two_runs_of_the_same_film_at_once_share_the_work_and_corrupt_nothing(
    tmp_path: Path,
) -> None:
    screenplay = one_chain(tmp_path)
    env = harness_environment()
    with simulator(tmp_path, Faults(), cost=0.25) as sim:
        command = film_command(screenplay, tmp_path, [sim.url], "--no-dialogue-check")
        runs = [
            subprocess.Popen(
                command, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
            )
            for _ in range(2)
        ]
        outputs = [run.communicate(timeout=240) for run in runs]
        history = [entry["prompt"][2] for entry in httpx.get(f"{sim.url}/history").json().values()]
    assert [run.returncode for run in runs] == [0, 0], outputs
    assert_intact(tmp_path / "test_reel")
    for stored in (tmp_path / ".reelflow" / "media").rglob("*.*"):
        assert file_sha256(stored) == stored.stem, f"{stored} does not match its name"
    runs_of_each_prompt = Counter(json.dumps(prompt, sort_keys=True) for prompt in history)
    # Serializable cache isolation: one run renders each prompt, the other waits for it.
    assert len(runs_of_each_prompt) == PROMPTS
    assert set(runs_of_each_prompt.values()) == {1}, runs_of_each_prompt.values()


@pytest.fixture
def s3_behind_a_switch(monkeypatch: pytest.MonkeyPatch) -> Iterator[TcpOutage]:
    with moto_server() as port:
        switch = TcpOutage(port)
        use_s3(monkeypatch, switch.url, AWS_MAX_ATTEMPTS="2")
        try:
            yield switch
        finally:
            switch.close()


def test_an_s3_outage_fails_the_run_naming_the_store_and_the_rerun_continues(
    tmp_path: Path, s3_behind_a_switch: TcpOutage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REELFLOW_STORE_RETRY_S", "2")
    boto3.client("s3", endpoint_url=s3_behind_a_switch.url).create_bucket(Bucket="films")
    screenplay = one_chain(tmp_path)
    store = "s3://films/studio"
    with simulator(tmp_path, Faults(), cost=0.5) as sim:
        run = FilmThread(screenplay, tmp_path / "out", [sim.url], store=store, dialogue_check=False)
        wait_until(lambda: executed_with_outputs(sim.url) >= 2, 60, "two finished renders")
        s3_behind_a_switch.down()
        run.join()
        assert run.error is not None, "the run cannot finish without its store"
        message = str(run.error)
        assert "s3://films/studio" in message and "S3Bucket(" not in message, message
        assert "Finished renders are kept" not in message, message
        first = sim_stats(sim.url)["prompts_submitted"]
        s3_behind_a_switch.up()
        result = render(screenplay, tmp_path / "out", [sim.url], store=store, dialogue_check=False)
        total = sim_stats(sim.url)["prompts_submitted"]
    # the render whose upload hit the outage may be redone; nothing finished before it is
    assert total <= PROMPTS + 1, (first, total)
    assert_intact(Path(result.folder))


def test_a_full_disk_fails_with_a_message_that_names_the_folder(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "out", size_kib=384) as out:
        if out is None:
            pytest.skip("mounting a tmpfs needs privileges this machine does not grant")
        with simulator(tmp_path, Faults(), cost=0) as sim, pytest.raises(Exception) as failed:
            render(one_chain(tmp_path), out, [sim.url], dialogue_check=False)
        message = str(failed.value)
        assert "No space left" in message or "full" in message, message
        assert str(out) in message, message


def test_a_short_s3_outage_is_retried_and_the_film_finishes(
    tmp_path: Path, s3_behind_a_switch: TcpOutage
) -> None:
    boto3.client("s3", endpoint_url=s3_behind_a_switch.url).create_bucket(Bucket="films")
    with simulator(tmp_path, Faults(), cost=1.0) as sim:
        run = FilmThread(
            one_chain(tmp_path),
            tmp_path / "out",
            [sim.url],
            store="s3://films/studio",
            dialogue_check=False,
        )

        def on_the_gpu() -> bool:
            stats = sim_stats(sim.url)
            return stats["prompts_executed"] >= 2 and len(stats["executions"]) < 2

        wait_until(on_the_gpu, 60, "the first sequence on the GPU")
        s3_behind_a_switch.down()  # its upload lands in the outage
        wait_until(lambda: executed_with_outputs(sim.url) >= 2, 60, "the sequence to finish")
        time.sleep(3)
        s3_behind_a_switch.up()
        run.join()
        stats = sim_stats(sim.url)
    assert run.error is None, run.error
    assert stats["prompts_submitted"] == PROMPTS
    assert run.result is not None
    assert_intact(Path(run.result.folder))
