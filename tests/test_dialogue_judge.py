"""The dialogue check's judgement on timed transcripts: truncation, mishearing, re-render advice."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tasks.dialogue.judge import check_sequence
from tasks.dialogue.policy import DialoguePolicy
from tasks.dialogue.repeats import HeardRender, stop_repeats
from tasks.dialogue.text_norm import normalize_text
from tasks.dialogue.truncation import SegmentLevels, segment_levels
from tasks.plan.lint import required_seconds
from tasks.runtime.asr import Segment, Transcript, Word
from tasks.schema.verdicts import RerenderAdvice, ScriptedLine, SequenceVerdict

RATE = 48000
TITLE = "The Lighthouse Keeper"
DESCRIPTION = (
    "Wide establishing shot. Waves crash against the rocks below the lighthouse as the last "
    "daylight fades; the lamp at the top flickers on"
)
LINE = "Make him follow you in before the storm breaks"


def said(text: str, *, start: float = 0.5, step: float = 0.4) -> Transcript:
    words = [
        Word(start=start + i * step, end=start + (i + 1) * step - 0.05, text=w)
        for i, w in enumerate(text.split())
    ]
    segment = Segment(start=words[0].start, end=words[-1].end, text=text, words=words)
    return Transcript(text=text, segments=[segment])


def judge(
    lines: list[str],
    heard: Transcript,
    *,
    spans: list[tuple[float, float]] | None = None,
    **options: object,
) -> SequenceVerdict:
    spans = spans or [(i * 6.0, (i + 1) * 6.0) for i in range(max(len(lines), 1))]
    return check_sequence(
        [ScriptedLine(segment=i, line=text) for i, text in enumerate(lines)],
        heard,
        silent=False,
        scene_descriptions=[DESCRIPTION],
        title=TITLE,
        segment_spans=spans,
        **options,  # type: ignore[arg-type]
    )


def test_normalize_text_reads_contractions_numbers_and_typography_alike() -> None:
    assert normalize_text("It\u2019s 40 years, don't you know?") == normalize_text(
        "it is forty years do not you know"
    )
    assert normalize_text("forty-two") == normalize_text("42") == ["forty", "two"]
    assert normalize_text("We won't; I'm sure you'll see.") == (
        ["we", "will", "not", "i", "am", "sure", "you", "will", "see"]
    )
    assert normalize_text("the 3rd of May, 1999") == normalize_text(
        "the third of may nineteen ninety nine"
    )
    assert normalize_text("Edda's lamp") == ["edda", "lamp"]


@given(st.text(max_size=60))
def test_normalized_text_normalizes_to_itself(text: str) -> None:
    once = normalize_text(text)
    assert normalize_text(" ".join(once)) == once


def ends_at(heard: Transcript, room_s: float = 0.1) -> list[tuple[float, float]]:
    """One segment that ends `room_s` after the last heard word: a line cut at the boundary."""
    return [(0.0, heard.segments[-1].words[-1].end + room_s)]


def test_a_dropped_final_word_at_the_boundary_is_truncation_although_the_wer_looks_fine() -> None:
    heard = said("I have followed your light for forty")
    verdict = judge(["I have followed your light for 40 years"], heard, spans=ends_at(heard))
    line = verdict.lines[0]
    assert line.wer is not None and line.wer < DialoguePolicy().max_ok_wer
    assert (line.kind, line.missing_words) == ("truncated", ["years"])
    assert line.cut is not None and line.cut.gap_s == pytest.approx(0.1)


def test_a_dropped_final_word_with_seconds_of_room_left_is_not_truncation() -> None:
    # The speech stopped 2.7 s before the segment's end: a longer segment would change nothing.
    verdict = judge(
        ["I have followed your light for 40 years"], said("I have followed your light for forty")
    )
    assert (verdict.lines[0].kind, verdict.action) == ("ok", "keep")


def test_a_misheard_compound_ending_well_before_the_boundary_is_not_truncation() -> None:
    # The film in the report: "the bypass will hold" heard as "the bypass wheelfold".
    verdict = judge(["The bypass will hold."], said("The bypass wheelfold."))
    line = verdict.lines[0]
    assert line.kind == "misheard"
    assert (verdict.action, verdict.rerender) == ("keep_with_warning", None)
    assert line.cut is not None and line.cut.tail_heard and line.cut.gap_s > 4


def test_a_misheard_compound_near_the_boundary_is_heard_by_sound_not_lost() -> None:
    # 0.3 s before the end a lost ending would count as cut; "wheelfold" sounds like the ending.
    heard = said("The bypass wheelfold.")
    verdict = judge(["The bypass will hold."], heard, spans=ends_at(heard, 0.3))
    assert verdict.lines[0].kind == "misheard"
    assert verdict.lines[0].cut is not None and verdict.lines[0].cut.tail_heard


def test_a_line_ending_at_the_boundary_is_cut_unless_the_sound_there_is_quiet() -> None:
    heard = said(LINE)
    assert judge([LINE], heard, spans=ends_at(heard, 0.05)).lines[0].kind == "truncated"
    quiet = SegmentLevels(tail_db=-64.0, speech_db=-20.0, floor_db=-66.0)
    verdict = judge([LINE], heard, spans=ends_at(heard, 0.05), segment_levels=[quiet])
    assert verdict.lines[0].kind == "ok"
    assert verdict.lines[0].cut is not None and verdict.lines[0].cut.speech_at_end is False


def test_a_lost_ending_near_the_boundary_is_cut_even_where_the_end_is_quiet() -> None:
    # A cut in the pause before the last word leaves the end quiet and the word lost.
    heard = said("Bring the lamp")
    quiet = SegmentLevels(tail_db=-64.0, speech_db=-20.0, floor_db=-66.0)
    verdict = judge(
        ["Bring the lamp, Wilhelmina."], heard, spans=ends_at(heard, 0.2), segment_levels=[quiet]
    )
    assert (verdict.lines[0].kind, verdict.lines[0].missing_words) == ("truncated", ["wilhelmina"])


def test_speech_at_the_segment_end_is_truncation_even_when_every_word_was_heard() -> None:
    # Whisper completes a word whose last sound was cut; the sound at the boundary does not.
    heard = said(LINE)
    loud = SegmentLevels(tail_db=-24.0, speech_db=-20.0, floor_db=-66.0)
    verdict = judge([LINE], heard, spans=ends_at(heard, 0.02), segment_levels=[loud])
    line = verdict.lines[0]
    assert (line.kind, line.missing_words) == ("truncated", [])
    assert verdict.rerender is not None and verdict.rerender.segment_seconds == {
        0: required_seconds(LINE, DialoguePolicy().duration_rule) + 1.0
    }


def test_a_misheard_last_word_is_not_truncation() -> None:
    verdict = judge(
        ["Where did you find that compass, boy?"], said("Where did you find that compass void?")
    )
    assert verdict.lines[0].kind == "ok"


def test_a_line_spoken_but_partly_misheard_is_kept_with_a_warning_not_rerendered() -> None:
    verdict = judge(
        ["I have followed your light for forty years."],
        said("I can follow your life for 40 years."),
    )
    assert verdict.lines[0].kind == "misheard"
    assert (verdict.action, verdict.rerender) == ("keep_with_warning", None)


def test_words_unrelated_to_the_line_are_a_mismatch_and_rerendered() -> None:
    verdict = judge(["I have followed your light for forty years."], said("Potato kettle gravel."))
    assert (verdict.lines[0].kind, verdict.action) == ("mismatch", "rerender")


def test_the_production_notes_example_of_a_cut_line_is_truncated() -> None:
    heard = said("Make of.")
    verdict = judge(["Make him follow you in"], heard, spans=ends_at(heard))
    assert verdict.lines[0].kind == "truncated"
    assert verdict.lines[0].missing_words == ["him", "follow", "you", "in"]


def test_each_line_of_a_sequence_is_judged_on_its_own() -> None:
    lines = ["Come inside, the wind is getting stronger", "Nobody comes to the island in November"]
    verdict = judge(lines, said("Come inside the wind is getting stronger"))
    assert [v.kind for v in verdict.lines] == ["ok", "missing"]
    # The missing line's 6 s segment is shorter than the rule's 9 s (7 words + 2 s): lengthen it.
    assert verdict.rerender is not None and verdict.rerender.segment_seconds == {1: 9.0}


def test_after_the_last_allowed_attempt_a_bad_render_is_kept_with_a_warning() -> None:
    heard = said("Make him follow")
    verdict = judge([LINE], heard, spans=ends_at(heard), attempt=3)
    assert verdict.lines[0].kind == "truncated"
    assert (verdict.action, verdict.rerender) == ("keep_with_warning", None)
    assert "3 renders" in verdict.warnings[0]


def test_a_title_the_script_itself_speaks_is_dialogue_not_a_leak() -> None:
    verdict = judge(["I am the lighthouse keeper"], said("I am the lighthouse keeper"))
    assert verdict.speech == []
    assert verdict.kind == "ok"


def test_word_salad_after_a_line_mutes_only_its_range() -> None:
    heard = said(f"{LINE} cheap printer insurance hotline toaster", step=0.5)
    verdict = judge([LINE], heard, policy=DialoguePolicy())
    assert verdict.lines[0].kind == "ok"
    assert verdict.speech[0].kind == "word_salad"
    assert verdict.action == "mute_range"
    assert verdict.mute_ranges[0].start == pytest.approx(0.5 + 9 * 0.5 - 0.1)


def test_a_verdict_survives_a_json_round_trip() -> None:
    verdict = judge([LINE], said("The Lighthouse Keeper. Make him follow"))
    assert verdict.speech[0].kind == "title_leak"
    assert SequenceVerdict.model_validate_json(verdict.model_dump_json()) == verdict


def test_a_line_in_a_segment_without_a_span_is_refused() -> None:
    with pytest.raises(ValueError, match="segment 1"):
        check_sequence(
            [ScriptedLine(segment=1, line=LINE)], said(LINE), silent=False,
            scene_descriptions=[], title=TITLE, segment_spans=[(0.0, 5.0)],
        )  # fmt: skip


def tone(seconds: float, until: float) -> np.ndarray:
    """A voice-level tone from 0.3 s to `until`, over faint noise."""
    t = np.arange(int(seconds * RATE)) / RATE
    track = np.random.default_rng(3).normal(0, 1e-3, len(t))
    track += np.where((t >= 0.3) & (t < until), 0.2 * np.sin(2 * np.pi * 220 * t), 0.0)
    return track.astype(np.float32)


def test_segment_levels_hear_speech_running_into_a_boundary_and_not_a_finished_one() -> None:
    track = tone(4.0, until=2.0)
    running, finished = segment_levels(track, RATE, [(0.0, 2.0), (2.0, 4.0)])
    share = DialoguePolicy().cut_level_share
    assert running.speech_at_end(share) is True
    assert segment_levels(track, RATE, [(0.0, 2.3)])[0].speech_at_end(share) is False
    # A segment with nothing above the floor cannot tell.
    assert finished.speech_at_end(share) is None
    assert running.floor_db == pytest.approx(-60.0, abs=2.0)


def test_levels_for_other_segments_than_the_spans_are_refused() -> None:
    with pytest.raises(ValueError, match="1 segment levels for 2 segments"):
        judge(
            [LINE, LINE], said(LINE),
            segment_levels=[SegmentLevels(tail_db=-60, speech_db=-20, floor_db=-66)],
        )  # fmt: skip


# Re-rendering: what changes, and when to stop.


def test_the_rerender_advice_names_the_new_seed_and_how_much_longer() -> None:
    advice = RerenderAdvice(attempt=2, segment_seconds={0: 11.0})
    assert advice.describe(123, 16) == "new seed 123; 16 frames longer"
    assert advice.describe(123, 0) == "new seed 123; same length"


def test_a_mismatched_line_is_lengthened_only_where_the_duration_rule_wants_more_room() -> None:
    rule = required_seconds(LINE, DialoguePolicy().duration_rule)
    short = judge([LINE], said("Potato kettle gravel."), spans=[(0.0, 3.0)])
    assert (short.lines[0].kind, short.rerender is not None) == ("mismatch", True)
    assert short.rerender is not None and short.rerender.segment_seconds == {0: rule}
    roomy = judge([LINE], said("Potato kettle gravel."), spans=[(0.0, rule + 1.0)])
    assert roomy.rerender is not None and roomy.rerender.segment_seconds == {}


def cut_render(shift: float = 0.0) -> SequenceVerdict:
    heard = said("Make him follow", start=0.5 + shift)
    return judge([LINE], heard, spans=ends_at(heard))


def test_a_rerender_that_sounds_the_same_as_the_one_before_stops_the_loop() -> None:
    first, second = cut_render(), cut_render(shift=0.05)
    assert first.action == second.action == "rerender"
    renders = [HeardRender(media_sha256="a", verdict=first)]
    assert stop_repeats(renders, DialoguePolicy()) == first  # a first render always may retry
    renders.append(HeardRender(media_sha256="b", verdict=second))
    stopped = stop_repeats(renders, DialoguePolicy())
    assert (stopped.kind, stopped.action, stopped.rerender) == (
        "truncated", "keep_with_warning", None,
    )  # fmt: skip
    assert "kept after 2 renders" in stopped.warnings[-1]
    assert "sounded the same" in stopped.warnings[-1]


def test_the_same_file_rendered_again_stops_the_loop_whatever_was_heard() -> None:
    renders = [HeardRender(media_sha256="a", verdict=cut_render(shift=s)) for s in (0.0, 1.0)]
    assert stop_repeats(renders, DialoguePolicy()).action == "keep_with_warning"


def test_a_rerender_heard_differently_goes_on() -> None:
    # Same words, but the line now ends half a second later: the longer segment changed it.
    moved = [HeardRender(media_sha256=str(s), verdict=cut_render(shift=s)) for s in (0.0, 0.5)]
    assert stop_repeats(moved, DialoguePolicy()).action == "rerender"
    other = judge([LINE], said("Make him follow you"), spans=[(0.0, 2.05)])
    reworded = [HeardRender(media_sha256="a", verdict=cut_render()), HeardRender(
        media_sha256="b", verdict=other
    )]  # fmt: skip
    assert other.action == "rerender"
    assert stop_repeats(reworded, DialoguePolicy()).action == "rerender"
