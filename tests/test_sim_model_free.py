"""Graphs beyond reelflow's own: the simulator computes model-free nodes and saves real files.

The prompts are the ones captured from the real server (08, 10, 11, 15, 20, 22); the
simulator must list the same outputs, send the same events, and write files that hold
what the graph computed (the uploaded picture, scaled; the uploaded clip's frames).
"""

from __future__ import annotations

import copy
import io
import json
import re
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from sim.embedded import RunningSimulator, start_simulator
from sim.settings import SimSettings
from tests.media_factory import make_clip
from tests.sim_helpers import (
    captured_types,
    fetch_output,
    png_bytes,
    posted_prompts,
    probe,
    run_prompt,
    types_of,
    upload,
)


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSimulator]:
    with start_simulator(SimSettings(gpu_seconds_per_output_second=0)) as running:
        yield running


def _captured_prompt(name: str, index: int = 0) -> dict[str, Any]:
    return copy.deepcopy(posted_prompts(name)[index]["request"]["json"]["prompt"])


def _history(url: str, answer: httpx.Response) -> dict[str, Any]:
    prompt_id = answer.json()["prompt_id"]
    return httpx.get(f"{url}/history/{prompt_id}").json()[prompt_id]  # type: ignore[no-any-return]


def _picture(url: str, item: dict[str, str]) -> Image.Image:
    answer = httpx.get(f"{url}/view", params=item, timeout=30)
    assert answer.status_code == 200
    return Image.open(io.BytesIO(answer.content))


def test_an_uploaded_picture_is_loaded_scaled_saved_and_previewed(sim: RunningSimulator) -> None:
    picture = png_bytes(96, 64, (200, 40, 10))
    assert upload(sim.url, "keyframe_0001.png", picture, subfolder="film_conformance").is_success
    answer, messages = run_prompt(sim.url, _captured_prompt("08"), client_id="c08")
    assert types_of(messages) == captured_types("08")
    outputs = _history(sim.url, answer)["outputs"]
    (saved,) = outputs["12"]["images"]
    (shown,) = outputs["13"]["images"]
    assert saved["subfolder"] == "conformance" and saved["type"] == "output"
    assert re.fullmatch(r"scaled_\d{5}_\.png", saved["filename"])
    assert re.fullmatch(r"ComfyUI_temp_[a-z]{5}_00001_\.png", shown["filename"])
    assert shown["type"] == "temp"
    for item in (saved, shown):
        image = np.asarray(_picture(sim.url, item).convert("RGB"), dtype=int)
        assert image.shape == (60, 80, 3)
        # png_bytes inverts the top-left quarter: both colours survive the scaling.
        assert np.abs(image[45, 60] - (200, 40, 10)).max() <= 3
        assert np.abs(image[10, 10] - (55, 215, 245)).max() <= 3


def test_animations_and_webm_list_images_with_animated(sim: RunningSimulator) -> None:
    answer, messages = run_prompt(sim.url, _captured_prompt("10"), client_id="c10")
    assert types_of(messages) == captured_types("10")
    outputs = _history(sim.url, answer)["outputs"]
    types = {"2": "video/webm", "3": "image/webp", "4": "image/png"}
    for node, content_type in types.items():
        assert outputs[node]["animated"] == [True]
        (item,) = outputs[node]["images"]
        view = httpx.get(f"{sim.url}/view", params=item, timeout=30)
        assert view.headers["content-type"] == content_type
    assert outputs["2"]["images"][0]["subfolder"] == "conformance/webm"
    assert _picture(sim.url, outputs["3"]["images"][0]).convert("RGB").getpixel((5, 5)) == (
        0,
        255,
        0,
    )


