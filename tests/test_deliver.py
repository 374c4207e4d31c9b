"""The film folder: a real animatic rendered, scored, cut and delivered inside a flow run."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import httpx
import numpy as np
import opentimelineio as otio
import pytest
from PIL import Image
from prefect import flow
from prefect.settings import get_current_settings

from blocks.comfyui import ComfyUIServer
from flows.run import build_studio
from sim.embedded import RunningSimulator
from tasks import media
from tasks.deliver.folder import REPORT_ARTIFACT_KEY, write_film_folder
from tasks.deliver.names import film_path
from tasks.mux import mux_to_file
from tasks.render import render_sequence
from tasks.runtime.store import local_storage
from tasks.runtime.studio import Studio
from tasks.schema.film_plan import FilmPlan
from tasks.schema.outcomes import Deliverables
from tasks.score import render_score
from tests.test_score import harbour_plan, start_sim


@dataclass
class Delivered:
    studio: Studio
    plan: FilmPlan
    folder: Path
    files: Deliverables
    artifact_markdown: str


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSimulator]:
    with start_sim() as running:
        yield running


async def report_artifact() -> str:
    """The report artifact's markdown, read straight from the API.

    Prefect 3.8.8's own `Artifact.aget` sends `flow_runs: null`, which its server refuses.
    """
    query = {"artifacts": {"key": {"any_": [REPORT_ARTIFACT_KEY]}}, "sort": "CREATED_DESC"}
    async with httpx.AsyncClient(base_url=str(get_current_settings().api.url)) as api:
        found = (await api.post("/artifacts/filter", json={**query, "limit": 1})).json()
    return str(found[0]["data"]) if found else ""


@pytest.fixture(scope="module")
def delivered(
    sim: RunningSimulator, prefect_api: None, tmp_path_factory: pytest.TempPathFactory
) -> Delivered:
    root = tmp_path_factory.mktemp("deliver")
    plan = harbour_plan()
    folder = root / "harbour"

    @flow(name="deliver-test")
    async def make_film() -> tuple[Studio, Deliverables]:
        studio = await build_studio(
            [ComfyUIServer(url=sim.url)], local_storage(root / "store"), root / "scratch", "fast"
        )
        rendered = [await render_sequence.fn(studio, plan, s, None) for s in plan.sequences]
        clips = [r.video for r in rendered]
        local = [await studio.store.fetch(ref) for ref in clips]
        measured = [media.probe(p).video.duration for p in local]  # type: ignore[union-attr]
        score = await render_score(studio, plan, measured)
        assert score is not None
        cut = await mux_to_file(studio, plan, clips, score.score, film_path(folder, plan.title))
        files = await write_film_folder(
            studio, plan, folder, film=cut, sequences=clips, renders=rendered, score=score,
            animatic=True, timings={"render": 4.0, "score": 2.5}, cached_sequences={1},
        )  # fmt: skip
        return studio, files

    async def run() -> tuple[Studio, Deliverables, str]:
        studio, files = await make_film()
        return studio, files, await report_artifact()

    studio, files, markdown = asyncio.run(run())
    return Delivered(studio, plan, folder, files, markdown)


def test_the_folder_holds_every_deliverable_under_its_expected_name(
    delivered: Delivered,
) -> None:
    names = sorted(p.relative_to(delivered.folder).as_posix() for p in delivered.folder.rglob("*"))
    assert names == [
        "Harbour_ A Test Reel.mp4",
        "contact_sheet.png",
        "manifest.json",
        "report.md",
        "score.flac",
        "sequences",
        "sequences/seq000.mp4",
        "sequences/seq001.mp4",
        "sequences/seq002.mp4",
        "timeline.otio",
    ]
    media.verify_film(delivered.files.film, expected_duration_s=delivered.plan.duration_s)


def test_the_timeline_reads_back_with_one_clip_per_sequence_of_its_length(
    delivered: Delivered,
) -> None:
    timeline = otio.adapters.read_from_file(str(delivered.files.timeline))
    picture, music = timeline.tracks
    assert picture.kind == otio.schema.TrackKind.Video and music.kind == otio.schema.TrackKind.Audio
    clips = list(picture.find_clips())
    assert len(clips) == len(delivered.plan.sequences)
    for clip, path in zip(clips, delivered.files.sequences, strict=True):
        source = Path(unquote(urlparse(clip.media_reference.target_url).path))
        assert source == path.resolve()
        video = media.probe(path).video
        assert video is not None
        assert clip.duration().to_seconds() == pytest.approx(video.duration, abs=1e-3)
    score_clip = next(iter(music.find_clips()))
    assert score_clip.duration().to_seconds() == pytest.approx(delivered.plan.duration_s, abs=0.05)
    assert timeline.duration().to_seconds() == pytest.approx(delivered.plan.duration_s, abs=0.05)


def test_the_timeline_marks_every_scene_start_and_every_line(delivered: Delivered) -> None:
    timeline = otio.adapters.read_from_file(str(delivered.files.timeline))
    clips = list(timeline.tracks[0].find_clips())
    scene_marks = [[m.name for m in c.markers if m.name.startswith("scene")] for c in clips]
    assert scene_marks == [["scene 0", "scene 1"], ["scene 2"], ["scene 3"]]
    second_scene = next(m for m in clips[0].markers if m.name == "scene 1")
    assert (
        second_scene.marked_range.start_time.value == delivered.plan.sequences[0].segments[0].frames
    )
    lines = [m.name for c in clips for m in c.markers if not m.name.startswith("scene")]
    assert lines == ['ANA: "The boat is late."', 'BO: "Here it comes now!"']


def test_the_contact_sheet_shows_the_first_frame_of_each_sequence(delivered: Delivered) -> None:
    with Image.open(delivered.files.contact_sheet) as sheet:
        pixels = np.asarray(sheet.convert("RGB"))
    # Three 256x256 sequences: a 2x2 grid of 320x320 thumbnails with a 22 px label strip.
    assert pixels.shape == (2 * 342, 640, 3)
    cells = [pixels[y : y + 320, x : x + 320] for y in (0, 342) for x in (0, 320)]
    assert [bool(cell.any()) for cell in cells] == [True, True, True, False]
    assert pixels[320:342, :320].any()  # the label under the first thumbnail


def test_the_manifest_records_seeds_templates_models_timings_and_cache_hits(
    delivered: Delivered,
) -> None:
    manifest = json.loads(delivered.files.manifest.read_text())
    plan, studio = delivered.plan, delivered.studio
    assert [s["seed"] for s in manifest["sequences"]] == [s.seed for s in plan.sequences]
    assert [c["seed"] for c in manifest["cues"]] == [c.seed for c in plan.cues]
    assert (
        manifest["templates"]["acestep15_cue"]["sha256"]
        == (
            studio.templates[next(iter(k for k in studio.templates if k.value == "acestep15_cue"))]
        ).template_hash
    )
    assert manifest["models"]["acestep15"]["variant"] == "xl_turbo"
    assert manifest["servers"] == [server.url for server in studio.servers]
    assert manifest["timings_s"] == {"render": 4.0, "score": 2.5}
    assert manifest["cache_hits"] == {"sequences": 1, "cues": 0}
    assert manifest["animatic"] is True and manifest["score_source"] == "default"


def test_the_report_links_everything_and_is_published_as_a_flow_artifact(
    delivered: Delivered,
) -> None:
    report = delivered.files.report.read_text()
    links = re.findall(r"\]\(<([^>]+)>\)", report)
    assert len(links) == 8
    assert all((delivered.folder / link).is_file() for link in links)
    assert "Animatic" in report
    assert delivered.artifact_markdown.startswith("# Harbour: A Test Reel")
    assert str(delivered.files.timeline) in delivered.artifact_markdown
