"""The simulator renders real animatic media a later stage can measure."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from sim.embedded import RunningSimulator, start_simulator
from sim.settings import SimSettings
from tests.sim_helpers import (
    decode_audio,
    fetch_output,
    first_frame,
    last_frame,
    png_bytes,
    png_image,
    posted_prompts,
    probe,
    relay_prompt,
    rms_db,
    run_prompt,
    upload,
)

FPS = 24
QUIET = ["A wide shot of the city lights at night.", 'MAYA says "We made it just in time."']
LONG_LINE = (
    'TOMAS says "I have been waiting on this rooftop for a very long time and I will tell you '
    'every single reason why." | The rain keeps falling on the empty street below.'
)


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSimulator]:
    with start_simulator(SimSettings(gpu_seconds_per_output_second=0)) as running:
        upload(running.url, "reelflow_start_frame.png", png_bytes(320, 200, (200, 70, 40)))
        yield running


def _render(sim: RunningSimulator, prompt: dict[str, Any], into: Path) -> Path:
    answer, messages = run_prompt(sim.url, prompt)
    assert answer.status_code == 200, answer.text
    assert messages[-3]["type"] == "execution_success", messages[-3:]
    executed = [m for m in messages if m["type"] == "executed"]
    output = executed[-1]["data"]["output"]
    key = "audio" if "audio" in output else "images"
    return fetch_output(sim.url, output[key][0], into)


def _window(samples: np.ndarray, start_s: float, end_s: float) -> np.ndarray:
    return samples[int(start_s * 48000) : int(end_s * 48000)]


@pytest.fixture(scope="module")
def relay_video(sim: RunningSimulator, tmp_path_factory: pytest.TempPathFactory) -> Path:
    prompt = relay_prompt(frames=97, segment_lengths="49, 48", local_prompts=" | ".join(QUIET))
    return _render(sim, prompt, tmp_path_factory.mktemp("relay"))


def test_relay_render_has_the_requested_frames_size_and_48k_audio(relay_video: Path) -> None:
    info = probe(relay_video)
    video = next(s for s in info["streams"] if s["codec_type"] == "video")
    audio = next(s for s in info["streams"] if s["codec_type"] == "audio")
    assert (video["codec_name"], video["pix_fmt"]) == ("h264", "yuv420p")
    assert (video["width"], video["height"]) == (256, 160)
    assert int(video["nb_read_frames"]) == 97
    assert video["r_frame_rate"] == "24/1"
    assert (audio["codec_name"], audio["sample_rate"], audio["channels"]) == ("aac", "48000", 2)
    assert abs(float(audio["duration"]) - 97 / FPS) < 0.03


def test_first_frame_is_the_uploaded_start_image(relay_video: Path) -> None:
    start = png_image(png_bytes(320, 200, (200, 70, 40)))
    expected = np.asarray(start.convert("RGB").resize((256, 160), Image.BICUBIC), dtype=np.float32)
    assert float(np.mean(np.abs(first_frame(relay_video) - expected))) < 6.0


def test_dialogue_is_spoken_in_its_segment_and_the_other_segment_is_near_silent(
    relay_video: Path,
) -> None:
    samples = decode_audio(relay_video)
    silent_segment = _window(samples, 0.1, 49 / FPS - 0.1)
    dialogue_segment = _window(samples, 49 / FPS + 0.3, 49 / FPS + 1.5)
    assert rms_db(silent_segment) < -55
    assert rms_db(dialogue_segment) > rms_db(silent_segment) + 25


def test_a_line_too_long_for_its_segment_is_cut_at_the_segment_end(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    prompt = relay_prompt(frames=97, segment_lengths="49, 48", local_prompts=LONG_LINE)
    samples = decode_audio(_render(sim, prompt, tmp_path))
    boundary = 49 / FPS
    assert rms_db(_window(samples, boundary - 0.4, boundary - 0.05)) > -40
    assert rms_db(_window(samples, boundary + 0.05, boundary + 1.5)) < -55


def test_two_seeds_render_dialogue_at_different_levels(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    levels = []
    for seed in (1, 2):
        prompt = relay_prompt(
            frames=97, segment_lengths="49, 48", local_prompts=" | ".join(QUIET), seed=seed
        )
        samples = decode_audio(_render(sim, prompt, tmp_path))
        levels.append(rms_db(_window(samples, 49 / FPS + 0.3, 49 / FPS + 1.5)))
    assert abs(levels[0] - levels[1]) > 1.0


def test_a_chained_render_drifts_in_colour_from_its_start_frame(relay_video: Path) -> None:
    first, last = first_frame(relay_video), last_frame(relay_video)
    # A corner away from the caption box: the same picture, slightly shifted in colour.
    corner = (slice(120, 160), slice(200, 256))
    assert 0.5 < float(np.mean(np.abs(last[corner] - first[corner]))) < 25


def test_an_ace_step_cue_lasts_the_requested_seconds_and_is_music_not_silence(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    prompt = copy.deepcopy(posted_prompts("23")[1]["request"]["json"]["prompt"])
    prompt["98"]["inputs"]["seconds"] = 6.0
    prompt["94"]["inputs"]["duration"] = 6.0
    path = _render(sim, prompt, tmp_path)
    assert path.name.endswith(".mp3")
    audio = next(s for s in probe(path)["streams"] if s["codec_type"] == "audio")
    assert audio["sample_rate"] == "48000"
    samples = decode_audio(path)
    assert abs(len(samples) / 48000 - 6.0) < 0.08
    assert rms_db(samples) > -30


def test_a_keyframe_is_a_png_of_the_requested_size(sim: RunningSimulator, tmp_path: Path) -> None:
    prompt = copy.deepcopy(posted_prompts("26")[0]["request"]["json"]["prompt"])
    prompt["13"]["inputs"].update(width=384, height=256)
    path = _render(sim, prompt, tmp_path)
    with Image.open(path) as image:
        assert (image.format, image.size) == ("PNG", (384, 256))


def test_a_title_card_fault_speaks_over_the_opening_of_a_silent_segment(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    faults = f"{sim.url}/reelflow-sim/faults"
    httpx.post(faults, json={"title_card": "The Lighthouse Keeper"}, timeout=10)
    try:
        prompt = relay_prompt(frames=97, segment_lengths="49, 48", local_prompts=" | ".join(QUIET))
        samples = decode_audio(_render(sim, prompt, tmp_path))
    finally:
        httpx.post(faults, json={"title_card": None}, timeout=10)
    assert rms_db(_window(samples, 0.1, 1.0)) > -40
