"""The final cut of a real animatic: hard cuts, the score under the dialogue, the mix brought to
each delivery profile (checked by two meters), masters, stems, verification."""

from __future__ import annotations

import asyncio
import math
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sim.embedded import RunningSimulator
from tasks import media
from tasks.media.loudness import PROFILES, DeliveryProfile
from tasks.media.loudness_correct import measure_film
from tasks.media.mezzanine import master_path
from tasks.mux import DissolveRefused, MuxError, lines_at_cuts, mux_to_file
from tasks.runtime.studio import Studio
from tasks.schema.film_plan import FilmPlan
from tasks.schema.outcomes import FilmFile, RenderedSequence, SpokenLine
from tasks.schema.refs import MediaRef
from tasks.spoken_lines import sequence_starts
from tests.loudness_meters import METERS_AGREE_LU, ebur128
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

    def mux(
        self,
        name: str,
        score: MediaRef | None,
        clips: list[MediaRef] | None = None,
        **options: object,
    ) -> FilmFile:
        dest = self.out / name
        chosen = clips if clips is not None else self.clips
        return asyncio.run(mux_to_file(self.studio, self.plan, chosen, score, dest, **options))  # type: ignore[arg-type]

    def planned_lines(self) -> tuple[SpokenLine, ...]:
        """The plan's lines in film seconds, as a film nobody listened to speaks them."""
        seconds = [s.seconds for s in self.plan.sequences]
        return tuple(
            SpokenLine(
                sequence=s.index,
                speaker=line.character,
                text=line.line,
                start_s=start + line.start_s,
                end_s=start + line.end_s,
                timed_by="plan",
            )
            for s, start in zip(self.plan.sequences, sequence_starts(seconds), strict=True)
            for line in s.lines
        )

    def silenced(self, keep: int) -> list[MediaRef]:
        """The sequences with every one but `keep` muted (digital silence)."""

        async def mute() -> list[MediaRef]:
            refs = []
            for n, ref in enumerate(self.clips):
                if n == keep:
                    refs.append(ref)
                    continue
                src = await self.studio.store.fetch(ref)
                refs.append(
                    await self.studio.store.put(media.mute_all(src, self.out / f"m{n}.mp4"))
                )
            return refs

        return asyncio.run(mute())


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
    return film.mux("Harbour.mp4", film.score, master="yuv444")


@pytest.fixture(scope="module")
def to_profile(film: Film) -> dict[str, FilmFile]:
    """The scored cut delivered to each profile (the EBU one with its stems), made once."""
    return {
        name: film.mux(
            f"Harbour {name}.mp4",
            film.score,
            profile=profile,
            lines=film.planned_lines(),
            stems=name == "ebu-r128",
        )
        for name, profile in PROFILES.items()
    }


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
    assert scored.master == master_path(scored.path, "yuv444") == film.out / "Harbour_master.mp4"
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


def test_a_film_whose_picture_does_not_decode_is_refused_and_nothing_is_published(
    film: Film,
) -> None:
    """The film is checked while its stems are made from it: a failed check still leaves
    neither the film nor a stem nor the work folder behind."""
    source = asyncio.run(film.studio.store.fetch(film.clips[1]))
    damaged = film.out / "damaged.mp4"
    damaged.parent.mkdir(parents=True, exist_ok=True)
    # Stream copy with bytes of the picture's packets changed: the sound stays intact.
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(source), "-c", "copy", "-bsf:v",
         "noise=amount=200", str(damaged)],
        check=True,
    )  # fmt: skip
    clips = [film.clips[0], asyncio.run(film.studio.store.put(damaged)), film.clips[2]]
    dest = film.out / "Damaged" / "Damaged.mp4"
    with pytest.raises(media.MediaInvalid, match="does not decode cleanly"):
        film.mux("Damaged/Damaged.mp4", film.score, clips, stems=True)
    assert list(dest.parent.iterdir()) == []


