"""Masters beside the distribution film: ProRes 422 HQ or DNxHR HQ with 48 kHz PCM audio, or
the H.264 4:4:4 10-bit grading master.

ProRes and DNxHR are intra-frame 4:2:2 codecs an editor cuts without transcoding. Every
master is still SDR (the model renders SDR whatever the encoding) and carries the picture
frame for frame: no frame is duplicated or dropped, so the master's frame count is the
source's. The grading master keeps the distribution film's own AAC track, copied.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import ffmpeg

from tasks.media.encode import AUDIO_RATE, FASTSTART, VIDEO_MASTER
from tasks.media.errors import MediaError
from tasks.media.probe import probe
from tasks.media.run import atomic_output, run_ffmpeg
from tasks.schema.delivery import MasterKind

MezzanineKind = Literal["prores", "dnxhr"]

# prores_ks profile 3 is 422 HQ; the Apple vendor tag makes Apple tools trust the stream.
VIDEO_PRORES_HQ: dict[str, Any] = {
    "vcodec": "prores_ks",
    "profile:v": 3,
    "pix_fmt": "yuv422p10le",
    "vendor": "apl0",
    "fps_mode": "passthrough",
}

# DNxHR HQ is 8-bit 4:2:2 at any resolution (DNxHD's fixed sizes do not apply to it).
VIDEO_DNXHR_HQ: dict[str, Any] = {
    "vcodec": "dnxhd",
    "profile:v": "dnxhr_hq",
    "pix_fmt": "yuv422p",
    "fps_mode": "passthrough",
}

# Uncompressed 24-bit 48 kHz: what every post house's audio tools expect.
AUDIO_PCM_24: dict[str, Any] = {"acodec": "pcm_s24le", "ar": AUDIO_RATE}

MEZZANINE_VIDEO: dict[MezzanineKind, dict[str, Any]] = {
    "prores": VIDEO_PRORES_HQ,
    "dnxhr": VIDEO_DNXHR_HQ,
}
# ProRes lives in QuickTime only; DNxHR in QuickTime or MXF (Avid's own container).
MEZZANINE_SUFFIXES: dict[MezzanineKind, tuple[str, ...]] = {
    "prores": (".mov",),
    "dnxhr": (".mov", ".mxf"),
}
# ffmpeg's DNxHR encoder refuses pictures smaller than this.
DNXHR_MIN_SIZE = (256, 120)


def mezzanine_path(film: Path, kind: MezzanineKind) -> Path:
    """`<film stem>_<kind>.mov` beside `film`."""
    return film.with_name(f"{film.stem}_{kind}.mov")


def mezzanine_args(
    picture: Path, out: Path, kind: MezzanineKind, *, audio: Path | None = None
) -> list[str]:
    """ffmpeg arguments encoding `picture`'s video as a `kind` master into `out`.

    The audio comes from `audio` when given (e.g. a PCM mix), else from `picture` itself;
    either way it becomes 24-bit 48 kHz PCM.
    """
    source = ffmpeg.input(str(picture))
    sound = ffmpeg.input(str(audio)).audio if audio is not None else source.audio
    graph = ffmpeg.output(source.video, sound, str(out), **MEZZANINE_VIDEO[kind], **AUDIO_PCM_24)
    args: list[str] = graph.get_args()
    return args


def encode_mezzanine(
    picture: Path, dest: Path, kind: MezzanineKind, *, audio: Path | None = None
) -> Path:
    """Encode the `kind` master of `picture` (and `audio`, if given) into `dest`."""
    if kind not in MEZZANINE_VIDEO:
        raise MediaError(f"unknown master format {kind!r}; choose one of {sorted(MEZZANINE_VIDEO)}")
    if dest.suffix.lower() not in MEZZANINE_SUFFIXES[kind]:
        allowed = " or ".join(MEZZANINE_SUFFIXES[kind])
        raise MediaError(f"a {kind} master is written as {allowed}, not {dest.name}")
    info = probe(picture)
    if info.video is None:
        raise MediaError(f"{picture} has no video stream to master")
    min_w, min_h = DNXHR_MIN_SIZE
    if kind == "dnxhr" and (info.video.width < min_w or info.video.height < min_h):
        raise MediaError(
            f"{picture} is {info.video.width}x{info.video.height}; DNxHR needs at least"
            f" {min_w}x{min_h}: choose the prores master for a picture this small"
        )
    if audio is None and info.audio is None:
        raise MediaError(f"{picture} has no audio stream; pass the film's mix as audio")
    with atomic_output(dest) as tmp:
        run_ffmpeg(mezzanine_args(picture, tmp, kind, audio=audio))
    return dest


def master_path(film: Path, kind: MasterKind) -> Path:
    """Where the `kind` master of `film` goes: `<stem>_master.mp4` (yuv444), `<stem>_prores.mov`
    or `<stem>_dnxhr.mov`."""
    if kind == "yuv444":
        return film.with_name(f"{film.stem}_master.mp4")
    if kind in MEZZANINE_VIDEO:
        return mezzanine_path(film, kind)  # type: ignore[arg-type]
    raise MediaError(f"no master file for master kind {kind!r}")


def grading_master_args(picture: Path, sound: Path, out: Path) -> list[str]:
    """ffmpeg arguments: `picture` as H.264 4:4:4 10-bit, `sound`'s audio stream copied."""
    graph = ffmpeg.output(
        ffmpeg.input(str(picture)).video,
        ffmpeg.input(str(sound)).audio,
        str(out),
        **VIDEO_MASTER,
        acodec="copy",
        **FASTSTART,
    )
    args: list[str] = graph.get_args()
    return args


def encode_master(picture: Path, dest: Path, kind: MasterKind, *, audio: Path) -> Path:
    """The `kind` master of `picture` with `audio`'s sound (the delivered film's mix)."""
    if kind == "yuv444":
        if probe(picture).video is None:
            raise MediaError(f"{picture} has no video stream to master")
        if probe(audio).audio is None:
            raise MediaError(f"{audio} has no audio stream for the master")
        with atomic_output(dest) as tmp:
            run_ffmpeg(grading_master_args(picture, audio, tmp))
        return dest
    if kind not in MEZZANINE_VIDEO:
        raise MediaError(f"unknown master kind {kind!r}; choose yuv444, prores or dnxhr")
    return encode_mezzanine(picture, dest, kind, audio=audio)  # type: ignore[arg-type]
