"""The labelled dialogue clips: rendered on demand, deterministically, from `labels.json`.

Each case is a sequence's soundtrack as the simulator renders it (`sim.speech.soundtrack`:
espeak-ng voices, each line 0.3 s into its segment and cut hard at the segment's end), with
an optional ambience bed under it. A line is labelled `truncated` when its voice runs past
its segment's end; `render` re-derives that from the synthesised speech and refuses to render
a case whose label no longer holds (another espeak-ng build may speak at another speed).

    python -m tests.data.dialogue_labels.clips DEST   # writes DEST/<id>.wav for listening
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import soundfile
from pydantic import BaseModel, Field

from sim.graph import Segment
from sim.speech import LINE_START_S, SAMPLE_RATE, soundtrack, speak

LABELS = Path(__file__).with_name("labels.json")
# Where a line's voice ends: the last 10 ms window louder than -34 dB below its peak.
_VOICED_RMS = 0.02
_WINDOW = SAMPLE_RATE // 100


class LabelledSegment(BaseModel):
    """One segment of a case and the truth about its line."""

    speaker: str
    line: str
    frames: int = Field(gt=0)
    truncated: bool


class LabelledCase(BaseModel):
    """One rendered sequence: its segments, the render seed, an optional ambience bed."""

    id: str
    seed: int
    ambience_dbfs: float | None = None
    note: str = ""
    segments: list[LabelledSegment]


class LabelSet(BaseModel):
    fps: int
    cases: list[LabelledCase]


class LabelDrift(RuntimeError):
    """The synthesised speech no longer agrees with a case's label."""


def load_labels(path: Path = LABELS) -> LabelSet:
    return LabelSet.model_validate_json(path.read_text())


def spans(case: LabelledCase, fps: int) -> list[tuple[float, float]]:
    """Each segment's (start, end) in seconds, as `segment_spans` (tasks.dialogue.check) does."""
    result, offset = [], 0
    for segment in case.segments:
        result.append((offset / fps, (offset + segment.frames) / fps))
        offset += segment.frames
    return result


def voiced_seconds(segment: LabelledSegment) -> float:
    """How long after its segment starts the line's voice ends, if nothing cuts it."""
    clip = speak(segment.line, segment.speaker)
    power = np.convolve(clip.astype(np.float64) ** 2, np.ones(_WINDOW) / _WINDOW, mode="same")
    voiced = np.nonzero(np.sqrt(power) > _VOICED_RMS)[0]
    return LINE_START_S + float(voiced[-1]) / SAMPLE_RATE


def check_label(case: LabelledCase, fps: int) -> None:
    for number, segment in enumerate(case.segments):
        room = segment.frames / fps
        cut = voiced_seconds(segment) > room
        if cut != segment.truncated:
            raise LabelDrift(
                f"case {case.id} segment {number}: the voice ends "
                f"{voiced_seconds(segment):.2f} s into a {room:.2f} s segment, so truncated "
                f"is {cut}, but the label says {segment.truncated}; this espeak-ng speaks at "
                "another speed: re-derive the frames in labels.json"
            )


def render(case: LabelledCase, fps: int, dest: Path) -> Path:
    """Write the case's soundtrack to `dest` (mono 48 kHz float wav) and return it."""
    check_label(case, fps)
    segments = tuple(
        Segment(prompt=f'{s.speaker} says "{s.line}"', frames=s.frames) for s in case.segments
    )
    total = sum(s.frames for s in case.segments)
    track = soundtrack(segments, float(fps), total, case.seed)[:, 0].copy()
    if case.ambience_dbfs is not None:
        track += _ambience(len(track), case.ambience_dbfs, case.seed)
    soundfile.write(dest, track, SAMPLE_RATE, subtype="FLOAT")
    return dest


def _ambience(length: int, dbfs: float, seed: int) -> np.ndarray:
    """Low rumbling noise (wind, surf) at `dbfs` RMS: white noise through a one-pole low-pass."""
    white = np.random.default_rng(seed).standard_normal(length)
    rumble = np.empty(length)
    level = 0.0
    for i, sample in enumerate(white):  # a few seconds of audio: a plain loop is quick enough
        level = 0.97 * level + 0.03 * sample
        rumble[i] = level
    rumble *= 10 ** (dbfs / 20) / np.sqrt(np.mean(rumble**2))
    return rumble.astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dest", type=Path, help="folder for the rendered wav files")
    args = parser.parse_args()
    args.dest.mkdir(parents=True, exist_ok=True)
    labels = load_labels()
    for case in labels.cases:
        print(render(case, labels.fps, args.dest / f"{case.id}.wav"))


if __name__ == "__main__":
    main()
