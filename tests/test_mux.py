"""The final cut of a real animatic: hard cuts, the score under the dialogue, verification."""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sim.embedded import RunningSimulator
from tasks import media
from tasks.mux import DissolveRefused, MuxError, lines_at_cuts, master_path, mux_to_file
from tasks.runtime.studio import Studio
from tasks.schema.film_plan import FilmPlan
from tasks.schema.outcomes import FilmFile, RenderedSequence
from tasks.schema.refs import MediaRef
from tests.media_factory import make_tone
from tests.sim_helpers import decode_audio, rms_db
from tests.test_score import harbour_plan, offline_studio, render_sequences, start_sim

RATE = 48000


@dataclass
class Film:
    studio: Studio
    plan: FilmPlan
    rendered: list[RenderedSequence]
    score: MediaRef
    score_file: Path
    out: Path

    @property
    def clips(self) -> list[MediaRef]:
        return [r.video for r in self.rendered]

    def mux(self, name: str, score: MediaRef | None, **options: object) -> FilmFile:
        dest = self.out / name
        return asyncio.run(mux_to_file(self.studio, self.plan, self.clips, score, dest, **options))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSimulator]:
    with start_sim() as running:
        yield running


@pytest.fixture(scope="module")
def film(sim: RunningSimulator, tmp_path_factory: pytest.TempPathFactory) -> Film:
    root = tmp_path_factory.mktemp("mux")
    studio = offline_studio(sim.url, root)
    plan = harbour_plan()
    rendered = render_sequences(studio, plan)
    # A steady tone stands in for the score: its level in the mix can be read exactly.
    tone = make_tone(root / "tone.flac", seconds=plan.duration_s + 1.0)
    score = asyncio.run(studio.store.put(tone))
    return Film(studio, plan, rendered, score, tone, root / "out")


@pytest.fixture(scope="module")
def scored(film: Film) -> FilmFile:
    return film.mux("Harbour.mp4", film.score, master=True)


@pytest.fixture(scope="module")
def dialogue_only(film: Film) -> FilmFile:
    return film.mux("Harbour (no score).mp4", None)


def test_a_scored_three_sequence_film_passes_every_distribution_check(
    film: Film, scored: FilmFile
) -> None:
    info = media.probe(scored.path)
    assert info.video is not None and info.audio is not None
    assert (info.video.codec, info.video.profile, info.video.level) == ("h264", "High", 40)
    assert info.video.pix_fmt == "yuv420p"
    assert media.is_faststart(scored.path)
    assert (info.audio.codec, info.audio.rate) == ("aac", RATE)
    assert abs(info.audio.duration - info.video.duration) <= 0.05
    assert abs(info.video.duration - film.plan.duration_s) <= 0.05
    assert scored.duration_s == pytest.approx(sum(scored.sequence_seconds))
    media.verify_decodes(scored.path)
    assert scored.scored and scored.transitions == "cut" and scored.score_gain == 0.25


def test_the_master_is_a_10_bit_444_sibling_of_the_same_length(
    film: Film, scored: FilmFile
) -> None:
    assert scored.master == master_path(scored.path) == film.out / "Harbour_master.mp4"
    master = media.verify_film(scored.master, expected_duration_s=film.plan.duration_s)
    assert master.video is not None and master.video.pix_fmt == "yuv444p10le"
    leftovers = [p.name for p in film.out.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_the_score_is_audible_under_the_dialogue_at_a_quarter_of_its_level(
    film: Film, scored: FilmFile, dialogue_only: FilmFile
) -> None:
    # Sequence 1 (the gulls) has no line: only room tone, and then the score over it.
    quiet = film.plan.sequences[1]
    begin = round((quiet.start_s + 0.5) * RATE)
    end = round((quiet.start_s + quiet.seconds - 0.5) * RATE)
    with_score = rms_db(decode_audio(scored.path)[begin:end])
    without = rms_db(decode_audio(dialogue_only.path)[begin:end])
    tone = rms_db(decode_audio(film.score_file)[begin:end])
    assert with_score - without > 20.0
    assert with_score == pytest.approx(tone + 20 * math.log10(0.25), abs=1.0)


def test_the_dialogue_keeps_its_full_level_through_the_mix(
    film: Film, scored: FilmFile, dialogue_only: FilmFile
) -> None:
    first = film.plan.sequences[0]
    spoken = [round(first.seconds * 0.5 * RATE), round(first.seconds * RATE) - RATE // 2]
    sequence_audio = decode_audio(asyncio.run(film.studio.store.fetch(film.clips[0])))
    dialogue = rms_db(decode_audio(dialogue_only.path)[spoken[0] : spoken[1]])
    assert dialogue == pytest.approx(rms_db(sequence_audio[spoken[0] : spoken[1]]), abs=0.5)


def test_a_dissolve_is_refused_where_a_line_meets_the_cut(film: Film) -> None:
    with pytest.raises(DissolveRefused, match=re.escape('ANA "The boat is late."')) as refused:
        film.mux("Dissolved.mp4", film.score, transitions="dissolve")
    assert 'BO "Here it comes now!"' in str(refused.value)
    assert not (film.out / "Dissolved.mp4").exists()


def test_a_film_without_lines_at_its_cuts_dissolves_and_loses_the_overlaps(film: Film) -> None:
    wordless = film.plan.model_copy(
        update={"sequences": tuple(s.model_copy(update={"lines": ()}) for s in film.plan.sequences)}
    )
    assert lines_at_cuts(wordless, 1.0) == [] and len(lines_at_cuts(film.plan, 1.0)) == 2
    dest = film.out / "Wordless.mp4"
    made = asyncio.run(
        mux_to_file(film.studio, wordless, film.clips, film.score, dest, transitions="dissolve")
    )
    expected = film.plan.duration_s - 2 * 1.0
    assert made.duration_s == pytest.approx(expected, abs=0.05)
    media.verify_film(dest, expected_duration_s=expected)


def test_a_mux_given_the_wrong_number_of_sequences_writes_nothing(film: Film) -> None:
    dest = film.out / "Short.mp4"
    with pytest.raises(MuxError, match="2 sequence files for 3 sequences"):
        asyncio.run(mux_to_file(film.studio, film.plan, film.clips[:2], None, dest))
    assert not dest.exists()
