"""Subtitles: SRT and WebVTT that parsers read back line for line; a title-safe burn-in."""

from __future__ import annotations

import html
import itertools
import subprocess
from datetime import timedelta
from pathlib import Path

import av
import numpy as np
import pytest
import srt
import webvtt

from tasks.media import probe
from tasks.media.burnin import burn_subtitles, subtitle_layout, title_safe_box
from tasks.subtitles import (
    MAX_LINE_CHARS,
    SubtitleCue,
    SubtitleError,
    srt_document,
    vtt_document,
    write_subtitles,
)
from tests.film_helpers import frame_rgb
from tests.media_factory import video_packet_digest

CUES = [
    (1.25, 3.5, "ANA", "The boat is late."),
    (4.0, 9.125, "OLD TOM", "Make him follow you in, and keep the lamp burning."),
    (10.0, 11.0, "ANA", "Fish & chips <again>?"),
]
LONG = (12.0, 20.0, "OLD TOM", " ".join(["the tide turns before the lamps are lit"] * 4))


def test_both_files_parse_back_with_one_cue_per_line_in_order_at_the_given_times(
    tmp_path: Path,
) -> None:
    files = write_subtitles(list(reversed(CUES)), tmp_path, "HARBOUR_v001")
    # The SRT was written by `srt`; webvtt-py's own SRT reader parses it independently.
    from_srt = list(webvtt.from_srt(str(files["srt"])))
    from_vtt = list(webvtt.read(str(files["vtt"])))

    for captions in (from_srt, from_vtt):
        assert len(captions) == len(CUES)
        for caption, (start, end, _, _) in zip(captions, CUES, strict=True):
            assert caption.start_time.in_milliseconds() == round(start * 1000)
            assert caption.end_time.in_milliseconds() == round(end * 1000)
    assert [c.voice for c in from_vtt] == [speaker for _, _, speaker, _ in CUES]
    assert [html.unescape(" ".join(c.text.split())) for c in from_vtt] == [t for *_, t in CUES]
    # raw_text: webvtt-py's .text drops anything in <> as a tag, which SRT has no rule for.
    assert [" ".join(c.raw_text.split()) for c in from_srt] == [f"{s}: {t}" for _, _, s, t in CUES]


def test_rows_stay_within_42_characters_and_two_rows(tmp_path: Path) -> None:
    subtitles = list(srt.parse(srt_document([*CUES, LONG])))
    vtt = list(webvtt.from_string(vtt_document([*CUES, LONG])))

    for rows in [s.content.split("\n") for s in subtitles] + [c.text.split("\n") for c in vtt]:
        assert 1 <= len(rows) <= 2
        assert all(len(html.unescape(row)) <= MAX_LINE_CHARS for row in rows)


def test_a_line_too_long_for_two_rows_shares_its_time_across_consecutive_cues() -> None:
    pieces = list(srt.parse(srt_document([LONG])))

    assert len(pieces) > 1
    assert pieces[0].start == timedelta(seconds=LONG[0])
    assert pieces[-1].end == timedelta(seconds=LONG[1])
    assert all(a.end == b.start for a, b in itertools.pairwise(pieces))
    spoken = " ".join(" ".join(p.content.split()) for p in pieces)
    assert spoken == f"OLD TOM: {LONG[3]}"


def test_speaker_names_can_be_left_out() -> None:
    plain = list(srt.parse(srt_document(CUES, speaker_names=False)))
    vtt = list(webvtt.from_string(vtt_document(CUES, speaker_names=False)))

    assert plain[0].content == "The boat is late."
    assert [c.voice for c in vtt] == [None, None, None]


@pytest.mark.parametrize(
    ("cue", "problem"),
    [
        ((3.0, 2.0, "ANA", "Late."), "end after it starts"),
        ((-1.0, 2.0, "ANA", "Late."), "start at 0 s or later"),
        ((1.0, 2.0, "ANA", "   "), "has no words"),
    ],
)
def test_a_bad_cue_is_refused_with_its_number(
    cue: tuple[float, float, str, str], problem: str
) -> None:
    with pytest.raises(SubtitleError, match=f"cue 2 .*{problem}"):
        srt_document([SubtitleCue(start_s=0.0, end_s=1.0, speaker="ANA", text="Hi."), cue])


def _grey_film(dest: Path, width: int, height: int) -> Path:
    """Two seconds of a flat grey picture (only burnt text can change it) with a tone."""
    subprocess.run(
        [
            *("ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y"),
            *("-f", "lavfi", "-i", f"color=gray:size={width}x{height}:rate=24:duration=2"),
            *("-f", "lavfi", "-i", "sine=frequency=330:sample_rate=48000:duration=2"),
            *("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac"),
            str(dest),
        ],
        check=True,
    )
    return dest


@pytest.mark.parametrize("size", [(360, 640), (360, 360), (640, 360)], ids=["9:16", "1:1", "16:9"])
def test_burnt_subtitles_stay_inside_the_title_safe_area(
    size: tuple[int, int], tmp_path: Path
) -> None:
    width, height = size
    src = _grey_film(tmp_path / "grey.mp4", width, height)
    # Wide capitals overflow the width the font size allows for, so libass must wrap them
    # inside the margins: the horizontal edges of the box are tested, not just the bottom.
    cue = (0.0, 1.0, "OLD TOM", " ".join(["WOMMW"] * 10))
    subtitles = write_subtitles([cue], tmp_path, "t")["srt"]
    burnt = burn_subtitles(src, subtitles, tmp_path / "burnt.mp4")

    changed = np.abs(frame_rgb(burnt, 12) - frame_rgb(src, 12)).max(axis=2) > 40
    rows, cols = np.nonzero(changed)
    safe = title_safe_box(width, height)
    assert rows.size > 0, "no subtitle was drawn"
    assert safe.left <= cols.min() and cols.max() < safe.right
    assert safe.top <= rows.min() and rows.max() < safe.bottom
    # The text sits in the lower part of the frame and is gone once its cue has ended.
    assert rows.min() > height / 2
    after_cue = np.abs(frame_rgb(burnt, 36) - frame_rgb(src, 36)).max(axis=2) > 40
    assert not after_cue.any()
    info = probe(burnt)
    assert info.video is not None and (info.video.width, info.video.height) == size
    assert info.video.frames == 48


def test_burnt_subtitles_scale_with_the_frame_and_copy_the_audio(tmp_path: Path) -> None:
    src = _grey_film(tmp_path / "grey.mp4", 360, 640)
    subtitles = write_subtitles([CUES[0]], tmp_path, "t")["srt"]
    burnt = burn_subtitles(src, subtitles, tmp_path / "burnt.mp4")

    assert subtitle_layout(1920, 1080).font_size == 54  # 5% of the height
    assert subtitle_layout(1080, 1920).font_size < subtitle_layout(1920, 1080).font_size
    assert video_packet_digest(burnt) != video_packet_digest(src)
    with av.open(str(src)) as a, av.open(str(burnt)) as b:
        packets_src = [bytes(p) for p in a.demux(a.streams.audio[0]) if p.size]
        packets_out = [bytes(p) for p in b.demux(b.streams.audio[0]) if p.size]
    assert packets_src == packets_out
