"""Render animatic media with ffmpeg: sequence videos and keyframe stills.

Portraits and the reference pictures a keyframe carries are drawn by ``sim.pictures``.

Every ffmpeg call is an argument list; user text reaches ``drawtext`` only through
``textfile=`` so quotes, colons and ``|`` in a prompt cannot break the filter graph.
"""

from __future__ import annotations

import random
import subprocess
import tempfile
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import soundfile

from sim.graph import Guide, ImageSpec, VideoSpec
from sim.pictures import carry_references, portrait
from sim.speech import SAMPLE_RATE, SoundtrackFaults, soundtrack
from sim.voices import Voice

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
DRIFT = 0.04  # largest seeded brightness/gamma shift across one generation


class RenderError(RuntimeError):
    """ffmpeg failed to produce a file."""


def _run(args: list[str]) -> None:
    result = subprocess.run(args, capture_output=True, check=False)
    if result.returncode != 0:
        tail = result.stderr.decode(errors="replace")[-2000:]
        raise RenderError(f"ffmpeg failed ({result.returncode}): {tail}")


def seeded_colour(seed: int, salt: int = 0) -> str:
    """A muted background colour as ffmpeg ``0xRRGGBB``, fixed by the seed."""
    rng = random.Random(seed * 7919 + salt)
    return "0x" + "".join(f"{rng.randint(40, 150):02x}" for _ in range(3))


def _escape_path(path: Path) -> str:
    # Filter-graph escaping for a path we created ourselves (no user text in it).
    return str(path).replace("\\", "\\\\").replace(":", "\\:").replace("'", "\\'")


def _wrap(text: str, width_px: int, font_px: int, max_lines: int) -> str:
    columns = max(12, int(width_px / (font_px * 0.58)))
    lines = textwrap.wrap(text, columns) or [""]
    if len(lines) > max_lines:
        lines = [*lines[: max_lines - 1], lines[max_lines - 1][: columns - 1] + "…"]
    return "\n".join(lines)


@dataclass(frozen=True)
class Drift:
    """A generation's slow colour shift, reached at its last frame."""

    brightness: float
    gamma_r: float
    gamma_b: float

    @classmethod
    def for_seed(cls, seed: int) -> Drift:
        rng = random.Random(seed ^ 0xD81F7)
        return cls(
            brightness=rng.uniform(0.4, 1.0) * DRIFT * rng.choice((-1, 1)),
            gamma_r=1 + rng.uniform(-1, 1) * DRIFT,
            gamma_b=1 + rng.uniform(-1, 1) * DRIFT,
        )

    def eq_filter(self, frames: int) -> str:
        """``eq`` that is the identity on frame 0 and the full shift on the last frame."""
        ramp = f"(n/{max(frames - 1, 1)})"
        return (
            f"eq=eval=frame:brightness={self.brightness:.5f}*{ramp}"
            f":gamma_r=1+{self.gamma_r - 1:.5f}*{ramp}:gamma_b=1+{self.gamma_b - 1:.5f}*{ramp}"
        )


def _frame_of(guide: Guide, frames: int) -> int:
    """A guide's frame index counted from the start (negative ones count from the end)."""
    index = guide.frame_idx if guide.frame_idx >= 0 else frames + guide.frame_idx
    return min(max(index, 0), frames - 1)


