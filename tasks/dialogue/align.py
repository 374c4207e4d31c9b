"""Heard words against scripted words: the transcript as timed tokens, aligned to the lines."""

from __future__ import annotations

from dataclasses import dataclass

from rapidfuzz.distance import Levenshtein

from tasks.dialogue.text_norm import normalize_text
from tasks.runtime.asr import Segment, Transcript
from tasks.schema.verdicts import (
    ScriptedLine,
    TimeRange,
)


@dataclass(frozen=True)
class Heard:
    token: str
    start: float
    end: float
    word: int  # index of the ASR word it came from ("it's" gives two tokens, one word)
    source: str


def heard_tokens(transcript: Transcript) -> list[Heard]:
    heard: list[Heard] = []
    word_index = 0
    for segment in transcript.segments:
        # Without word times, spread the segment's time evenly over its words.
        words = [(w.text, w.start, w.end) for w in segment.words] or _spread(segment)
        for text, start, end in words:
            for token in normalize_text(text):
                heard.append(Heard(token, start, end, word_index, text))
            word_index += 1
    return heard


def _spread(segment: Segment) -> list[tuple[str, float, float]]:
    parts = segment.text.split()
    step = (segment.end - segment.start) / max(len(parts), 1)
    return [
        (p, segment.start + i * step, segment.start + (i + 1) * step) for i, p in enumerate(parts)
    ]


def text_of(heard: list[Heard]) -> str:
    words: list[str] = []
    last = -1
    for h in heard:
        if h.word != last:
            words.append(h.source)
            last = h.word
    return " ".join(words)


def span_of(heard: list[Heard]) -> TimeRange:
    return TimeRange(start=heard[0].start, end=heard[-1].end)


def align(
    scripted: list[ScriptedLine],
    heard: list[Heard],
    spans: list[tuple[float, float]],
) -> tuple[list[list[Heard]], list[list[Heard]]]:
    """Word-level alignment of the whole sequence against all its lines at once.

    Returns, per line, the heard tokens it owns; plus runs of heard speech that belong to
    no line.
    """
    owner: list[int] = []
    ref: list[str] = []
    for index, line in enumerate(scripted):
        tokens = normalize_text(line.line)
        ref += tokens
        owner += [index] * len(tokens)
    hyp = [h.token for h in heard]
    pair: dict[int, int] = {}  # heard index -> ref index it stands for
    inserted: dict[int, int] = {}  # heard index -> ref position it was inserted before
    for op in Levenshtein.opcodes(ref, hyp):
        if op.tag in ("equal", "replace"):
            # Levenshtein opcodes pair words one to one inside equal and replace blocks.
            for i, j in zip(
                range(op.src_start, op.src_end), range(op.dest_start, op.dest_end), strict=True
            ):
                pair[j] = i
        elif op.tag == "insert":
            for j in range(op.dest_start, op.dest_end):
                inserted[j] = op.src_start
    owned: list[list[Heard]] = [[] for _ in scripted]
    extras: list[list[Heard]] = []
    for j, h in enumerate(heard):
        if j in pair:
            owned[owner[pair[j]]].append(h)
            continue
        home = _owner_of_insert(inserted[j], owner, scripted, spans, h)
        if home is None:
            if extras and extras[-1][-1] is heard[j - 1]:
                extras[-1].append(h)
            else:
                extras.append([h])
        else:
            owned[home].append(h)
    return owned, extras


def _owner_of_insert(
    position: int,
    owner: list[int],
    scripted: list[ScriptedLine],
    spans: list[tuple[float, float]],
    h: Heard,
) -> int | None:
    """The line an extra heard word belongs to: none before the first or after the last
    scripted word; inside a line, that line; at a seam between two, the one whose segment
    holds it in time."""
    if position == 0 or position == len(owner):
        return None
    before, after = owner[position - 1], owner[position]
    start, end = spans[scripted[after].segment]
    return after if start <= (h.start + h.end) / 2 <= end else before
