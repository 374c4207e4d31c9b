"""``/history`` paging and ``/view`` conversions, as ComfyUI's server does them."""

from __future__ import annotations

import io
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from PIL import Image

from sim.embedded import RunningSimulator, start_simulator
from sim.history_routes import history_page
from sim.settings import SimSettings
from tests.sim_helpers import run_prompt, upload

IDS = ["a", "b", "c", "d", "e"]


@pytest.mark.parametrize(
    ("max_items", "offset", "page"),
    [
        (None, None, IDS),
        (2, None, ["d", "e"]),  # the newest entries
        (9, None, IDS),
        (None, 3, ["d", "e"]),  # an offset alone runs to the end
        (None, -1, IDS),
        (2, 1, ["b", "c"]),
        (2, 4, ["e"]),
        (0, None, []),
        (0, 1, ["b"]),  # ComfyUI checks the count after adding: one entry
        (2, 9, []),
    ],
)
def test_history_pages_by_comfyuis_rules(
    max_items: int | None, offset: int | None, page: list[str]
) -> None:
    assert history_page(IDS, max_items, offset) == page


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSimulator]:
    with start_simulator(SimSettings(gpu_seconds_per_output_second=0)) as running:
        yield running


def _still(colour: int) -> dict[str, object]:
    inputs = {"width": 8, "height": 8, "batch_size": 1, "color": colour}
    return {
        "1": {"class_type": "EmptyImage", "inputs": inputs},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "h"}},
    }


def test_history_route_honours_offset_without_max_items(sim: RunningSimulator) -> None:
    for colour in (1, 2, 3):
        run_prompt(sim.url, _still(colour), client_id="pages")
    ids = list(httpx.get(f"{sim.url}/history").json())
    assert len(ids) == 3
    paged = httpx.get(f"{sim.url}/history", params={"offset": 1}).json()
    assert list(paged) == ids[1:]
    one = httpx.get(f"{sim.url}/history", params={"offset": 0, "max_items": 0}).json()
    assert list(one) == ids[:1]
    assert httpx.get(f"{sim.url}/history", params={"max_items": "x"}).status_code == 500


@pytest.fixture(scope="module")
def rgba(sim: RunningSimulator) -> dict[str, str]:
    pixels = np.zeros((8, 12, 4), dtype=np.uint8)
    pixels[..., 0] = 200
    pixels[..., 3] = 255
    pixels[:4, :, 3] = 64  # the top half is mostly transparent
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGBA").save(buffer, "PNG")
    answer = upload(sim.url, "with_alpha.png", buffer.getvalue(), overwrite="true")
    return {"filename": answer.json()["name"], "type": "input", "subfolder": ""}


def _view(sim: RunningSimulator, item: dict[str, str], **params: str) -> httpx.Response:
    answer = httpx.get(f"{sim.url}/view", params={**item, **params}, timeout=30)
    assert answer.status_code == 200
    return answer


def test_view_sends_one_channel_of_a_picture(sim: RunningSimulator, rgba: dict[str, str]) -> None:
    stored = _view(sim, rgba)
    assert Image.open(io.BytesIO(stored.content)).mode == "RGBA"
    rgb = Image.open(io.BytesIO(_view(sim, rgba, channel="rgb").content))
    assert rgb.mode == "RGB" and rgb.getpixel((0, 0)) == (200, 0, 0)
    alpha = Image.open(io.BytesIO(_view(sim, rgba, channel="a").content))
    assert alpha.mode == "RGBA"
    assert (alpha.getpixel((0, 0))[3], alpha.getpixel((0, 7))[3]) == (64, 255)
    assert alpha.getpixel((0, 7))[:3] == (0, 0, 0)


def test_view_sends_a_preview_in_the_asked_format(
    sim: RunningSimulator, rgba: dict[str, str]
) -> None:
    jpeg = _view(sim, rgba, preview="jpeg;50")
    assert jpeg.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(jpeg.content)).format == "JPEG"
    assert 'filename="with_alpha.jpeg"' in jpeg.headers["content-disposition"]
    webp = _view(sim, rgba, preview="webp")
    assert Image.open(io.BytesIO(webp.content)).format == "WEBP"
    # An unknown format, or asking for alpha, gives webp.
    for params in ({"preview": "gif;80"}, {"preview": "jpeg", "channel": "rgba"}):
        assert _view(sim, rgba, **params).headers["content-type"] == "image/webp"


def test_view_follows_a_name_annotation(sim: RunningSimulator, rgba: dict[str, str]) -> None:
    annotated = {"filename": f"{rgba['filename']} [input]", "type": "output"}
    assert _view(sim, annotated).content == _view(sim, rgba).content
