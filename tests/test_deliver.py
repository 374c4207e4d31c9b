"""The film folder: a real animatic rendered by the film flow and delivered as a post house and a
platform take it (1:1 frames): loudness met by two meters, subtitles, stems, timelines, a
ProRes master, burnt-in subtitles, one naming scheme, records that say it all."""

from __future__ import annotations

import asyncio
import html
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import av
import httpx
import numpy as np
import opentimelineio as otio
import pytest
import srt
import webvtt
from PIL import Image
from prefect.settings import get_current_settings

from sim.embedded import start_simulator
from sim.settings import SimSettings
from tasks import media
from tasks.deliver.folder import REPORT_ARTIFACT_KEY
from tasks.deliver.names import film_names
from tasks.media.burnin import title_safe_box
from tasks.media.loudness import PROFILES
from tasks.media.loudness_correct import measure_film
from tasks.schema.outcomes import FilmResult, SequenceResult
from tests.film_helpers import frame_rgb, render, write_screenplay
from tests.loudness_meters import METERS_AGREE_LU, ebur128
from tests.sim_helpers import decode_audio, rms_db

TITLE = "Harbour: A Test Reel"
NAME = "HARBOUR_A_TEST_REEL"
SCENES = [
    {
        "description": "Ana stands on the pier at dusk, waving.",
        "duration": 2.0,  # too short for the line: the first render cuts it off, a second take
        "characters": ["ANA"],
        "dialogue": [{"character": "ANA", "line": "The harbour lights are going out tonight."}],
    },
    {"description": "Gulls wheel over an empty quay.", "duration": 3.0, "relay_break": True},
    {
        "description": "Bo runs along the quay. After speaking he waves.",
        "duration": 5.0,
        "characters": ["BO"],
        "relay_break": True,
        "dialogue": [{"character": "BO", "line": "Wait for me, I am coming!"}],
    },
]
TOLERANCE_S = 0.3
VOICE_DBFS = -40.0  # the simulator's room tone sits at -66 dBFS, its voices near -20


@dataclass(frozen=True)
class Delivered:
    film: FilmResult
    folder: Path
    artifact_markdown: str

    @property
    def results(self) -> list[SequenceResult]:
        return sorted(
            (r for chain in self.film.chains for r in chain.sequences),
            key=lambda r: r.sequence.index,
        )

    def file(self, name: str) -> Path:
        return self.folder / name

    @property
    def sequences(self) -> list[Path]:
        return sorted((self.folder / "sequences").glob("*.mp4"))

    @property
    def manifest(self) -> dict[str, object]:
        return json.loads(self.file("manifest.json").read_text())  # type: ignore[no-any-return]


async def report_artifact() -> str:
    """The report artifact's markdown, read straight from the API.

    Prefect 3.8.8's own `Artifact.aget` sends `flow_runs: null`, which its server refuses.
    """
    query = {"artifacts": {"key": {"any_": [REPORT_ARTIFACT_KEY]}}, "sort": "CREATED_DESC"}
    async with httpx.AsyncClient(base_url=str(get_current_settings().api.url)) as api:
        found = (await api.post("/artifacts/filter", json={**query, "limit": 1})).json()
    return str(found[0]["data"]) if found else ""


@pytest.fixture(scope="module")
def delivered(prefect_api: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Delivered]:
    root = tmp_path_factory.mktemp("deliver")
    screenplay = write_screenplay(root, SCENES, title=TITLE, score={"key": "D minor", "bpm": 84})
    settings = SimSettings(gpu_seconds_per_output_second=0)
    with start_simulator(settings, workdir=root / "sim") as sim:
        film = render(screenplay, root / "out", [sim.url], master="prores", burn_subtitles=True)
    yield Delivered(film, Path(film.folder), asyncio.run(report_artifact()))


