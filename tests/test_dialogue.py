"""The dialogue check on real espeak-ng speech heard by the embedded model (the judgement on
hand-written transcripts is in test_dialogue_judge.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from tasks.dialogue.judge import check_sequence, is_silent
from tasks.dialogue.policy import DialoguePolicy
from tasks.dialogue.text_norm import normalize_text
from tasks.dialogue.truncation import segment_levels
from tasks.media import read_audio
from tasks.plan.lint import required_seconds
from tasks.runtime.asr import EmbeddedTranscriber, Segment, Transcript
from tasks.schema.verdicts import ScriptedLine, SequenceVerdict
from tests.data.dialogue_labels import clips
from tests.media_factory import speech_wav

RATE = 48000
TITLE = "The Lighthouse Keeper"
DESCRIPTION = (
    "Wide establishing shot. Waves crash against the rocks below the lighthouse as the last "
    "daylight fades; the lamp at the top flickers on"
)
LINE = "Make him follow you in before the storm breaks"


@pytest.fixture(scope="module")
def asr() -> EmbeddedTranscriber:
    return EmbeddedTranscriber()


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dialogue")


def voice(studio: Path, text: str) -> np.ndarray:
    """espeak-ng speaking `text`, as mono 48 kHz samples."""
    name = f"{abs(hash(text))}.wav"
    return read_audio(speech_wav(studio / name, text), mono=True)[:, 0]


def sequence(
    studio: Path,
    name: str,
    seconds: float,
    parts: list[tuple[float, np.ndarray]],
    *,
    music_db: float | None = None,
    noise_dbfs: float | None = None,
) -> Path:
    """A sequence's audio track: voices placed at their times, over music or noise."""
    track = np.zeros(int(seconds * RATE), dtype=np.float32)
    for at, samples in parts:
        start = int(at * RATE)
        track[start : start + len(samples)] += samples[: len(track) - start]
    if music_db is not None:
        # An A-minor chord then a C-major one, music_db below the speech's RMS.
        t = np.arange(len(track)) / RATE
        chords = [(220.0, 261.63, 329.63), (261.63, 329.63, 392.0)]
        half = len(track) // 2
        music = np.zeros_like(track)
        for k, chord in enumerate(chords):
            piece = slice(k * half, (k + 1) * half if k == 0 else len(track))
            music[piece] = sum(np.sin(2 * np.pi * f * t[piece]) for f in chord)
        speech_rms = np.sqrt(np.mean(np.concatenate([p for _, p in parts]) ** 2))
        music *= speech_rms * 10 ** (music_db / 20) / np.sqrt(np.mean(music**2))
        track += music
    if noise_dbfs is not None:
        rng = np.random.default_rng(7)
        track += (rng.standard_normal(len(track)) * 10 ** (noise_dbfs / 20)).astype(np.float32)
    path = studio / f"{name}.wav"
    soundfile.write(path, track, RATE, subtype="FLOAT")
    return path


def check(
    asr: EmbeddedTranscriber,
    audio: Path,
    lines: list[str],
    *,
    spans: list[tuple[float, float]] | None = None,
) -> SequenceVerdict:
    """The check as the flow runs it: the transcript, and the sound levels at segment ends."""
    samples = read_audio(audio)
    spans = spans or [(0.0, len(samples) / RATE)]
    return check_sequence(
        [ScriptedLine(segment=i, character="EDDA", line=text) for i, text in enumerate(lines)],
        asr.transcribe(audio),
        silent=is_silent(samples, RATE),
        scene_descriptions=[DESCRIPTION],
        title=TITLE,
        segment_spans=spans,
        segment_levels=segment_levels(samples, RATE, spans),
    )


def test_a_line_spoken_as_written_is_kept(asr: EmbeddedTranscriber, studio: Path) -> None:
    spoken = voice(studio, LINE)
    audio = sequence(studio, "ok", 5.0, [(0.5, spoken)])
    verdict = check(asr, audio, [LINE])
    assert (verdict.kind, verdict.action) == ("ok", "keep")
    line = verdict.lines[0]
    assert line.wer is not None and line.wer <= 0.15
    # Whisper's first word often starts early; where the line ends is what a cut needs.
    assert line.span is not None and line.span.start <= 1.0
    assert line.span.end == pytest.approx(0.5 + len(spoken) / RATE, abs=0.5)


def test_a_line_cut_short_is_truncated_and_the_lost_words_are_named(
    asr: EmbeddedTranscriber, studio: Path
) -> None:
    spoken = voice(studio, LINE)
    # The segment ends where the voice is cut, as a render cuts a line at its segment's end.
    cut = spoken[: int(len(spoken) * 0.6)]
    verdict = check(asr, sequence(studio, "cut", 0.3 + len(cut) / RATE, [(0.3, cut)]), [LINE])
    line = verdict.lines[0]
    assert line.kind == "truncated"
    expected = normalize_text(LINE)
    assert 2 <= len(line.missing_words) <= 5
    assert line.missing_words == expected[-len(line.missing_words) :]
    assert verdict.action == "rerender"
    assert verdict.rerender is not None and verdict.rerender.attempt == 2
    rule = required_seconds(LINE, DialoguePolicy().duration_rule)
    assert verdict.rerender.segment_seconds == {0: rule + 1.0}