def test_an_animation_holds_every_frame_of_its_batch(sim: RunningSimulator) -> None:
    def colour(rgb: int) -> dict[str, Any]:
        inputs = {"width": 16, "height": 16, "batch_size": 1, "color": rgb}
        return {"class_type": "EmptyImage", "inputs": inputs}

    prompt = {
        "1": colour(0xFF0000),
        "2": colour(0x0000FF),
        "3": {"class_type": "BatchImagesNode", "inputs": {"images.image0": ["1", 0]}},
        "4": {"class_type": "ImageBatch", "inputs": {"image1": ["3", 0], "image2": ["1", 0]}},
        "5": {
            "class_type": "SaveAnimatedPNG",
            "inputs": {
                "images": ["4", 0],
                "filename_prefix": "rbr",
                "fps": 2.0,
                "compress_level": 4,
            },
        },
    }
    prompt["3"]["inputs"]["images.image1"] = ["2", 0]
    outputs = _history(sim.url, run_prompt(sim.url, prompt, client_id="anim")[0])["outputs"]
    animation = _picture(sim.url, outputs["5"]["images"][0])
    colours = []
    for index in range(animation.n_frames):
        animation.seek(index)
        colours.append(animation.convert("RGB").getpixel((8, 8)))
    assert colours == [(255, 0, 0), (0, 0, 255), (255, 0, 0)]


def test_audio_savers_write_each_format_under_one_counter(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    answer, messages = run_prompt(sim.url, _captured_prompt("11"), client_id="c11")
    assert types_of(messages) == captured_types("11")
    outputs = _history(sim.url, answer)["outputs"]
    names = {node: outputs[node]["audio"][0]["filename"] for node in outputs}
    assert re.fullmatch(r"adv_\d{5}\.mp3", names["5"])
    assert re.fullmatch(r"ComfyUI_temp_[a-z]{5}_00001\.flac", names["6"])
    counters = sorted(int(names[n][6:11]) for n in ("2", "3", "4"))
    assert counters == list(range(counters[0], counters[0] + 3))
    expected = {"2": "audio/flac", "3": "audio/mpeg", "4": "audio/ogg", "5": "audio/mpeg"}
    for node, content_type in expected.items():
        item = outputs[node]["audio"][0]
        assert httpx.get(f"{sim.url}/view", params=item).headers["content-type"] == content_type
        duration = float(probe(fetch_output(sim.url, item, tmp_path))["format"]["duration"])
        assert duration == pytest.approx(1.0, abs=0.1)


def test_latents_text_and_preprocessed_images_are_saved(sim: RunningSimulator) -> None:
    answer, messages = run_prompt(sim.url, _captured_prompt("20"), client_id="c20")
    assert types_of(messages) == captured_types("20")
    outputs = _history(sim.url, answer)["outputs"]
    ltxv, ace = outputs["2"]["latents"][0], outputs["4"]["latents"][0]
    assert re.fullmatch(r"ltxv_\d{5}_\.latent", ltxv["filename"])
    assert ltxv["subfolder"] == "conformance/latents"
    # 768x512, 97 frames -> 1x128x13x16x24 float32; 30 s of ACE-Step 1.5 -> 1x64x750.
    for item, shape in ((ltxv, [1, 128, 13, 16, 24]), (ace, [1, 64, 750])):
        data = httpx.get(f"{sim.url}/view", params=item).content
        (length,) = struct.unpack("<Q", data[:8])
        tensor = json.loads(data[8 : 8 + length])["latent_tensor"]
        assert tensor["shape"] == shape and tensor["dtype"] == "F32"
        assert len(data) == 8 + length + int(np.prod(shape)) * 4
    (text,) = outputs["6"]["text"]
    assert isinstance(text, str) and text
    assert re.fullmatch(r"ltxv_preprocess_\d{5}_\.png", outputs["9"]["images"][0]["filename"])


def test_an_uploaded_clip_and_sound_come_back_out(sim: RunningSimulator, tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "ref_clip.mp4", frames=12, fps=12, size=(64, 48), audio="sine")
    upload(sim.url, "ref_clip.mp4", clip.read_bytes(), overwrite="true")
    music = tmp_path / "music.flac"  # the clip's own soundtrack, as flac
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(clip), "-vn", "-c:a", "flac", str(music)],
        check=True,
    )
    upload(sim.url, "ref_music.flac", music.read_bytes(), subfolder="film_conformance")
    answer, messages = run_prompt(sim.url, _captured_prompt("22"), client_id="c22")
    assert types_of(messages) == captured_types("22")
    outputs = _history(sim.url, answer)["outputs"]
    assert len(outputs["3"]["images"]) == 12
    frame = _picture(sim.url, outputs["3"]["images"][0])
    assert frame.size == (64, 48)
    sound = fetch_output(sim.url, outputs["4"]["audio"][0], tmp_path)
    assert float(probe(sound)["format"]["duration"]) == pytest.approx(1.0, abs=0.1)
    assert "12" in outputs["5"]["text"][0]  # the frame rate, shown by PreviewAny
    assert outputs["7"]["audio"][0]["type"] == "temp"


