"""The one naming scheme for deliverables: `TITLE_SEQ0010_v001`, as post houses name shots.

- TITLE: the film's title in capitals; accents folded to ASCII (é -> E), every run of other
  characters one `_`, at most 24 characters, `FILM` when nothing is left.
- SEQ0010: the sequence number, four digits. Numbers count in tens from 10 (the first
  sequence is SEQ0010, the second SEQ0020) so a sequence inserted later fits between two
  without renumbering the rest: `sequence_number(index)` turns a plan index into one.
- v001: the version, three digits, counting renders of that sequence (1 for the first render,
  +1 for each re-roll or take).

The film itself is `TITLE_v001` (no sequence part). Every name matches
`[A-Z0-9_]+(_SEQ[0-9]{4})?_v[0-9]{3}`, so it is safe in every file system, URL and EDL.
"""

from __future__ import annotations

import re
import unicodedata

MAX_TITLE_CHARS = 24
_NOT_NAME = re.compile(r"[^A-Z0-9]+")
_SEQUENCE_STEP = 10


def title_token(title: str) -> str:
    """`title` as the TITLE part of a deliverable name: [A-Z0-9_], at most 24 characters."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii")
    token = _NOT_NAME.sub("_", ascii_title.upper()).strip("_")
    return token[:MAX_TITLE_CHARS].rstrip("_") or "FILM"


def sequence_number(index: int) -> int:
    """The SEQ number of the plan's sequence `index` (0-based): 10, 20, 30, ..."""
    if index < 0:
        raise ValueError(f"a sequence index counts from 0, not {index}")
    return (index + 1) * _SEQUENCE_STEP


def deliverable_name(title: str, sequence: int | None = None, version: int = 1) -> str:
    """`TITLE_SEQ0010_v001` for a sequence, `TITLE_v001` for the whole film.

    >>> deliverable_name("Harbour: A Test Reel", sequence=10, version=1)
    'HARBOUR_A_TEST_REEL_SEQ0010_v001'
    >>> deliverable_name("Café au lait", version=2)
    'CAFE_AU_LAIT_v002'
    """
    if sequence is not None and not 0 <= sequence <= 9999:
        raise ValueError(f"a sequence number has four digits (0-9999), not {sequence}")
    if not 1 <= version <= 999:
        raise ValueError(f"a version counts from 1 to 999, not {version}")
    parts = [title_token(title)]
    if sequence is not None:
        parts.append(f"SEQ{sequence:04d}")
    parts.append(f"v{version:03d}")
    return "_".join(parts)