def test_gibberish_instead_of_the_line_is_a_mismatch(
    asr: EmbeddedTranscriber, studio: Path
) -> None:
    babble = voice(studio, "blorfa quantoo mizzle praxu tendo flimbor grasko wendup")
    verdict = check(asr, sequence(studio, "babble", 5.0, [(0.5, babble)]), [LINE])
    assert verdict.lines[0].kind == "mismatch"
    assert verdict.action == "rerender"
    assert verdict.lines[0].heard


@pytest.mark.parametrize("noise_dbfs", [None, -60.0])
def test_silence_and_quiet_noise_are_silent_whatever_the_asr_claims(
    studio: Path, noise_dbfs: float | None
) -> None:
    audio = sequence(studio, f"quiet{noise_dbfs}", 4.0, [], noise_dbfs=noise_dbfs)
    samples = read_audio(audio)
    assert is_silent(samples, RATE)
    # What Whisper models say over silence; the energy gate overrules it.
    junk = Transcript(text="You.", segments=[Segment(start=0.0, end=2.0, text="You.")])
    quiet = check_sequence(
        [], junk, silent=True, scene_descriptions=[DESCRIPTION], title=TITLE,
        segment_spans=[(0.0, 4.0)],
    )  # fmt: skip
    assert (quiet.kind, quiet.action, quiet.heard) == ("silent", "keep", "")
    lost = check_sequence(
        [ScriptedLine(segment=0, line=LINE)], junk, silent=True,
        scene_descriptions=[DESCRIPTION], title=TITLE, segment_spans=[(0.0, 4.0)],
    )  # fmt: skip
    assert lost.lines[0].kind == "missing"
    assert lost.action == "rerender"


def test_speech_is_not_silent(studio: Path) -> None:
    audio = sequence(studio, "loud", 4.0, [(0.5, voice(studio, LINE))])
    assert not is_silent(read_audio(audio), RATE)


def test_narration_drawn_from_the_scene_description_is_kept(
    asr: EmbeddedTranscriber, studio: Path
) -> None:
    narrator = voice(studio, "The waves crash against the rocks as the daylight fades")
    verdict = check(asr, sequence(studio, "narration", 5.0, [(0.5, narrator)]), [])
    assert verdict.kind == "narration"
    assert verdict.action == "keep"
    assert verdict.speech[0].overlap is not None and verdict.speech[0].overlap >= 0.5


def test_unrelated_speech_in_a_scene_without_dialogue_mutes_the_sequence(
    asr: EmbeddedTranscriber, studio: Path
) -> None:
    salad = voice(studio, "Call our hotline today for cheap printer insurance and a free toaster")
    verdict = check(asr, sequence(studio, "salad", 6.0, [(0.5, salad)]), [])
    assert verdict.kind == "word_salad"
    assert verdict.action == "mute_sequence"


def test_a_title_read_aloud_at_the_start_is_muted_by_its_time_range(
    asr: EmbeddedTranscriber, studio: Path
) -> None:
    title = voice(studio, "The Lighthouse Keeper.")
    line_at = 0.3 + len(title) / RATE + 1.0
    audio = sequence(studio, "title", 7.0, [(0.3, title), (line_at, voice(studio, LINE))])
    verdict = check(asr, audio, [LINE])
    leak = verdict.speech[0]
    assert leak.kind == "title_leak"
    assert normalize_text(leak.heard) == normalize_text(TITLE)
    assert 0.0 <= leak.span.start <= 0.6
    assert 0.3 + len(title) / RATE - 0.5 <= leak.span.end <= line_at
    assert verdict.lines[0].kind == "ok"
    assert (verdict.kind, verdict.action) == ("title_leak", "mute_range")
    assert verdict.mute_ranges[0].end <= line_at


def test_a_line_under_music_is_still_kept(asr: EmbeddedTranscriber, studio: Path) -> None:
    audio = sequence(studio, "music", 5.0, [(0.5, voice(studio, LINE))], music_db=-20.0)
    assert check(asr, audio, [LINE]).kind == "ok"


def test_a_number_said_in_words_matches_the_digits_in_the_script(
    asr: EmbeddedTranscriber, studio: Path
) -> None:
    line = "I have followed your light for 40 years"
    verdict = check(asr, sequence(studio, "forty", 5.0, [(0.5, voice(studio, line))]), [line])
    assert verdict.kind == "ok"


# Hand-written transcripts: the rules themselves, without the ASR's variance.


# Truncation on labelled renders: the simulator's voices cut (or not) at their segment's end.


@pytest.mark.parametrize(
    ("case_id", "kind"),
    [
        ("intact-hull-wheelfold", "misheard"),  # "will hold" heard as "wheel fold"
        ("cut-knight-95", "truncated"),  # Whisper completes the cut word; the sound does not
        ("cut-wilhelmina-pause", "truncated"),  # cut in a pause: the name is lost whole
    ],
)
def test_labelled_renders_are_judged_on_the_sound_at_the_boundary(
    asr: EmbeddedTranscriber, studio: Path, case_id: str, kind: str
) -> None:
    labels = clips.load_labels()
    case = next(c for c in labels.cases if c.id == case_id)
    audio = clips.render(case, labels.fps, studio / f"{case_id}.wav")
    lines = [s.line for s in case.segments]
    verdict = check(asr, audio, lines, spans=clips.spans(case, labels.fps))
    assert verdict.lines[0].kind == kind
    assert (verdict.action == "rerender") == (kind == "truncated")
