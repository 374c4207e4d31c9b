"""Where the delivered film speaks its scripted lines: the script's words at the heard times.

The dialogue check of each sequence's final render (the one cut into the film) aligned
the ASR's timed words to the scripted lines; each line it heard carries the span of its
words (`LineVerdict.span`, seconds in the sequence). Here those spans move to film time:
sequence i starts where the sequences before it end, as measured, less one dissolve per cut
when the film dissolves.

What counts as spoken:
- a line heard in a kept render: its heard span, clipped to its sequence;
- nothing of a muted sequence, and no line the ASR did not hear (`missing`) or whose span
  lies wholly in a muted range: there is nothing to subtitle;
- a sequence nobody listened to (the check switched off): its lines at their planned
  windows, marked `timed_by="plan"`.
"""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Sequence as Seq

from tasks.errors import ReelflowError
from tasks.schema.film_plan import PlannedLine
from tasks.schema.outcomes import SequenceResult, SpokenLine
from tasks.schema.verdicts import LineVerdict, SequenceVerdict, TimeRange


class SpokenLineError(ReelflowError):
    """The sequences and their measured lengths do not describe one film."""


def sequence_starts(seconds: Seq[float], *, overlap_s: float = 0.0) -> list[float]:
    """Film second at which each sequence starts, from the measured lengths."""
    starts, at = [], 0.0
    for length in seconds:
        starts.append(at)
        at += length - overlap_s
    return starts


def spoken_lines(
    results: Seq[SequenceResult], seconds: Seq[float], *, overlap_s: float = 0.0
) -> list[SpokenLine]:
    """Every scripted line the film speaks, in film order and film seconds.

    `results` are the film's sequences in order, `seconds` their measured lengths (the
    picture as cut), `overlap_s` the dissolve between two sequences (0 for hard cuts).
    """
    if len(results) != len(seconds):
        raise SpokenLineError(
            f"{len(results)} sequences but {len(seconds)} measured lengths; measure every "
            "sequence cut into the film"
        )
    lines: list[SpokenLine] = []
    for result, start, length in zip(
        results, sequence_starts(seconds, overlap_s=overlap_s), seconds, strict=True
    ):
        for planned, span, timed_by in _timed(result):
            begin, end = max(0.0, span.start), min(length, span.end)
            if end <= begin:
                continue
            lines.append(
                SpokenLine(
                    sequence=result.sequence.index,
                    speaker=planned.character,
                    text=planned.line,
                    start_s=round(start + begin, 3),
                    end_s=round(start + end, 3),
                    timed_by=timed_by,
                )
            )
    return sorted(lines, key=lambda line: (line.start_s, line.end_s))


def _timed(result: SequenceResult) -> Iterator[tuple[PlannedLine, TimeRange, str]]:
    """Each spoken line of one sequence with its span in the sequence and how it was timed."""
    planned = result.sequence.lines
    verdict = result.attempts[-1].verdict if result.attempts else None
    if verdict is None or (verdict.kind == "unchecked" and not verdict.lines):
        for line in planned:
            yield line, TimeRange(start=line.start_s, end=line.end_s), "plan"
        return
    if verdict.action == "mute_sequence":
        return
    for line, heard in _paired(planned, verdict):
        if heard.span is not None and not _muted(heard.span, verdict):
            yield line, heard.span, "asr"


def _paired(
    planned: Seq[PlannedLine], verdict: SequenceVerdict
) -> Iterator[tuple[PlannedLine, LineVerdict]]:
    """Planned lines with their verdicts: the check judges the lines in plan order."""
    if len(verdict.lines) != len(planned):
        raise SpokenLineError(
            f"the dialogue check judged {len(verdict.lines)} lines of a sequence that plans "
            f"{len(planned)}; check the sequence again (its cached verdict is stale)"
        )
    yield from zip(planned, verdict.lines, strict=True)


def _muted(span: TimeRange, verdict: SequenceVerdict) -> bool:
    return any(m.start <= span.start and span.end <= m.end for m in verdict.mute_ranges)
