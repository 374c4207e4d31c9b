"""The client against a running ComfyUI-compatible simulator: real HTTP, websocket and media."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from PIL import Image

from sim.embedded import RunningSimulator, free_loopback_port, start_simulator
from sim.inventory import default_models
from sim.settings import Faults, SimSettings
from tasks.comfyui import protocol as p
from tasks.comfyui.client import ComfyUIClient
from tasks.comfyui.errors import (
    OutOfMemory,
    OutputInvalid,
    PromptRejected,
    ServerError,
    ServerTimeout,
    ServerUnreachable,
    TransientError,
)
from tasks.comfyui.models import load_models
from tasks.comfyui.preflight import preflight
from tasks.comfyui.workflow import TemplateKind, cue_prompt, load_template, relay_prompt

MODELS = load_models("fast")
FRAMES, FPS, WIDTH, HEIGHT = 49, 24, 256, 160


def _inventory() -> dict[str, list[str]]:
    """The simulator's own inventory plus every file reelflow's models.toml names."""
    models = {folder: list(files) for folder, files in default_models().items()}
    ltx, ace, image = MODELS.ltx23, MODELS.acestep15, MODELS.keyframe
    extra = {
        "checkpoints": [ltx.checkpoint],
        "text_encoders": [ltx.text_encoder, ace.text_encoder_small, ace.text_encoder_large],
        "loras": [ltx.distilled_lora],
        "diffusion_models": [ace.diffusion_model, image.diffusion_model],
        "vae": [ace.vae, image.vae],
    }
    for folder, files in extra.items():
        models.setdefault(folder, [])
        models[folder] += [f for f in files if f not in models[folder]]
    return models


@contextlib.contextmanager
def _simulator(gpu_s: float = 0.05, **faults: Any) -> Iterator[RunningSimulator]:
    settings = SimSettings(
        gpu_seconds_per_output_second=gpu_s, models=_inventory(), faults=Faults(**faults)
    )
    with start_simulator(settings) as running:
        yield running


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSimulator]:
    with _simulator() as running:
        yield running


def _start_frame(path: Path) -> Path:
    Image.new("RGB", (WIDTH, HEIGHT), (30, 60, 120)).save(path)
    return path


def _sequence(start_image: str | None, **overrides: Any) -> dict[str, Any]:
    kind = TemplateKind.relay_i2v if start_image else TemplateKind.relay_t2v
    values: dict[str, Any] = {
        "global_prompt": "A rainy rooftop at dusk. MAYA, a woman in a yellow raincoat.",
        "segment_prompts": ["Maya looks out over the city lights.", 'MAYA says "Just in time."'],
        "segment_frames": [25, 24],
        "width": WIDTH,
        "height": HEIGHT,
        "frames": FRAMES,
        "fps": FPS,
        "seed": 424242,
        "negative": "music, soundtrack, blurry",
        "start_image": start_image,
        "models": MODELS,
        "output_prefix": "reelflow/test_seq",
    }
    return relay_prompt(load_template(kind), **{**values, **overrides})


def _stats(sim: RunningSimulator) -> dict[str, Any]:
    return httpx.get(f"{sim.url}/reelflow-sim/stats", timeout=5).json()  # type: ignore[no-any-return]


async def _queue_drains(client: ComfyUIClient, within_s: float = 5.0) -> p.QueueState:
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        queue = await client.queue()
        if not queue.prompt_ids() or asyncio.get_running_loop().time() > deadline:
            return queue
        await asyncio.sleep(0.1)


def test_a_two_segment_image_to_video_sequence_renders_and_downloads(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    events: list[p.ProgressEvent] = []

    async def scenario() -> tuple[p.HistoryEntry, Path]:
        async with ComfyUIClient(sim.url) as client:
            name = await client.upload_file(_start_frame(tmp_path / "carry_frame.png"))
            entry = await client.run(_sequence(name), on_progress=events.append)
            [video] = [f for f in entry.outputs_files() if f.filename.endswith(".mp4")]
            return entry, await client.download(video, tmp_path / "renders")

    entry, path = asyncio.run(scenario())
    assert entry.status is not None and entry.status.status_str == "success"
    assert path.parent == tmp_path / "renders" and path.stat().st_size > 0
    assert [f.name for f in path.parent.iterdir()] == [path.name]  # no temp file left over
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        frames = sum(1 for _ in container.decode(video=0))
        assert (video.codec_context.width, video.codec_context.height) == (WIDTH, HEIGHT)
        assert container.streams.audio, "a relay render carries its dialogue audio"
    assert frames == FRAMES
    assert {e.stage for e in events} >= {"started", "executing"}
    assert all(e.prompt_id == entry.prompt_id for e in events)


def test_a_rejected_prompt_names_the_node_the_input_and_comfyuis_message(
    sim: RunningSimulator,
) -> None:
    prompt = _sequence(None)
    prompt["1"]["inputs"]["ckpt_name"] = "ltx-2.3-missing.safetensors"

    async def scenario() -> None:
        async with ComfyUIClient(sim.url) as client:
            await client.run(prompt)

    with pytest.raises(PromptRejected) as caught:
        asyncio.run(scenario())
    message = str(caught.value)
    assert "node 1 (CheckpointLoaderSimple) input 'ckpt_name'" in message
    assert "Value not in list" in message and "ltx-2.3-missing.safetensors" in message
    assert not isinstance(caught.value, TransientError)


def test_preflight_against_a_live_server_passes_reelflows_templates(
    sim: RunningSimulator,
) -> None:
    async def scenario() -> list[str]:
        async with ComfyUIClient(sim.url) as client:
            report = await preflight(client, {"sequence 0": _sequence("not_uploaded_yet.png")})
            return report.problems

    assert asyncio.run(scenario()) == []


def test_an_output_name_that_climbs_out_of_its_folder_is_never_downloaded(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    hostile = p.OutputFile(filename="../../outside.mp4", subfolder="", type="output")

    async def scenario() -> None:
        async with ComfyUIClient(sim.url) as client:
            await client.download(hostile, tmp_path / "renders")

    with pytest.raises(OutputInvalid):
        asyncio.run(scenario())
    assert not (tmp_path / "renders").exists() and not (tmp_path.parent / "outside.mp4").exists()


def test_running_out_of_gpu_memory_is_a_transient_out_of_memory() -> None:
    async def scenario(url: str) -> None:
        async with ComfyUIClient(url) as client:
            await client.run(_sequence(None))

    with _simulator(oom_on_prompt_n=1) as running, pytest.raises(OutOfMemory) as caught:
        asyncio.run(scenario(running.url))
    assert isinstance(caught.value, TransientError)
    assert "OutOfMemory" in caught.value.exception_type


def test_a_500_on_submit_is_a_transient_server_error() -> None:
    async def scenario(url: str) -> None:
        async with ComfyUIClient(url) as client:
            await client.run(_sequence(None))

    with _simulator(fail_submit_status=500) as running, pytest.raises(ServerError) as caught:
        asyncio.run(scenario(running.url))
    assert caught.value.status_code == 500 and isinstance(caught.value, TransientError)


def test_a_refused_connection_is_server_unreachable() -> None:
    async def scenario() -> None:
        url = f"http://127.0.0.1:{free_loopback_port()}"
        async with ComfyUIClient(url, unreachable_wait=0) as client:
            await client.run(_sequence(None))

    with pytest.raises(ServerUnreachable):
        asyncio.run(scenario())


def test_a_dropped_websocket_still_completes_through_history_polling(tmp_path: Path) -> None:
    async def scenario(url: str) -> p.HistoryEntry:
        async with ComfyUIClient(url) as client:
            return await client.run(_sequence(None))

    with _simulator(gpu_s=1.0, drop_ws_after_s=0.3) as running:
        entry = asyncio.run(scenario(running.url))
        assert entry.status is not None and entry.status.status_str == "success"
        assert any(f.filename.endswith(".mp4") for f in entry.outputs_files())
        assert _stats(running)["prompts_executed"] == 1


def test_cancelling_a_render_interrupts_it_and_leaves_the_queue_empty() -> None:
    async def scenario(url: str) -> tuple[p.QueueState, p.HistoryEntry | None, str]:
        async with ComfyUIClient(url) as client:
            started = asyncio.Event()
            ids: list[str] = []

            def on_progress(event: p.ProgressEvent) -> None:
                ids.append(event.prompt_id)
                started.set()

            # Two renders: the second waits in the queue behind the first.
            first = asyncio.create_task(client.run(_sequence(None), on_progress=on_progress))
            second = asyncio.create_task(client.run(_sequence(None, seed=2)))
            await asyncio.wait_for(started.wait(), timeout=20)
            for task in (first, second):
                task.cancel()
            for task in (first, second):
                with pytest.raises(asyncio.CancelledError):
                    await task
            return await _queue_drains(client), await client.history(ids[0]), ids[0]

    with _simulator(gpu_s=10.0) as running:
        queue, history, _ = asyncio.run(scenario(running.url))
        stats = _stats(running)
    assert queue.queue_running == [] and queue.queue_pending == []
    assert history is None or history.status is None or history.status.status_str != "success"
    assert stats["prompts_submitted"] == 2 and stats["prompts_executed"] <= 1


def test_a_render_past_its_time_limit_is_withdrawn_from_the_server() -> None:
    async def scenario(url: str) -> p.QueueState:
        async with ComfyUIClient(url, render_timeout=1.0) as client:
            with pytest.raises(ServerTimeout):
                await client.run(_sequence(None))
            return await _queue_drains(client)

    with _simulator(gpu_s=10.0) as running:
        queue = asyncio.run(scenario(running.url))
    assert not queue.prompt_ids()


def test_two_cues_with_one_prefix_download_as_two_distinct_mp3s(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    cues = [
        cue_prompt(
            load_template(TemplateKind.cue),
            tags="solo cello, sea wind",
            bpm=72,
            keyscale="D minor",
            seconds=4.0,
            seed=seed,
            models=MODELS,
            output_prefix="reelflow/test_cue",
        )
        for seed in (101, 102)
    ]

    async def scenario() -> list[Path]:
        async with ComfyUIClient(sim.url) as client:
            paths = []
            for cue in cues:
                entry = await client.run(cue)
                [mp3] = entry.outputs_files()
                paths.append(await client.download(mp3, tmp_path / "cues"))
            return paths

    first, second = asyncio.run(scenario())
    # SaveAudioMP3 numbers its files; only the names in history find them.
    assert first.name != second.name and first.suffix == second.suffix == ".mp3"
    for path in (first, second):
        with av.open(str(path)) as container:
            assert container.streams.audio and container.duration
            assert abs(container.duration / 1_000_000 - 4.0) < 0.5


def test_execution_seconds_are_the_servers_and_queue_time_is_apart() -> None:
    async def scenario(url: str) -> list[p.HistoryEntry]:
        async with ComfyUIClient(url) as client:
            first = asyncio.create_task(client.run(_sequence(None, seed=11)))
            while not (await client.queue()).queue_running:
                await asyncio.sleep(0.02)
            # The second waits behind the first on the one GPU.
            second = asyncio.create_task(client.run(_sequence(None, seed=12)))
            return list(await asyncio.gather(first, second))

    with _simulator(gpu_s=0.5) as running:  # about a second per sequence
        entries = asyncio.run(scenario(running.url))
        executions = {e["prompt_id"]: e for e in _stats(running)["executions"]}
    for entry in entries:
        recorded = executions[entry.prompt_id]
        assert entry.execution_seconds is not None
        assert abs(entry.execution_seconds - (recorded["end"] - recorded["start"])) <= 0.05
    first, second = entries
    assert first.execution_seconds is not None and second.queue_seconds is not None
    # The second prompt's wait is most of the first one's run, and not part of its own.
    assert second.queue_seconds >= first.execution_seconds * 0.7
