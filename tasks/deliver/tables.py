"""What a finished run reports as tables: dialogue verdicts and loudness, per sequence.

One reading of the outcomes for every reader: the CLI's end report, the Prefect table
artifacts and the dailies page.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

from tasks.schema.outcomes import ChainOutcome, SequenceResult
from tasks.schema.verdicts import SequenceVerdict

ACTION_WORDS = {
    "keep": "kept",
    "keep_with_warning": "kept with a warning",
    "rerender": "re-render asked, attempts used up",
    "mute_sequence": "muted",
    "mute_range": "muted in part",
}
"""What the final attempt's action means once the film is cut (no action is still pending)."""


class HeardLine(NamedTuple):
    """One row of a dialogue table: who, what the script says, what was heard, and the call."""

    character: str
    expected: str
    heard: str
    verdict: str
    action: str


def heard_lines(verdict: SequenceVerdict) -> list[HeardLine]:
    """A verdict's rows: each scripted line, each unscripted stretch, or the whole sequence."""
    rows = [HeardLine(v.character, v.expected, v.heard, v.kind, v.action) for v in verdict.lines]
    rows += [
        HeardLine("(unscripted)", s.expected, s.heard, s.kind, s.action) for s in verdict.speech
    ]
    if not rows:
        rows.append(HeardLine("", "", verdict.heard, verdict.kind, verdict.action))
    return rows


def final_action(action: str) -> str:
    """An attempt's action as it stands in the delivered film."""
    return ACTION_WORDS.get(action, action)


def in_order(outcomes: Iterable[ChainOutcome]) -> list[SequenceResult]:
    """Every finished sequence of the chains, in film order."""
    return by_index(r for o in outcomes for r in o.sequences)


def by_index(results: Iterable[SequenceResult]) -> list[SequenceResult]:
    return sorted(results, key=lambda r: r.sequence.index)


def dialogue_rows(results: Iterable[SequenceResult]) -> list[dict[str, Any]]:
    """Per line and attempt: expected vs heard, the verdict and what was done about it."""
    return [
        {"sequence": result.sequence.index, "attempt": number, "seed": attempt.seed}
        | line._asdict()
        for result in by_index(results)
        for number, attempt in enumerate(result.attempts, start=1)
        for line in heard_lines(attempt.verdict)
    ]


def loudness_rows(results: Iterable[SequenceResult]) -> list[dict[str, Any]]:
    """Per sequence: loudness before and after normalizing, the gain and the true peak."""
    return [
        {
            "sequence": r.sequence.index,
            "before_lufs": round(r.finished.before.integrated_lufs, 1),
            "after_lufs": round(r.finished.after.integrated_lufs, 1),
            "gain_db": round(r.finished.gain_db, 1),
            "true_peak_dbtp": round(r.finished.after.true_peak_dbtp, 1),
            "edits": "; ".join(r.finished.edits) or "none",
            "note": r.finished.gain_reason,
        }
        for r in by_index(results)
    ]


def warnings_of(results: Iterable[SequenceResult]) -> list[str]:
    return [
        f"sequence {r.sequence.index}: {warning}"
        for r in by_index(results)
        for warning in r.attempts[-1].verdict.warnings
    ]
