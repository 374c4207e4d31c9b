"""How deliverables are named: one scheme, `TITLE_SEQ0010_v001`, as post houses name shots.

- TITLE: the film's title in capitals; accents folded to ASCII (é -> E), every run of other
  characters one `_`, at most 24 characters, `FILM` when nothing is left.
- SEQ0010: the sequence number, four digits. Numbers count in tens from 10 (the first
  sequence is SEQ0010, the second SEQ0020) so a sequence inserted later fits between two
  without renumbering the rest: `sequence_number(index)` turns a plan index into one.
- v001: the version, three digits. A sequence's version counts its takes: every render the
  dialogue check made of it in this run, plus one for each time it was re-rolled
  (`--rerender`). The film's version counts re-rolls: 1, plus one per re-roll asked for, so
  each re-rolled cut is a new version of the film.

The film is `TITLE_v001`, and every file made of it is named from that: `TITLE_v001.mp4`,
`TITLE_v001.srt`, `TITLE_v001_DX.wav`, `TITLE_v001.edl`... Sequence files are
`sequences/TITLE_SEQ0010_v001.mp4`. Every name matches
`[A-Z0-9_]+(_SEQ[0-9]{4})?_v[0-9]{3}`, so it is safe in every file system, URL and EDL.
The folder's own records keep plain names: `manifest.json`, `report.md`, `review.html`,
`contact_sheet.png`.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence as Seq
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from tasks.schema.film_plan import Sequence
from tasks.schema.outcomes import SequenceResult

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


class FilmNames(BaseModel):
    """The names of one delivery: the film's, and each sequence's in film order, with the
    versions they carry."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    film: str
    version: int
    sequences: tuple[str, ...]
    sequence_versions: tuple[int, ...]


def name_film(title: str, indices: Seq[int], versions: Seq[int], version: int) -> FilmNames:
    """The names of the film `title` at `version`, its sequences `indices` at `versions`."""
    return FilmNames(
        film=deliverable_name(title, version=version),
        version=version,
        sequences=tuple(
            deliverable_name(title, sequence_number(index), version=v)
            for index, v in zip(indices, versions, strict=True)
        ),
        sequence_versions=tuple(versions),
    )


def film_names(title: str, results: Seq[SequenceResult], rerolls: Seq[int] = ()) -> FilmNames:
    """The names of a film of `results` (in film order) after the re-rolls `rerolls`."""
    rolled = Counter(rerolls)
    return name_film(
        title,
        [r.sequence.index for r in results],
        [rolled[r.sequence.index] + max(1, len(r.attempts)) for r in results],
        version=1 + len(rerolls),
    )


def first_names(title: str, indices: Seq[int]) -> FilmNames:
    """The names of a first delivery: every sequence and the film at version 1."""
    return name_film(title, indices, [1] * len(indices), version=1)


def film_folder(out: Path, title: str) -> Path:
    """`OUT/<title as a slug>`: one folder per film (every version of it)."""
    slug = re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_") or "film"
    return out / slug


def sequence_label(sequence: Sequence) -> str:
    """`seq N · scenes a-b` (or `scene a`), as on the contact sheet."""
    scenes = sequence.scene_indices
    span = f"scene {scenes[0]}" if len(scenes) == 1 else f"scenes {scenes[0]}-{scenes[-1]}"
    return f"seq {sequence.index} · {span}"
