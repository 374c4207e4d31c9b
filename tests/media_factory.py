"""Synthesize real test media with ffmpeg lavfi and espeak-ng (shared by many test files).

Every clip has an exact frame count, H.264 yuv420p video and stereo AAC audio, so
tests exercise the same code paths a rendered LTX sequence does.
"""

from __future__ import annotations

import hashlib
import subprocess
import tempfile
from pathlib import Path
from typing import Literal

import av

AudioKind = Literal["speech", "sine", "silence", "noise", "none"]
DEFAULT_LINE = "Make him follow you in, and keep the lamp burning until morning."


def _ffmpeg(*args: str) -> None:
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args], check=True
    )


def speech_wav(dest: Path, text: str = DEFAULT_LINE, *, rate: int = 48000) -> Path:
    """Speak `text` with espeak-ng into a mono wav resampled to `rate`."""
    with tempfile.TemporaryDirectory() as scratch:
        raw = Path(scratch) / "speech.wav"
        subprocess.run(["espeak-ng", "-w", str(raw), text], check=True, capture_output=True)
        _ffmpeg("-i", str(raw), "-ar", str(rate), "-ac", "1", str(dest))
    return dest


def _audio_source(kind: AudioKind, seconds: float, rate: int, speech: Path | None) -> list[str]:
    if kind == "sine":
        return ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate={rate}:duration={seconds}"]
    if kind == "noise":
        return ["-f", "lavfi", "-i", f"anoisesrc=color=pink:amplitude=0.2:r={rate}:d={seconds}"]
    if kind == "silence":
        return ["-f", "lavfi", "-i", f"anullsrc=r={rate}:cl=stereo"]
    assert speech is not None
    return ["-i", str(speech)]


def make_clip(
    dest: Path,
    *,
    frames: int = 24,
    fps: int = 24,
    size: tuple[int, int] = (320, 240),
    audio: AudioKind = "sine",
    gain_db: float = 0.0,
    audio_rate: int = 48000,
    last_frame_color: str | None = None,
    gop: int = 12,
    text: str = DEFAULT_LINE,
) -> Path:
    """An mp4 of exactly `frames` testsrc2 frames with `audio` lasting the same time.

    gain_db shifts the audio from its source level (sine -18 dBFS peak, speech about
    -1 dBFS peak). last_frame_color paints only the final frame a solid colour.
    """
    seconds = frames / fps
    width, height = size
    video_filter = "null"
    if last_frame_color is not None:
        video_filter = (
            f"drawbox=x=0:y=0:w=iw:h=ih:color={last_frame_color}:t=fill:enable='eq(n,{frames - 1})'"
        )
    with tempfile.TemporaryDirectory() as scratch:
        speech = speech_wav(Path(scratch) / "line.wav", text, rate=audio_rate)
        args = [
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=size={width}x{height}:rate={fps}:duration={seconds}",
        ]
        if audio != "none":
            args += _audio_source(audio, seconds, audio_rate, speech)
        args += ["-vf", video_filter]
        args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", str(gop)]
        if audio != "none":
            args += [
                "-af",
                f"volume={gain_db}dB,apad,atrim=duration={seconds}",
                "-ac",
                "2",
                "-ar",
                str(audio_rate),
                "-c:a",
                "aac",
            ]
        _ffmpeg(*args, str(dest))
    return dest


def make_tone(dest: Path, *, seconds: float, frequency: float = 220.0, rate: int = 48000) -> Path:
    """A stereo sine tone (-18 dBFS peak) of `seconds`, in the format `dest`'s suffix names."""
    source = f"sine=frequency={frequency}:sample_rate={rate}:duration={seconds}"
    _ffmpeg("-f", "lavfi", "-i", source, "-ac", "2", str(dest))
    return dest


def video_packet_digest(path: Path) -> str:
    """sha256 over every video packet's bytes: equal digests mean the video was copied."""
    digest = hashlib.sha256()
    with av.open(str(path)) as container:
        for packet in container.demux(container.streams.video[0]):
            if packet.size:
                digest.update(bytes(packet))
    return digest.hexdigest()