def test_the_folder_holds_every_deliverable_named_by_the_scheme(delivered: Delivered) -> None:
    names = sorted(
        p.relative_to(delivered.folder).as_posix()
        for p in delivered.folder.rglob("*")
        if p.relative_to(delivered.folder).parts[0] != "review"
    )
    film = f"{NAME}_v001"
    assert names == sorted(
        [
            f"{film}.edl", f"{film}.fcpxml", f"{film}.mp4", f"{film}.otio", f"{film}.srt",
            f"{film}.vtt", f"{film}.xml", f"{film}_DX.wav", f"{film}_MX.wav",
            f"{film}_prores.mov", f"{film}_score.flac", f"{film}_subtitled.mp4",
            "contact_sheet.png", "manifest.json", "report.md", "review.html",
            # Each chain's start image, which the run also shows as a picture in Prefect.
            "keyframes", "keyframes/chain0.png",
            "sequences",
            # The first sequence took two renders (its line was cut off): its second version.
            f"sequences/{NAME}_SEQ0010_v002.mp4",
            f"sequences/{NAME}_SEQ0020_v001.mp4",
            f"sequences/{NAME}_SEQ0030_v001.mp4",
        ]
    )  # fmt: skip
    assert Path(delivered.film.film) == delivered.file(f"{film}.mp4")
    path = delivered.file(f"{film}.mp4")
    media.check_distribution(path, media.verify_film(path, expected_duration_s=None))


def test_the_film_meets_ebu_r128_by_both_meters_and_every_record_says_so(
    delivered: Delivered,
) -> None:
    film, profile = delivered.file(f"{NAME}_v001.mp4"), PROFILES["ebu-r128"]
    ours, theirs = measure_film(film), ebur128(film)
    assert abs(ours.integrated_lufs - theirs.integrated) <= METERS_AGREE_LU
    for loudness in (ours.integrated_lufs, theirs.integrated):
        assert abs(loudness - profile.target_lufs) <= profile.tolerance_lu
    assert max(ours.true_peak_dbtp, theirs.true_peak) <= profile.true_peak_dbtp

    record = delivered.manifest["loudness"]
    assert isinstance(record, dict)
    assert record["profile"] == "ebu-r128" and record["meets_profile"] is True
    assert record["integrated_after_lufs"] == pytest.approx(ours.integrated_lufs, abs=0.01)
    assert record["true_peak_after_dbtp"] == pytest.approx(ours.true_peak_dbtp, abs=0.01)
    # The mix as mixed was quieter than the profile: it was raised by a plain gain.
    assert record["integrated_before_lufs"] < -23.5 and record["outcome"] == "gain"
    assert record["loudness_range_lu"] == pytest.approx(theirs.lra, abs=1.0)
    sentence = (
        f"{record['integrated_before_lufs']:.1f} LUFS / {record['true_peak_before_dbtp']:.1f} "
        f"dBTP before, {record['integrated_after_lufs']:.1f} LUFS / "
        f"{record['true_peak_after_dbtp']:.1f} dBTP after"
    )
    assert sentence in delivered.file("report.md").read_text()
    assert sentence in delivered.artifact_markdown
    page = html.unescape(delivered.file("review.html").read_text())
    before, after = record["integrated_before_lufs"], record["integrated_after_lufs"]
    assert f"{before:.1f} → {after:.1f} LUFS" in page


def _film_starts(delivered: Delivered) -> tuple[list[float], list[float]]:
    """Where each delivered sequence starts in the film and how long it is, from the files."""
    lengths = [media.probe(path).video.duration for path in delivered.sequences]  # type: ignore[union-attr]
    return [sum(lengths[:n]) for n in range(len(lengths))], lengths


