"""Whether the sequences' picture can go into the film untouched (stream copy), and why not.

A film is a distribution file when its picture is H.264 High, yuv420p, at a level players
accept (<= 4.0, `tasks.media.verify`). ComfyUI's SaveVideo (PyAV, libx264, yuv420p) and the
simulator (libx264, yuv420p) write exactly that, so re-encoding it only costs time and a
generation. Levels are upper bounds: a level 3.1 stream is also a valid level 4.0 stream, so a
lower level is rewritten in the headers (`h264_metadata`), never re-encoded.

Joining by stream copy needs more: every clip must carry the same parameter sets (the concat
demuxer keeps the first file's), frame size, rate and time base.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import av
from pydantic import BaseModel, ConfigDict

from tasks.media.errors import MediaInvalid
from tasks.media.probe import VideoInfo
from tasks.media.verify import DISTRIBUTION_LEVEL, DISTRIBUTION_PIX_FMT, DISTRIBUTION_PROFILE


class PictureSignature(BaseModel):
    """What decides whether two clips' pictures join by stream copy."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    codec: str
    profile: str | None
    level: int | None
    pix_fmt: str
    width: int
    height: int
    frame_rate: str
    time_base: str
    extradata_sha256: str | None


class PictureDecision(BaseModel):
    """How the film's picture is made from the sequences, and the sentence that says so."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    joinable: bool
    """Every clip carries the same stream parameters: a concat by stream copy is safe."""
    copied: bool
    """...and they meet the distribution profile: the film's picture is the clips' own."""
    note: str


class ProbedPicture(BaseModel):
    """A clip's picture: how long it lasts and what decides whether it joins by copy."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    duration_s: float
    signature: PictureSignature


def probe_picture(path: Path) -> ProbedPicture | None:
    """The first video stream of `path`, read in-process (PyAV: a few ms, where an ffprobe
    process costs tens); None when it has none."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return None
            stream = container.streams.video[0]
            context = stream.codec_context
            level = getattr(context, "level", None)
            extradata = context.extradata
            signature = PictureSignature(
                codec=context.name,
                profile=context.profile,
                level=level if isinstance(level, int) and level > 0 else None,
                pix_fmt=context.format.name if context.format is not None else "",
                width=context.width,
                height=context.height,
                frame_rate=str(stream.base_rate),
                time_base=str(stream.time_base),
                extradata_sha256=hashlib.sha256(extradata).hexdigest() if extradata else None,
            )
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            else:
                duration = (container.duration or 0) / av.time_base
    except (av.FFmpegError, OSError) as bad:
        raise MediaInvalid(f"cannot read the picture of {path}: {bad}") from bad
    return ProbedPicture(duration_s=duration, signature=signature)


def distribution_misses(
    codec: str, profile: str | None, level: int | None, pix_fmt: str
) -> list[str]:
    """What keeps a picture from being delivered as it is (empty: nothing)."""
    misses = []
    if codec != "h264":
        misses.append(f"codec {codec or 'unknown'}, not h264")
    if profile != DISTRIBUTION_PROFILE:
        misses.append(f"profile {profile}, not {DISTRIBUTION_PROFILE}")
    if level is None or level > DISTRIBUTION_LEVEL:
        shown = f"{level / 10:.1f}" if level else "unknown"
        misses.append(f"level {shown}, above {DISTRIBUTION_LEVEL / 10:.1f}")
    if pix_fmt != DISTRIBUTION_PIX_FMT:
        misses.append(f"pixel format {pix_fmt}, not {DISTRIBUTION_PIX_FMT}")
    return misses


def copies_as_distribution(video: VideoInfo) -> bool:
    """True when `video` can be stream-copied into a distribution film."""
    return not distribution_misses(video.codec, video.profile, video.level, video.pix_fmt)


def level_rewrite(level: int | None) -> int | None:
    """The level to write into a copied stream's headers (None: it already says 4.0)."""
    if level is None or level >= DISTRIBUTION_LEVEL:
        return None
    return DISTRIBUTION_LEVEL


_FIELDS: dict[str, str] = {
    "codec": "codec",
    "profile": "profile",
    "level": "level",
    "pix_fmt": "pixel format",
    "width": "width",
    "height": "height",
    "frame_rate": "frame rate",
    "time_base": "time base",
    "extradata_sha256": "parameter sets",
}


def _shown(name: str, value: object) -> str:
    if name == "level" and isinstance(value, int):
        return f"{value / 10:.1f}"
    return str(value)


def _differences(first: PictureSignature, other: PictureSignature) -> list[str]:
    ours, theirs = first.model_dump(), other.model_dump()
    return [
        f"{label} {_shown(name, theirs[name])} vs {_shown(name, ours[name])}"
        if name != "extradata_sha256"
        else "other parameter sets"
        for name, label in _FIELDS.items()
        if ours[name] != theirs[name]
    ]


def decide_picture(signatures: Sequence[PictureSignature]) -> PictureDecision:
    """Copy the picture when every clip matches the first and the distribution profile."""
    if not signatures:
        raise ValueError("decide_picture needs at least one clip")
    first = signatures[0]
    for number, other in enumerate(signatures[1:], start=1):
        differences = _differences(first, other)
        if differences:
            return PictureDecision(
                joinable=False,
                copied=False,
                note=f"re-encoded: sequence {number} differs from sequence 0 "
                f"({'; '.join(differences)})",
            )
    misses = distribution_misses(first.codec, first.profile, first.level, first.pix_fmt)
    if misses:
        return PictureDecision(
            joinable=True,
            copied=False,
            note=f"re-encoded to the distribution profile: the sequences are {'; '.join(misses)}",
        )
    marked = " (level marked 4.0)" if level_rewrite(first.level) else ""
    return PictureDecision(
        joinable=True,
        copied=True,
        note=f"stream-copied from the sequences, not re-encoded{marked}",
    )