def _assert_meets(path: Path, profile: DeliveryProfile, lines: tuple[SpokenLine, ...]) -> float:
    """Both meters put `path` inside `profile` and agree; returns ebur128's loudness."""
    regions = [(line.start_s, line.end_s) for line in lines] if profile.dialogue_gated else []
    ours = measure_film(path, dialogue_regions=regions or None)
    ours_lufs = ours.dialogue_lufs if profile.dialogue_gated else ours.integrated_lufs
    theirs = ebur128(path, regions)
    assert ours_lufs is not None
    assert abs(ours_lufs - theirs.integrated) <= METERS_AGREE_LU, (ours_lufs, theirs)
    for loudness in (ours_lufs, theirs.integrated):
        assert abs(loudness - profile.target_lufs) <= profile.tolerance_lu, (profile.name, loudness)
    assert ours.true_peak_dbtp <= profile.true_peak_dbtp
    assert ebur128(path).true_peak <= profile.true_peak_dbtp
    return theirs.integrated


@pytest.mark.parametrize("name", list(PROFILES))
def test_the_delivered_cut_meets_each_profile_by_both_meters(
    name: str, film: Film, scored: FilmFile, to_profile: dict[str, FilmFile]
) -> None:
    delivered, profile = to_profile[name], PROFILES[name]
    _assert_meets(delivered.path, profile, film.planned_lines())
    record = delivered.loudness
    assert record is not None and record.profile == name and record.meets_profile
    assert record.measured_on == ("dialogue" if profile.dialogue_gated else "programme")
    # "Before" is the mix as mixed: the same film as the uncorrected cut, measured alike.
    assert record.integrated_before_lufs == pytest.approx(
        ebur128(scored.path).integrated, abs=METERS_AGREE_LU
    )
    media.verify_film(delivered.path, expected_duration_s=film.plan.duration_s)
    media.check_distribution(delivered.path, media.probe(delivered.path))


def test_the_stems_are_aligned_with_the_film_and_carry_its_correction(
    to_profile: dict[str, FilmFile],
) -> None:
    delivered = to_profile["ebu-r128"]
    assert delivered.loudness is not None and delivered.loudness.outcome == "gain"
    assert delivered.dialogue_stem is not None and delivered.music_stem is not None
    assert delivered.dialogue_stem.name == "Harbour ebu-r128_DX.wav"
    picture = media.probe(delivered.path).video
    assert picture is not None
    stems = [media.probe(delivered.dialogue_stem), media.probe(delivered.music_stem)]
    for info in stems:
        assert info.audio is not None and (info.audio.codec, info.audio.rate) == ("pcm_s24le", RATE)
        assert info.audio.duration == pytest.approx(picture.duration, abs=1 / RATE)
    # Dialogue + music is the corrected mix (the film's AAC rounds the sum a little).
    mixed = decode_audio(delivered.dialogue_stem) + decode_audio(delivered.music_stem)
    film_audio = decode_audio(delivered.path)[: len(mixed)]
    residual = rms_db(film_audio - mixed[: len(film_audio)])
    assert residual < rms_db(film_audio) - 30


def test_a_film_silent_but_for_one_sequence_still_meets_its_profile(film: Film) -> None:
    delivered = film.mux(
        "One voice.mp4", None, clips=film.silenced(keep=2), profile=PROFILES["ebu-r128"]
    )
    assert delivered.loudness is not None and delivered.loudness.meets_profile
    _assert_meets(delivered.path, PROFILES["ebu-r128"], ())


def test_a_film_with_no_sound_at_all_is_delivered_with_the_reason_it_cannot_meet_it(
    film: Film,
) -> None:
    delivered = film.mux(
        "Silent.mp4", None, clips=film.silenced(keep=-1), profile=PROFILES["ebu-r128"]
    )
    record = delivered.loudness
    assert record is not None and record.outcome == "cannot" and not record.meets_profile
    assert "silent" in record.reason and "check that its sequences have sound" in record.reason
    media.verify_film(delivered.path, expected_duration_s=film.plan.duration_s)


def test_a_dnxhr_master_has_every_frame_of_the_film_and_its_corrected_pcm_mix(
    film: Film,
) -> None:
    delivered = film.mux("Mezz.mp4", film.score, master="dnxhr", profile=PROFILES["streaming"])
    assert delivered.master == film.out / "Mezz_dnxhr.mov" and delivered.master_kind == "dnxhr"
    info, picture = media.probe(delivered.master), media.probe(delivered.path)
    assert info.video is not None and picture.video is not None and info.audio is not None
    assert (info.video.codec, info.video.profile) == ("dnxhd", "DNXHR HQ")
    assert info.video.frames == picture.video.frames
    assert (info.audio.codec, info.audio.rate) == ("pcm_s24le", RATE)
    _assert_meets(delivered.master, PROFILES["streaming"], ())
