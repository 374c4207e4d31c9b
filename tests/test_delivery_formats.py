"""Frame shapes other than landscape: the vertical (9:16) example and square (1:1) films plan,
fill their templates, and deliver a contact sheet, burnt subtitles and a review page that keep
the picture's shape. (The square film's folder and page: tests/test_deliver.py, test_review.py.)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import srt
from PIL import Image

from sim.embedded import start_simulator
from sim.inventory import default_models, live_object_info
from sim.settings import SimSettings
from tasks import media
from tasks.comfyui.models import load_models
from tasks.comfyui.validate import validate_prompt
from tasks.comfyui.workflow import TemplateKind, keyframe_prompt, load_template
from tasks.media.burnin import title_safe_box
from tasks.plan import plan_screenplay
from tasks.render import relay_sequence_prompt
from tasks.schema.film_plan import FilmPlan
from tasks.schema.options import FilmOptions
from tasks.schema.outcomes import FilmResult
from tests.chromium import Chromium
from tests.film_helpers import frame_rgb, render

REPO = Path(__file__).resolve().parents[1]
VERTICAL = REPO / "examples" / "night_ferry_vertical.json"
TINY_VERTICAL = (288, 512)  # 9:16, both multiples of 32

FILM_FACTS = """(async () => {
  const v = document.getElementById('film');
  const track = v.querySelector('track');
  await new Promise(done => {
    if (v.readyState >= 1) done(); else v.addEventListener('loadedmetadata', done, {once: true});
    setTimeout(done, 20000);
  });
  for (let i = 0; track && track.readyState < 2 && i < 100; i++) {
    await new Promise(r => setTimeout(r, 100));
  }
  const cues = track && track.track.cues ? [...track.track.cues] : [];
  const box = v.getBoundingClientRect();
  return {width: v.videoWidth, height: v.videoHeight, fit: getComputedStyle(v).objectFit,
    trackState: track ? track.readyState : -1, cues: cues.map(c => [c.startTime, c.text]),
    box: [box.width, box.height], page: document.documentElement.clientWidth};
})()"""


def _example(width: int, height: int, tmp_path: Path) -> Path:
    document = json.loads(VERTICAL.read_text())
    document["render"].update(width=width, height=height)
    path = tmp_path / f"ferry_{width}x{height}.json"
    path.write_text(json.dumps(document))
    return path


@pytest.mark.parametrize("size", [(576, 1024), (512, 512)], ids=["9:16", "1:1"])
def test_the_plan_and_every_template_keep_the_frame_shape(
    size: tuple[int, int], tmp_path: Path
) -> None:
    plan = plan_screenplay(_example(*size, tmp_path), FilmOptions())
    assert (plan.width, plan.height) == size
    assert plan.delivery_profile == "streaming"  # as the example says; no flag overrode it
    models, object_info = load_models("fast"), live_object_info(default_models(), tmp_path)
    prompts = [
        relay_sequence_prompt(load_template(TemplateKind.relay_t2v), models, plan, s, None)
        for s in plan.sequences
    ]
    prompts.append(
        keyframe_prompt(
            load_template(TemplateKind.keyframe), prompt="the ferry deck at night",
            width=plan.width, height=plan.height, seed=1, models=models,
            output_prefix="reelflow/keyframe",
        )
    )  # fmt: skip
    for prompt in prompts:
        result = validate_prompt(prompt, object_info)
        assert result.ok, (result.error, result.node_errors)
        sizes = {
            (node["inputs"]["width"], node["inputs"]["height"])
            for node in prompt.values()
            if "width" in node["inputs"] and "height" in node["inputs"]
        }
        assert sizes == {size}


def test_a_flag_overrides_the_screenplays_profile(tmp_path: Path) -> None:
    path = _example(576, 1024, tmp_path)
    assert plan_screenplay(path, FilmOptions.of(profile="ebu-r128")).delivery_profile == "ebu-r128"
    assert plan_screenplay(path, FilmOptions.of(profile="screenplay")).delivery_profile == (
        "streaming"
    )


@dataclass(frozen=True)
class Vertical:
    film: FilmResult
    folder: Path
    plan: FilmPlan
    page_facts: dict[str, Any]
    problems: list[str]


@pytest.fixture(scope="module")
def vertical(prefect_api: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vertical]:
    """The vertical example's first three scenes at 288x512, rendered, delivered, reviewed."""
    root = tmp_path_factory.mktemp("vertical")
    screenplay = _example(*TINY_VERTICAL, root)
    document = json.loads(screenplay.read_text())
    for scene, seconds in zip(document["scenes"], (3.0, 5.0, 5.0), strict=False):
        scene["duration"] = seconds  # the simulator's voices are quick: room enough
    screenplay.write_text(json.dumps(document))
    with start_simulator(SimSettings(gpu_seconds_per_output_second=0), workdir=root / "sim") as sim:
        film = render(screenplay, root / "out", [sim.url], limit=3, burn_subtitles=True)
    with Chromium() as browser:
        browser.open(Path(film.review))
        facts = browser.evaluate(FILM_FACTS)
        problems = list(browser.problems)
    yield Vertical(film, Path(film.folder), film.plan, facts, problems)


