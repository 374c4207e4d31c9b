"""Where the film speaks its lines: heard spans moved to film time, muted and unheard lines out."""

from __future__ import annotations

from typing import Any

import pytest

from tasks.schema.film_plan import Sequence
from tasks.schema.outcomes import (
    Attempt,
    FinishedSequence,
    Loudness,
    RenderedSequence,
    SequenceResult,
)
from tasks.schema.refs import MediaRef
from tasks.schema.verdicts import LineVerdict, SequenceVerdict, TimeRange
from tasks.spoken_lines import SpokenLineError, sequence_starts, spoken_lines
from tests.test_score import harbour_plan

PLAN = harbour_plan()  # sequences: scenes 0-1 (ANA speaks), 2 (no line), 3 (BO speaks)
REF = MediaRef(sha256="ab" * 32, suffix=".mp4", size=1)
LEVEL = Loudness(integrated_lufs=-23.0, true_peak_dbtp=-3.0, duration_s=5.0)


def _line(sequence: Sequence, span: tuple[float, float] | None, **extra: Any) -> LineVerdict:
    [planned] = sequence.lines
    return LineVerdict(
        segment=0, character=planned.character, kind="ok" if span else "missing",
        expected=planned.line, heard=planned.line if span else "", wer=0.0,
        span=TimeRange(start=span[0], end=span[1]) if span else None,
        action="keep" if span else "rerender", **extra,
    )  # fmt: skip


def _result(sequence: Sequence, verdict: SequenceVerdict | None) -> SequenceResult:
    return SequenceResult(
        sequence=sequence,
        rendered=RenderedSequence(
            index=sequence.index, video=REF, frames=sequence.frames, seconds=sequence.seconds,
            seed=sequence.seed, server="sim", gpu_seconds=1.0,
        ),
        attempts=(Attempt(seed=sequence.seed, frames=sequence.frames, verdict=verdict),)
        if verdict
        else (),
        finished=FinishedSequence(
            index=sequence.index, video=REF, seconds=sequence.seconds, edits=(), gain_db=0.0,
            gain_reason="", before=LEVEL, after=LEVEL,
        ),
    )  # fmt: skip


def _verdict(lines: list[LineVerdict], **extra: Any) -> SequenceVerdict:
    return SequenceVerdict(kind="ok", action="keep", silent=False, heard="", lines=lines, **extra)


def _film(first: SequenceVerdict | None, last: SequenceVerdict | None) -> list[SequenceResult]:
    talk, quiet, shout = PLAN.sequences
    return [_result(talk, first), _result(quiet, _verdict([])), _result(shout, last)]


SECONDS = [s.seconds for s in PLAN.sequences]


def test_heard_lines_land_in_film_time_after_the_measured_sequences_before_them() -> None:
    talk, _, shout = PLAN.sequences
    measured = [SECONDS[0] + 0.04, SECONDS[1] - 0.02, SECONDS[2]]
    lines = spoken_lines(
        _film(_verdict([_line(talk, (6.1, 7.4))]), _verdict([_line(shout, (0.5, 2.0))])), measured
    )
    assert [(line.speaker, line.text, line.timed_by) for line in lines] == [
        ("ANA", "The boat is late.", "asr"), ("BO", "Here it comes now!", "asr"),
    ]  # fmt: skip
    assert (lines[0].start_s, lines[0].end_s) == (6.1, 7.4)
    offset = measured[0] + measured[1]
    assert lines[1].start_s == pytest.approx(offset + 0.5, abs=1e-3)
    assert lines[1].end_s == pytest.approx(offset + 2.0, abs=1e-3)


def test_a_dissolve_moves_every_later_line_back_by_one_overlap_per_cut() -> None:
    assert sequence_starts([10.0, 5.0, 6.0], overlap_s=1.0) == [0.0, 9.0, 13.0]
    talk, _, shout = PLAN.sequences
    film = _film(_verdict([_line(talk, (1.0, 2.0))]), _verdict([_line(shout, (2.0, 3.0))]))
    [_, line] = spoken_lines(film, SECONDS, overlap_s=1.0)
    assert line.start_s == pytest.approx(SECONDS[0] + SECONDS[1] - 2 * 1.0 + 2.0, abs=1e-3)


def test_unheard_muted_and_mute_ranged_lines_are_not_subtitled() -> None:
    talk = PLAN.sequences[0]
    unheard = spoken_lines(_film(_verdict([_line(talk, None)]), None), SECONDS)
    assert [line.timed_by for line in unheard] == ["plan"]  # only BO's, nobody listened
    muted = _verdict([_line(talk, (1.0, 2.0))]).model_copy(update={"action": "mute_sequence"})
    assert [line.speaker for line in spoken_lines(_film(muted, None), SECONDS)] == ["BO"]
    ranged = _verdict([_line(talk, (1.0, 2.0))], mute_ranges=[TimeRange(start=0.5, end=2.5)])
    assert [line.speaker for line in spoken_lines(_film(ranged, None), SECONDS)] == ["BO"]


def test_a_film_nobody_listened_to_is_subtitled_at_the_planned_windows() -> None:
    talk, _, shout = PLAN.sequences
    unchecked = SequenceVerdict(kind="unchecked", action="keep", silent=False, heard="")
    lines = spoken_lines(_film(unchecked, unchecked), SECONDS)
    planned = [*talk.lines, *shout.lines]
    assert [(line.start_s, line.timed_by) for line in lines] == [
        (round(planned[0].start_s, 3), "plan"),
        (round(SECONDS[0] + SECONDS[1] + planned[1].start_s, 3), "plan"),
    ]


def test_a_span_past_its_sequence_is_clipped_and_a_mismatch_is_named() -> None:
    talk, _, shout = PLAN.sequences
    [_, line] = spoken_lines(
        _film(_verdict([_line(talk, (1.0, 2.0))]), _verdict([_line(shout, (5.5, 99.0))])), SECONDS
    )
    assert line.end_s == pytest.approx(sum(SECONDS), abs=1e-3)
    with pytest.raises(SpokenLineError, match="judged 0 lines of a sequence that plans 1"):
        spoken_lines(_film(_verdict([]), None), SECONDS)
    with pytest.raises(SpokenLineError, match="3 sequences but 2 measured lengths"):
        spoken_lines(_film(None, None), SECONDS[:2])
