"""What a finished run reports: dialogue verdicts and loudness, as rows for tables."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tasks.schema.outcomes import ChainOutcome, SequenceResult


def _results(outcomes: Iterable[ChainOutcome]) -> list[SequenceResult]:
    return sorted((r for o in outcomes for r in o.sequences), key=lambda r: r.sequence.index)


def dialogue_rows(outcomes: Iterable[ChainOutcome]) -> list[dict[str, Any]]:
    """Per line and attempt: expected vs heard, the verdict and what was done about it."""
    rows = []
    for result in _results(outcomes):
        for number, attempt in enumerate(result.attempts, start=1):
            verdict = attempt.verdict
            for line in verdict.lines:
                rows.append(
                    {
                        "sequence": result.sequence.index,
                        "attempt": number,
                        "seed": attempt.seed,
                        "character": line.character,
                        "expected": line.expected,
                        "heard": line.heard,
                        "verdict": line.kind,
                        "action": line.action,
                    }
                )
            for speech in verdict.speech:
                rows.append(
                    {
                        "sequence": result.sequence.index,
                        "attempt": number,
                        "seed": attempt.seed,
                        "character": "(unscripted)",
                        "expected": speech.expected,
                        "heard": speech.heard,
                        "verdict": speech.kind,
                        "action": speech.action,
                    }
                )
            if not verdict.lines and not verdict.speech:
                rows.append(
                    {
                        "sequence": result.sequence.index,
                        "attempt": number,
                        "seed": attempt.seed,
                        "character": "",
                        "expected": "",
                        "heard": verdict.heard,
                        "verdict": verdict.kind,
                        "action": verdict.action,
                    }
                )
    return rows


def loudness_rows(outcomes: Iterable[ChainOutcome]) -> list[dict[str, Any]]:
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
        for r in _results(outcomes)
    ]


def warnings_of(outcomes: Iterable[ChainOutcome]) -> list[str]:
    return [
        f"sequence {r.sequence.index}: {warning}"
        for r in _results(outcomes)
        for warning in r.attempts[-1].verdict.warnings
    ]
