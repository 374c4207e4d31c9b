"""The film's timeline in every format an editor imports: OTIO, FCPXML, FCP 7 XML, CMX3600 EDL.

All four come from the one OpenTimelineIO timeline `tasks.deliver.timeline.build_timeline` makes
(one clip per sequence on the picture track, the score on an audio track), written by
OpenTimelineIO's own adapter plugins (`otio-fcpx-xml-adapter`, `otio-fcp-adapter`,
`otio-cmx3600-adapter`), so the same cut reaches Final Cut Pro, Premiere/Resolve and Avid.

The EDL names its sources the way a conform needs them:
- reel: CMX3600 allows 8 characters, so the reel is the `SEQ0010` part of the sequence
  file's name (`TITLE_SEQ0010_v001.mp4`, see `tasks.deliver.names`); a file named otherwise gets
  `R001`, `R002`... by its place in the cut. Reels are unique within one EDL.
- clip name (`* FROM CLIP NAME:`): the sequence file's full name without its suffix, which
  carries title and version;
- source (`* FROM CLIP:`): the sequence file's path relative to the EDL's folder, so the
  folder can move as a whole.
An EDL holds one picture track; the score (an audio track) is in the other three formats.
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from urllib.parse import unquote, urlparse

import opentimelineio as otio  # type: ignore[import-untyped]

from tasks.errors import ReelflowError
from tasks.runtime.files import write_atomic

# key -> (OpenTimelineIO adapter, file suffix)
TIMELINE_FORMATS: dict[str, tuple[str, str]] = {
    "otio": ("otio_json", ".otio"),
    "fcpxml": ("fcpx_xml", ".fcpxml"),
    "xml": ("fcp_xml", ".xml"),
    "edl": ("cmx_3600", ".edl"),
}
EDL_REEL_CHARS = 8
_SEQUENCE_IN_NAME = re.compile(r"SEQ\d{4}")


class TimelineError(ReelflowError):
    """The timeline cannot be written in an editor's format."""


def reel_name(clip_stem: str, position: int) -> str:
    """The 8-character CMX3600 reel of the clip named `clip_stem`, `position`-th in the cut."""
    found = _SEQUENCE_IN_NAME.search(clip_stem)
    return found.group(0) if found else f"R{position + 1:03d}"


def _local_path(clip: otio.schema.Clip) -> Path:
    reference = clip.media_reference
    url = getattr(reference, "target_url", None)
    if not url:
        raise TimelineError(
            f"clip {clip.name!r} has no media file; every sequence clip needs its delivered file"
        )
    parsed = urlparse(url)
    return Path(unquote(parsed.path)) if parsed.scheme == "file" else Path(url)


def edl_timeline(timeline: otio.schema.Timeline, folder: Path) -> otio.schema.Timeline:
    """A copy of `timeline` whose picture clips carry the EDL's reel, clip name and source."""
    edl = copy.deepcopy(timeline)
    reels: dict[str, str] = {}
    for position, clip in enumerate(edl.video_tracks()[0].find_clips()):
        path = _local_path(clip)
        reel = reel_name(path.stem, position)
        if reels.setdefault(reel, path.stem) != path.stem:
            reel = f"R{position + 1:03d}"
        reels[reel] = path.stem
        clip.name = path.stem
        relative = os.path.relpath(path, folder) if path.is_absolute() else str(path)
        clip.media_reference.target_url = Path(relative).as_posix()
        clip.metadata["cmx_3600"] = {"reel": reel}
    return edl


def write_timelines(timeline: otio.schema.Timeline, folder: Path, stem: str) -> dict[str, Path]:
    """Write `timeline` as `<folder>/<stem>.otio`, `.fcpxml`, `.xml` and `.edl`.

    Returns the written path of each format by key (`otio`, `fcpxml`, `xml`, `edl`).
    """
    if len(timeline.video_tracks()) != 1:
        raise TimelineError(
            f"the timeline has {len(timeline.video_tracks())} picture tracks; an EDL holds one"
        )
    written: dict[str, Path] = {}
    for key, (adapter, suffix) in TIMELINE_FORMATS.items():
        source = edl_timeline(timeline, folder) if key == "edl" else timeline
        try:
            text = otio.adapters.write_to_string(source, adapter)
        except otio.exceptions.OTIOError as exc:
            raise TimelineError(f"cannot write the timeline as {key}: {exc}") from exc
        written[key] = write_atomic(folder / f"{stem}{suffix}", text.encode("utf-8"))
    return written