def test_the_vertical_film_is_delivered_upright_at_its_profile(vertical: Vertical) -> None:
    film = media.probe(Path(vertical.film.film))
    assert film.video is not None
    assert (film.video.width, film.video.height) == TINY_VERTICAL
    manifest = json.loads((vertical.folder / "manifest.json").read_text())
    assert manifest["loudness"]["profile"] == "streaming"
    assert manifest["loudness"]["meets_profile"] is True


def test_the_contact_sheet_keeps_vertical_frames_upright_in_square_cells(
    vertical: Vertical,
) -> None:
    with Image.open(vertical.folder / "contact_sheet.png") as sheet:
        pixels = np.asarray(sheet.convert("RGB"))
    # Two sequences: two 320-wide cells, each a 180x320 thumbnail (9:16) over a label strip.
    assert pixels.shape == (320 + 22, 2 * 320, 3)
    for x in (0, 320):
        picture = np.nonzero(pixels[:320, x : x + 320].any(axis=(0, 2)))[0]
        assert picture.min() == 70 and picture.max() == 249  # 180 px wide, centred


def test_burnt_subtitles_fit_the_vertical_title_safe_area(vertical: Vertical) -> None:
    film = Path(vertical.film.film)
    burnt = film.with_name(f"{film.stem}_subtitled.mp4")
    cues = list(srt.parse(film.with_suffix(".srt").read_text()))
    assert len(cues) == 2
    safe = title_safe_box(*TINY_VERTICAL)
    for cue in cues:
        middle = round((cue.start + (cue.end - cue.start) / 2).total_seconds() * 24)
        changed = np.abs(frame_rgb(burnt, middle) - frame_rgb(film, middle)).max(axis=2) > 60
        rows, cols = np.nonzero(changed)
        assert rows.size > 50, f"no subtitle drawn for {cue.content!r}"
        assert safe.left <= cols.min() and cols.max() < safe.right
        assert TINY_VERTICAL[1] / 2 < rows.min() and rows.max() < safe.bottom


def test_the_review_page_plays_the_vertical_film_whole_with_its_subtitles(
    vertical: Vertical,
) -> None:
    facts = vertical.page_facts
    assert (facts["width"], facts["height"]) == TINY_VERTICAL
    # The player keeps the picture whole: its box (page-wide) letterboxes a 9:16 picture.
    assert facts["fit"] == "contain" and facts["box"][0] <= facts["page"]
    assert facts["trackState"] == 2
    lines = [line.line for s in vertical.plan.sequences for line in s.lines]
    assert [" ".join(text.split(">", 1)[-1].split()) for _, text in facts["cues"]] == lines
    assert vertical.problems == []