def video_args(
    spec: VideoSpec,
    start_image: Path | None,
    work: Path,
    out: Path,
    guides: tuple[tuple[Path, Guide], ...] = (),
) -> list[str]:
    """The ffmpeg argument list for one sequence (audio taken from ``work/track.wav``).

    Each image guide is shown whole (scaled to fit, proportions kept) from its frame
    onwards, until a later guide takes over; a guide at frame 0 of a render without a start
    image becomes its first frame, as a start image would.
    """
    size = f"{spec.width}x{spec.height}"
    fps = f"{spec.fps:g}"
    # A finite source (one frame spare) lets ffmpeg finish the audio before closing the file.
    seconds = f"{(spec.frames + 1) / spec.fps:.6f}"
    placed = sorted(((_frame_of(g, spec.frames), path) for path, g in guides), key=lambda p: p[0])
    if start_image is None and placed and placed[0][0] == 0:
        start_image = placed.pop(0)[1]
    pictured = start_image is not None or bool(placed)
    if start_image is not None:
        source = ["-loop", "1", "-framerate", fps, "-t", seconds, "-i", str(start_image)]
        base = f"[0:v]scale={spec.width}:{spec.height}:flags=bicubic,setsar=1,format=rgb24"
    else:
        colour = seeded_colour(spec.seed)
        source = ["-f", "lavfi", "-i", f"color=c={colour}:s={size}:r={fps}:d={seconds}"]
        base = "[0:v]format=rgb24"
    first_guide_input = 2 if spec.with_audio else 1
    chains: list[str] = []
    guide_inputs: list[str] = []
    for number, (frame, path) in enumerate(placed):
        guide_inputs += ["-loop", "1", "-framerate", fps, "-t", seconds, "-i", str(path)]
        chains.append(
            f"[{first_guide_input + number}:v]scale={spec.width}:{spec.height}"
            ":force_original_aspect_ratio=decrease:flags=bicubic,"
            f"pad={spec.width}:{spec.height}:(ow-iw)/2:(oh-ih)/2,setsar=1,format=rgb24[g{number}]"
        )
        base += f"[b{number}];[b{number}][g{number}]overlay=0:0:enable='gte(n,{frame})'"
    font_px = max(10, spec.height // 20)
    # trim, not -frames:v: an output frame limit would also cut the audio stream short.
    steps = [
        base,
        f"trim=end_frame={spec.frames}",
        Drift.for_seed(spec.seed).eq_filter(spec.frames),
    ]
    first = 0
    for index, segment in enumerate(spec.segments):
        last = min(first + segment.frames, spec.frames) - 1
        text_file = work / f"segment_{index}.txt"
        text_file.write_text(_wrap(segment.prompt, spec.width - 20, font_px, 6), encoding="utf-8")
        # Frame 0 stays untouched: it must be the carried-forward start image itself.
        shown_from = max(first, 1)
        if not pictured:
            tint = seeded_colour(spec.seed, index + 1)
            steps.append(
                f"drawbox=x=0:y=0:w=iw:h=ih:color={tint}@0.45:t=fill"
                f":enable='between(n,{shown_from},{last})'"
            )
        steps.append(
            f"drawtext=fontfile={FONT}:textfile='{_escape_path(text_file)}':fontsize={font_px}"
            f":fontcolor=white:box=1:boxcolor=black@0.55:boxborderw=6:x=10:y=10"
            f":enable='between(n,{shown_from},{last})'"
        )
        first = last + 1
    steps.append("format=yuv420p[v]")
    graph = ";".join([*chains, ",".join(steps)])
    args = ["ffmpeg", "-y", "-hide_banner", "-loglevel", "error", *source]
    if spec.with_audio:
        args += ["-i", str(work / "track.wav")]
    args += guide_inputs
    args += ["-filter_complex", graph, "-map", "[v]"]
    args += ["-r", fps]
    args += ["-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p"]
    if spec.with_audio:
        args += ["-map", "1:a", "-c:a", "aac", "-b:a", "160k", "-ar", str(SAMPLE_RATE), "-ac", "2"]
    args += ["-movflags", "+faststart", str(out)]
    return args


def render_video(
    spec: VideoSpec,
    start_image: Path | None,
    out: Path,
    faults: SoundtrackFaults | None = None,
    voices: Mapping[str, Voice] | None = None,
    guides: tuple[tuple[Path, Guide], ...] = (),
) -> None:
    """Write the sequence mp4: ``spec.frames`` frames at ``spec.fps`` with spoken dialogue
    (``voices`` cast as ``sim.speech.soundtrack`` reads them) and the image guides."""
    with tempfile.TemporaryDirectory(prefix="animatic-") as scratch:
        work = Path(scratch)
        if spec.with_audio:
            audio = soundtrack(spec.segments, spec.fps, spec.frames, spec.seed, faults, voices)
            soundfile.write(work / "track.wav", audio, SAMPLE_RATE, subtype="PCM_16")
        _run(video_args(spec, start_image, work, out, guides))


def still_args(spec: ImageSpec, text_file: Path, out: Path) -> list[str]:
    """The ffmpeg argument list for one keyframe PNG."""
    size = f"{spec.width}x{spec.height}"
    font_px = max(10, spec.height // 22)
    graph = ",".join(
        [
            f"drawbox=x=0:y=ih*2/3:w=iw:h=ih/3:color={seeded_colour(spec.seed, 1)}:t=fill",
            f"drawbox=x=iw/8:y=ih/5:w=iw/5:h=ih/2:color={seeded_colour(spec.seed, 2)}:t=fill",
            f"drawtext=fontfile={FONT}:textfile='{_escape_path(text_file)}':fontsize={font_px}"
            ":fontcolor=white:box=1:boxcolor=black@0.5:boxborderw=6:x=10:y=10",
        ]
    )
    source = f"color=c={seeded_colour(spec.seed)}:s={size}:r=1"
    return [
        "ffmpeg", "-y", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", source,
        "-vf", graph, "-frames:v", "1", "-update", "1", str(out),
    ]  # fmt: skip


def render_still(spec: ImageSpec, out: Path, references: tuple[Path, ...] = ()) -> None:
    """Write one PNG: a portrait, or a seeded keyframe with its prompt (and ``references``,
    the pictures an edit prompt was given, drawn into it)."""
    if spec.portrait:
        portrait(spec.text, spec.seed, spec.width, spec.height).save(out, "PNG")
        return
    with tempfile.TemporaryDirectory(prefix="keyframe-") as scratch:
        text_file = Path(scratch) / "prompt.txt"
        font_px = max(10, spec.height // 22)
        text_file.write_text(_wrap(spec.text, spec.width - 20, font_px, 8), encoding="utf-8")
        _run(still_args(spec, text_file, out))
    if references:
        carry_references(out, list(references))
