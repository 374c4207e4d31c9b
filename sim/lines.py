"""The spoken lines of a relay prompt: every ``NAME says "line"``, whatever script NAME is in.

Reading a line (``dialogue_lines``): every ``says "..."`` (straight or curly quotes) in a
segment prompt is a spoken line. Its speaker is read from the text between the previous
line's closing quote (or the prompt's start) and ``says``:

* the name is the run of words just before ``says`` that do not start with a lowercase
  letter: ``MAYA``, ``Ólafur``, ``MARY-JANE``, ``O'BRIEN``, ``Mary Jane``, ``甄嬛`` (a
  script without case counts as capitalised);
* the run stops at a lowercase word (``and MAYA says``: ``MAYA``) and at a word ending a
  sentence or clause (``. , ; : ! ?`` and their CJK forms, a closing quote or bracket),
  except a title or initials inside the name (``Dr. Watson``, ``J. Smith``); ``van``,
  ``de``, ``von`` and similar particles inside a name are kept (``Vincent van Gogh``);
* a line whose words before ``says`` are all lowercase is still spoken; its speaker is
  then the last (up to four) words of its sentence (``the old man``).

reelflow writes ``"<description>. NAME says "line" NAME2 says "line2""``, so a name always
follows a sentence end or a closing quote and is read whole. A capitalised word that
starts a sentence of a hand-written prompt is read as part of the name (``Then MAYA``).

The dominant speaker of a sequence (``dominant_speaker``) is the speaker with the most
words (whitespace-separated, ``str.split``) over all its lines in the whole sequence, ties
broken by the first line; names are compared exactly as written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# The line may escape its own quotes and backslashes with a backslash, as reelflow writes it.
_SAYS = re.compile(r"(?<!\S)says\s*[\"“]((?:[^\"”\\]|\\.)+)[\"”]")
_ESCAPED = re.compile(r"\\(.)")
# Ideographic full stop, fullwidth ! ? ; : and comma, ideographic comma.
_CJK_STOPS = "\u3002\uff01\uff1f\uff1b\uff1a\uff0c\u3001"
_CLAUSE_END = (*".,;:!?…)]}\"'”»", "\u2019", *_CJK_STOPS)
_OPENERS = (*"\"“'([{«", "\u2018")
_TITLES = frozenset(
    {"dr", "mr", "mrs", "ms", "mx", "st", "jr", "sr", "prof", "capt", "col", "gen", "lt", "sgt",
     "rev", "fr", "mme", "mlle", "sen", "gov", "pres", "hon"}
)  # fmt: skip
_INITIALS = re.compile(r"(?:[A-Z]\.)+")
_PARTICLES = frozenset(
    {"van", "von", "de", "der", "den", "da", "di", "du", "del", "della", "le", "la", "bin",
     "ibn", "al", "ter", "ten", "y", "zu"}
)  # fmt: skip
_FALLBACK_WORDS = 4


@dataclass(frozen=True)
class Line:
    """One spoken line: who says what."""

    speaker: str
    text: str

    @property
    def words(self) -> int:
        """Words in the line, as the dominant-speaker rule counts them."""
        return len(self.text.split())


def _capitalised(word: str) -> bool:
    return not word[0].islower()


def _ends_clause(word: str) -> bool:
    return word.endswith(_CLAUSE_END)


def _abbreviation(word: str) -> bool:
    """A title or initials that end with a dot inside a name (``Dr.``, ``J.R.``)."""
    return word[:-1].casefold() in _TITLES or bool(_INITIALS.fullmatch(word))


def _name_before(text: str) -> str:
    """The speaker named at the end of ``text`` (the words just before ``says``)."""
    for stop in _CJK_STOPS:
        text = text.replace(stop, stop + " ")
    words = text.split()
    name: list[str] = []
    for index in range(len(words) - 1, -1, -1):
        word = words[index]
        if word.startswith(_OPENERS) or (name and _ends_clause(word)):
            if not (name and _abbreviation(word)):
                break
        elif not _capitalised(word):
            inside = name and index > 0 and _capitalised(words[index - 1])
            if not (inside and word in _PARTICLES):
                break
        name.append(word)
    if name:
        return " ".join(reversed(name)).strip(",;:")
    # All lowercase: the last words of the sentence ("the old man says").
    tail: list[str] = []
    for word in reversed(words[-_FALLBACK_WORDS:]):
        if _ends_clause(word) or word.startswith(_OPENERS):
            break
        tail.append(word)
    return " ".join(reversed(tail))


def dialogue_lines(segment_prompt: str) -> list[Line]:
    """Every ``NAME says "line"`` in a segment prompt, in order."""
    lines: list[Line] = []
    previous = 0
    for match in _SAYS.finditer(segment_prompt):
        speaker = _name_before(segment_prompt[previous : match.start()])
        lines.append(Line(speaker, _ESCAPED.sub(r"\1", match.group(1)).strip()))
        previous = match.end()
    return [line for line in lines if line.text]


def speakers_in_order(lines: Iterable[Line]) -> list[str]:
    """Each speaker once, in order of their first line."""
    return list(dict.fromkeys(line.speaker for line in lines))


def dominant_speaker(lines: Iterable[Line]) -> str | None:
    """The speaker with the most words over ``lines``; the earliest one on a tie."""
    words: dict[str, int] = {}
    for line in lines:
        words[line.speaker] = words.get(line.speaker, 0) + line.words
    if not words:
        return None
    most = max(words.values())
    return next(name for name, count in words.items() if count == most)
