"""Scoring the takes of a sequence: one number from what reelflow already measures.

A take's score is the weighted mean of the parts measured on it, each from 0 (worst) to 1:

    score = sum(weight * part) / sum(weight), over the parts that were measured

| part       | weight | measured as                                                          |
|------------|--------|----------------------------------------------------------------------|
| dialogue   | 0.45   | mean over the scripted lines: ok 1, misheard 1 - WER (at least 0.25), |
|            |        | truncated 0.25, missing/mismatch/anything else 0 (no lines: 1); then  |
|            |        | halved for each stretch of speech nobody wrote (a title read out,     |
|            |        | narration, word salad)                                                |
| voice      | 0.20   | how alike each speaker sounds to the cast's reference voice (0-1)     |
| continuity | 0.25   | 1 / (1 + drift / 0.1): the take's last frame against its chain's      |
|            |        | keyframe (drift 0.1, a clear colour or contrast shift, scores 0.5)    |
| loudness   | 0.10   | 1 within 8 LU of -23 LUFS, falling linearly to 0 at 24 LU away; 0 if  |
|            |        | silent where lines are scripted; halved if the true peak is over -1   |
|            |        | dBTP (it would clip)                                                  |

A part that was not measured (the dialogue check turned off, no cast voices yet, a chain with
no keyframe to drift from) is left out and the others keep their relative weights. Scores are
rounded to 4 places; on a tie the lower take wins (take 0 is what a single take renders).
"""

from __future__ import annotations

from collections.abc import Sequence as Seq

from tasks.schema.outcomes import Take, TakeScore
from tasks.schema.verdicts import LineVerdict, SequenceVerdict

WEIGHTS = {"dialogue": 0.45, "voice": 0.20, "continuity": 0.25, "loudness": 0.10}
DRIFT_HALF_SCORE = 0.1
"""Drift at which continuity scores 0.5 (`media.frame_drift`'s scale: 0 is no drift)."""
TARGET_LUFS = -23.0
LOUDNESS_FREE_LU = 8.0
LOUDNESS_ZERO_LU = 24.0
SILENCE_LUFS = -50.0
CLIP_DBTP = -1.0


def _line_value(line: LineVerdict) -> float:
    if line.kind == "ok":
        return 1.0
    if line.kind == "misheard":  # the words were spoken; ASR heard them imperfectly
        return max(0.25, 1.0 - (line.wer if line.wer is not None else 0.75))
    if line.kind == "truncated":
        return 0.25
    return 0.0


def dialogue_part(verdict: SequenceVerdict) -> float | None:
    """How well the scripted lines came out, 0-1 (None: the dialogue was not checked)."""
    if verdict.kind == "unchecked":
        return None
    lines = [_line_value(line) for line in verdict.lines]
    value = sum(lines) / len(lines) if lines else 1.0
    return value * 0.5 ** len(verdict.speech)


def continuity_part(drift: float | None) -> float | None:
    """How close the take ends to its chain's look, 0-1 (None: no keyframe to compare)."""
    if drift is None:
        return None
    return 1.0 / (1.0 + max(drift, 0.0) / DRIFT_HALF_SCORE)


def loudness_part(lufs: float, true_peak_dbtp: float, *, has_lines: bool) -> float:
    """Whether the take's level is sane, 0-1: heard where lines are scripted, not clipping,
    not so far off the target that normalizing it would take a large gain."""
    if lufs <= SILENCE_LUFS:
        return 0.0 if has_lines else 1.0
    away = abs(lufs - TARGET_LUFS)
    value = 1.0 - max(0.0, away - LOUDNESS_FREE_LU) / (LOUDNESS_ZERO_LU - LOUDNESS_FREE_LU)
    value = max(0.0, value)
    return value / 2 if true_peak_dbtp > CLIP_DBTP else value


def score_take(
    verdict: SequenceVerdict,
    *,
    drift: float | None,
    lufs: float,
    true_peak_dbtp: float,
    has_lines: bool,
    voice: float | None = None,
) -> TakeScore:
    """One take's score from its measurements (see the module's table)."""
    parts = {
        "dialogue": dialogue_part(verdict),
        "voice": None if voice is None else min(max(voice, 0.0), 1.0),
        "continuity": continuity_part(drift),
        "loudness": loudness_part(lufs, true_peak_dbtp, has_lines=has_lines),
    }
    measured = {name: value for name, value in parts.items() if value is not None}
    weight = sum(WEIGHTS[name] for name in measured)
    total = sum(WEIGHTS[name] * value for name, value in measured.items()) / weight
    rounded = {name: None if value is None else round(value, 4) for name, value in parts.items()}
    return TakeScore(total=round(total, 4), **rounded)


def best_take(takes: Seq[Take]) -> int:
    """The take with the highest score (the lowest take number on a tie)."""
    return min(takes, key=lambda t: (-t.score.total, t.take)).take


def kept_take(takes: Seq[Take], pick: int | None) -> int:
    """The take to carry forward and cut: the one picked by hand, else the best-scored."""
    return pick if pick is not None else best_take(takes)
