"""Was a spoken line cut by its segment's end? The evidence, each side measured on its own.

- Sound: how loud the last moment of the segment is, between the track's noise floor and
  the segment's speech level. A line still being spoken when the segment ends is loud there.
- Time: how far before the segment's end the line's last heard word ends.
- Words, by sound: how much of the scripted line the heard words reach, compared as
  Metaphone keys, so a misheard or re-split ending ("will hold" / "wheel fold", "any more" /
  "anymore") still counts as heard while lost words do not.

Pure functions over samples and tokens; `tasks.dialogue` weighs them into a verdict.
"""

from __future__ import annotations

import jellyfish
import numpy as np
from pydantic import BaseModel
from rapidfuzz.distance import Indel

from tasks.schema.verdicts import CutEvidence

FRAME_S = 0.01
TAIL_WINDOW_S = 0.1
"""The end of a segment that must be quiet for its line to have finished. Longer than the
gap between two words (40-60 ms in the simulator's voices), so a cut there still sounds like
speech; a line that leaves less room than this is heard as running into the boundary."""
_FLOOR_PERCENTILE = 10
_SPEECH_PERCENTILE = 95
_SILENT_DB = -120.0


class SegmentLevels(BaseModel):
    """Sound levels (dBFS, 10 ms RMS frames) that tell whether speech runs into a boundary."""

    tail_db: float
    """The loudest frame in the last `TAIL_WINDOW_S` of the segment."""
    speech_db: float
    """The segment's speech level (95th percentile of its frames)."""
    floor_db: float
    """The whole track's noise floor (10th percentile of its frames)."""

    def speech_at_end(self, share: float, min_range_db: float = 6.0) -> bool | None:
        """True when the tail is at least `share` of the way (in dB) from floor to speech;
        None when the segment holds no speech above the floor to compare with."""
        span = self.speech_db - self.floor_db
        if span < min_range_db:
            return None
        return self.tail_db - self.floor_db >= share * span


def was_cut(evidence: CutEvidence, *, running_margin_s: float, lost_margin_s: float) -> bool:
    """A line is cut when speech runs into its segment's end, not when a word is misheard.

    Speech runs into the end when the sound there is speech (if measured) or else when the
    line's last heard word ends within `running_margin_s` of it. A line whose ending went
    unheard, even compared by sound, and whose words reach within `lost_margin_s` of the end
    lost that ending to the boundary (Whisper drops a word cut in half, and a cut in a pause
    leaves the end quiet).
    """
    lost_tail = not evidence.tail_heard and evidence.gap_s <= lost_margin_s
    if evidence.speech_at_end is None:
        return lost_tail or evidence.gap_s <= running_margin_s
    # Speech at the end belongs to this line if its words reach the end or its ending is lost.
    ours = evidence.gap_s <= lost_margin_s or not evidence.tail_heard
    return lost_tail or (evidence.speech_at_end and ours)


def segment_levels(
    samples: np.ndarray, rate: int, spans: list[tuple[float, float]]
) -> list[SegmentLevels]:
    """The levels at the end of each segment of a sequence's audio (mono or (n, channels))."""
    mono = samples.mean(axis=1) if samples.ndim > 1 else samples
    frame = max(1, round(FRAME_S * rate))
    count = len(mono) // frame
    if count == 0:
        return [SegmentLevels(tail_db=_SILENT_DB, speech_db=_SILENT_DB, floor_db=_SILENT_DB)] * len(
            spans
        )
    power = np.mean(mono[: count * frame].astype(np.float64).reshape(count, frame) ** 2, axis=1)
    db = 10 * np.log10(np.maximum(power, 10 ** (_SILENT_DB / 10)))
    floor = float(np.percentile(db, _FLOOR_PERCENTILE))
    tail = max(1, round(TAIL_WINDOW_S / FRAME_S))
    levels = []
    for start, end in spans:
        first = min(round(start / FRAME_S), count - 1)
        last = min(max(round(end / FRAME_S), first + 1), count)
        frames = db[first:last]
        levels.append(
            SegmentLevels(
                tail_db=round(float(frames[-tail:].max()), 2),
                speech_db=round(float(np.percentile(frames, _SPEECH_PERCENTILE)), 2),
                floor_db=round(floor, 2),
            )
        )
    return levels


def sound_key(tokens: list[str]) -> str:
    """The Metaphone keys of normalised words, run together so word splits do not matter."""
    return "".join(jellyfish.metaphone(token) for token in tokens)


def sound_similarity(expected: list[str], heard: list[str]) -> float:
    """0..1: how alike the two word lists sound (Indel similarity of their Metaphone keys)."""
    return Indel.normalized_similarity(sound_key(expected), sound_key(heard))


def heard_through(expected: list[str], heard: list[str]) -> tuple[int, float]:
    """How many of the scripted words the heard words reach, by sound, and how alike they are.

    The heard words are compared with every prefix of the script; the best match marks how
    far the speech got (ties go to the longer prefix: a misheard last word is still heard).
    """
    heard_key = sound_key(heard)
    best, best_score, prefix = 0, 0.0, ""
    for count, token in enumerate(expected, start=1):
        prefix += jellyfish.metaphone(token)
        score = Indel.normalized_similarity(prefix, heard_key)
        if score >= best_score:
            best, best_score = count, score
    return best, best_score