def test_annotated_paths_load_the_servers_own_outputs(sim: RunningSimulator) -> None:
    rendered = {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 24, "height": 16, "batch_size": 1, "color": 0xFF0000},
        },
        "2": {
            "class_type": "SaveImage",
            "inputs": {"images": ["1", 0], "filename_prefix": "src/red"},
        },
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
    }
    outputs = _history(sim.url, run_prompt(sim.url, rendered, client_id="ann")[0])["outputs"]
    saved, preview = outputs["2"]["images"][0], outputs["3"]["images"][0]
    for name in (
        f"src/{saved['filename']} [output]",
        f"{preview['filename']} [temp]",
    ):
        reload = {
            "1": {"class_type": "LoadImage", "inputs": {"image": name}},
            "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
            "3": {
                "class_type": "SaveImage",
                "inputs": {"images": ["2", 0], "filename_prefix": "re"},
            },
        }
        answer, _ = run_prompt(sim.url, reload, client_id="ann")
        assert answer.status_code == 200, answer.text
        (item,) = _history(sim.url, answer)["outputs"]["3"]["images"]
        assert _picture(sim.url, item).convert("RGB").getpixel((3, 3)) == (0, 255, 255)


def test_converted_and_unwrapped_values_are_what_history_and_the_node_get(
    sim: RunningSimulator,
) -> None:
    prompt = {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": "32", "height": 8.0, "batch_size": 1, "color": {"__value__": 255}},
        },
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "cv"}},
    }
    answer, _ = run_prompt(sim.url, prompt, client_id="conv")
    entry = _history(sim.url, answer)
    assert entry["prompt"][2]["1"]["inputs"] == {
        "width": 32,
        "height": 8,
        "batch_size": 1,
        "color": 255,
    }
    image = _picture(sim.url, entry["outputs"]["2"]["images"][0]).convert("RGB")
    assert (image.size, image.getpixel((0, 0))) == ((32, 8), (0, 0, 255))


def test_a_corrupt_upload_fails_in_its_loader_at_execution(sim: RunningSimulator) -> None:
    upload(sim.url, "corrupt_keyframe.png", b"not a png at all", overwrite="true")
    answer, messages = run_prompt(sim.url, _captured_prompt("15"), client_id="c15")
    assert answer.status_code == 200
    error = next(m for m in messages if m["type"] == "execution_error")["data"]
    assert (error["node_id"], error["node_type"]) == ("3", "LoadImage")
    assert error["exception_type"] == "PIL.UnidentifiedImageError"
    assert "cannot identify image file" in error["exception_message"]
    assert sorted(error["executed"]) == ["1", "2"]
    assert error["current_inputs"] == {"image": ["corrupt_keyframe.png"]}
    entry = _history(sim.url, answer)
    assert list(entry["outputs"]) == ["2"] and entry["status"]["status_str"] == "error"
    job = httpx.get(f"{sim.url}/api/jobs/{answer.json()['prompt_id']}").json()
    assert job["status"] == "failed"