def test_subtitles_have_one_cue_per_spoken_line_in_film_order_at_the_heard_times(
    delivered: Delivered,
) -> None:
    from_srt = list(srt.parse(delivered.file(f"{NAME}_v001.srt").read_text()))
    from_vtt = list(webvtt.read(str(delivered.file(f"{NAME}_v001.vtt"))))
    results = delivered.results
    lines = [(r, line) for r in results for line in r.sequence.lines]
    assert len(from_srt) == len(from_vtt) == len(lines) == 2
    assert [" ".join(s.content.split()) for s in from_srt] == [
        f"{line.character}: {line.line}" for _, line in lines
    ]
    assert [c.voice for c in from_vtt] == [line.character for _, line in lines]
    assert [" ".join(c.text.split()) for c in from_vtt] == [line.line for _, line in lines]

    starts, lengths = _film_starts(delivered)
    dialogue = decode_audio(delivered.file(f"{NAME}_v001_DX.wav"))
    for cue, caption, (result, _) in zip(from_srt, from_vtt, lines, strict=True):
        begin, end = cue.start.total_seconds(), cue.end.total_seconds()
        assert caption.start_time.in_milliseconds() == round(begin * 1000)
        n = result.sequence.index
        # Inside the sequence (to the millisecond subtitle times are written in).
        assert starts[n] - 0.001 <= begin < end <= starts[n] + lengths[n] + 0.001
        # The ASR's word times of the take in the film, moved to film time.
        [heard] = [v for v in result.attempts[-1].verdict.lines if v.span is not None]
        assert heard.span is not None
        assert abs(begin - (starts[n] + heard.span.start)) <= TOLERANCE_S
        assert abs(end - (starts[n] + heard.span.end)) <= TOLERANCE_S
        # And the voice itself: it sounds only while the cue is up (give or take 0.3 s).
        frames = dialogue[round(starts[n] * 48000) : round((starts[n] + lengths[n]) * 48000)]
        loud = [
            i / 100
            for i in range(len(frames) // 480)
            if rms_db(frames[i * 480 : (i + 1) * 480]) > VOICE_DBFS
        ]
        assert loud, "the sequence's line is not heard in the dialogue stem"
        assert starts[n] + loud[0] >= begin - TOLERANCE_S
        assert starts[n] + loud[-1] <= end + TOLERANCE_S


@pytest.mark.parametrize("key", ["otio", "fcpxml", "xml", "edl"])
def test_each_timeline_reads_back_with_one_clip_per_delivered_sequence_to_theframe_rgb(
    key: str, delivered: Delivered
) -> None:
    path = delivered.file(f"{NAME}_v001.{key}")
    timeline = otio.adapters.read_from_file(str(path))
    [picture] = timeline.video_tracks()
    clips = list(picture.find_clips())
    assert len(clips) == len(delivered.sequences) == 3
    for clip, file in zip(clips, delivered.sequences, strict=True):
        frames = media.probe(file).video.frames  # type: ignore[union-attr]
        assert clip.duration().rate == 24 and clip.duration().value == frames
        assert clip.name == file.stem
        url = clip.media_reference.target_url
        parsed = urlparse(url)
        source = Path(unquote(parsed.path)) if parsed.scheme == "file" else path.parent / url
        assert source.resolve() == file.resolve()
    if key == "edl":
        text = path.read_text()
        assert [c.metadata["cmx_3600"]["reel"] for c in clips] == ["SEQ0010", "SEQ0020", "SEQ0030"]
        for file in delivered.sequences:
            assert f"* FROM CLIP NAME:  {file.stem}" in text
            assert f"* FROM CLIP: sequences/{file.name}" in text


def test_the_prores_master_has_every_frame_and_the_delivered_mix_as_pcm(
    delivered: Delivered,
) -> None:
    master = media.probe(delivered.file(f"{NAME}_v001_prores.mov"))
    film = media.probe(delivered.file(f"{NAME}_v001.mp4"))
    assert master.video is not None and film.video is not None and master.audio is not None
    assert (master.video.codec, master.video.profile, master.video.pix_fmt) == (
        "prores", "HQ", "yuv422p10le",
    )  # fmt: skip
    assert master.video.frames == film.video.frames
    assert (master.audio.codec, master.audio.rate) == ("pcm_s24le", 48000)
    loudness = ebur128(delivered.file(f"{NAME}_v001_prores.mov"))
    assert abs(loudness.integrated + 23.0) <= 0.5 and loudness.true_peak <= -1.0


def test_the_burnt_copy_shows_each_line_inside_the_title_safe_area(delivered: Delivered) -> None:
    film, burnt = delivered.file(f"{NAME}_v001.mp4"), delivered.file(f"{NAME}_v001_subtitled.mp4")
    media.check_distribution(burnt, media.verify_film(burnt, expected_duration_s=None))
    cue = next(srt.parse(delivered.file(f"{NAME}_v001.srt").read_text()))
    middle = round((cue.start + (cue.end - cue.start) / 2).total_seconds() * 24)
    changed = np.abs(frame_rgb(burnt, middle) - frame_rgb(film, middle)).max(axis=2) > 60
    rows, cols = np.nonzero(changed)
    safe = title_safe_box(256, 256)
    assert rows.size > 50, "no subtitle drawn while the first line is spoken"
    assert safe.left <= cols.min() and cols.max() < safe.right
    assert rows.min() > 128 and rows.max() < safe.bottom
    with av.open(str(film)) as a, av.open(str(burnt)) as b:
        assert [bytes(p) for p in a.demux(a.streams.audio[0]) if p.size] == [
            bytes(p) for p in b.demux(b.streams.audio[0]) if p.size
        ]


def test_the_stems_sum_to_the_delivered_mix_sample_aligned(delivered: Delivered) -> None:
    film = delivered.file(f"{NAME}_v001.mp4")
    stems = [delivered.file(f"{NAME}_v001_DX.wav"), delivered.file(f"{NAME}_v001_MX.wav")]
    picture = media.probe(film).video
    assert picture is not None
    for stem in stems:
        info = media.probe(stem).audio
        assert info is not None and (info.codec, info.rate) == ("pcm_s24le", 48000)
        assert round(info.duration * 48000) == round(picture.duration * 48000)
    mixed = decode_audio(stems[0]) + decode_audio(stems[1])
    heard = decode_audio(film)[: len(mixed)]
    assert rms_db(heard - mixed[: len(heard)]) < rms_db(heard) - 30


def test_the_contact_sheet_shows_the_first_frame_of_each_square_sequence(
    delivered: Delivered,
) -> None:
    with Image.open(delivered.file("contact_sheet.png")) as sheet:
        pixels = np.asarray(sheet.convert("RGB"))
    # Three 256x256 sequences: a 2x2 grid of 320x320 thumbnails with a 22 px label strip.
    assert pixels.shape == (2 * 342, 640, 3)
    cells = [pixels[y : y + 320, x : x + 320] for y in (0, 342) for x in (0, 320)]
    assert [bool(cell.any()) for cell in cells] == [True, True, True, False]
    assert pixels[320:342, :320].any()  # the label under the first thumbnail


def test_the_manifest_names_every_file_and_each_sequence_with_its_version(
    delivered: Delivered,
) -> None:
    manifest = delivered.manifest
    film = manifest["film"]
    assert isinstance(film, dict)
    assert film["name"] == f"{NAME}_v001" and film["master_kind"] == "prores"
    listed = [film["file"], film["master"], film["subtitled"], *film["subtitles"], *film["stems"]]
    listed += list(film["timelines"].values())
    assert all(delivered.file(name).is_file() for name in listed) and len(listed) == 11
    sequences = manifest["sequences"]
    assert isinstance(sequences, list)
    assert [(s["name"], s["version"]) for s in sequences] == [
        (f"{NAME}_SEQ0010_v002", 2), (f"{NAME}_SEQ0020_v001", 1), (f"{NAME}_SEQ0030_v001", 1),
    ]  # fmt: skip
    assert [s["seed"] for s in sequences] == [r.sequence.seed for r in delivered.results]
    assert manifest["spoken_lines"] == 2


def test_the_report_and_the_review_page_list_every_deliverable(delivered: Delivered) -> None:
    report = delivered.file("report.md").read_text()
    links = re.findall(r"\]\(<([^>]+)>\)", report)
    # 12 media files, the contact sheet and the manifest, then the 3 sequences.
    assert len(links) == 14 + 3
    assert all(delivered.file(link).is_file() for link in links)
    assert f"**{NAME}_v001**" in report
    assert delivered.artifact_markdown.startswith(f"# {TITLE}")
    page = delivered.file("review.html").read_text()
    downloads = re.findall(r"<li><a href='([^']+)' download>", page)
    assert set(links) - {f"sequences/{p.name}" for p in delivered.sequences} < set(downloads)
    assert "report.md" in downloads
    for name in (p.stem for p in delivered.sequences):
        assert f"<code>{name}.mp4</code>" in page


def test_versions_count_every_take_and_re_roll(delivered: Delivered) -> None:
    first = film_names(TITLE, delivered.results)
    assert (first.film, first.sequence_versions) == (f"{NAME}_v001", (2, 1, 1))
    rolled = film_names(TITLE, delivered.results, rerolls=[1, 1, 2])
    assert rolled.film == f"{NAME}_v004"
    assert rolled.sequences == (
        f"{NAME}_SEQ0010_v002", f"{NAME}_SEQ0020_v003", f"{NAME}_SEQ0030_v002",
    )  # fmt: skip
