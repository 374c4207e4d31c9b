"""Read and write the model-free values as files: PIL for pictures, ffmpeg for the rest.

Every ffmpeg call is an argument list built by a function a test can read; raw samples
and frames reach ffmpeg through stdin or a scratch file, never through the command line.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageSequence

from sim.values import Audio, Images, Masks, Video

QUIET = ["ffmpeg", "-y", "-hide_banner", "-loglevel", "error"]
AUDIO_CODECS: dict[str, list[str]] = {
    "flac": ["-c:a", "flac"],
    "mp3": ["-c:a", "libmp3lame", "-q:a", "0"],
    "opus": ["-c:a", "libopus", "-b:a", "128k"],
}


class MediaError(RuntimeError):
    """ffmpeg could not read or write a file."""


def _run(args: list[str], data: bytes | None = None) -> bytes:
    result = subprocess.run(args, input=data, capture_output=True, check=False)
    if result.returncode != 0:
        raise MediaError(result.stderr.decode(errors="replace")[-2000:].strip())
    return result.stdout


def load_picture(path: Path) -> tuple[Images, Masks]:
    """An image file as ComfyUI's LoadImage gives it: frames of the first frame's size,
    and a mask that is 1 where the picture is transparent (0 everywhere without alpha)."""
    with Image.open(path) as picture:
        frames, masks = [], []
        size = picture.size
        for frame in ImageSequence.Iterator(picture):
            if frame.size != size:
                continue
            frames.append(np.asarray(frame.convert("RGB"), dtype=np.uint8))
            if "A" in frame.getbands():
                alpha = np.asarray(frame.getchannel("A"), dtype=np.float32) / 255.0
                masks.append(1.0 - alpha)
            else:
                masks.append(np.zeros((64, 64), dtype=np.float32))
    return Images(np.stack(frames)), Masks(np.stack(masks))


def probe_args(path: Path) -> list[str]:
    """ffprobe of a file's streams, as JSON."""
    return ["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(path)]


def _streams(path: Path, kind: str) -> list[dict[str, Any]]:
    found = json.loads(_run(probe_args(path))).get("streams", [])
    return [s for s in found if s.get("codec_type") == kind]


def decode_audio_args(path: Path, channels: int, rate: int) -> list[str]:
    """Decode a file's first audio stream to interleaved float32 on stdout."""
    return [
        *QUIET, "-i", str(path), "-vn", "-ac", str(channels), "-ar", str(rate), "-f", "f32le", "-",
    ]  # fmt: skip


def load_audio(path: Path) -> Audio:
    """A file's audio at its own rate and channel count (LoadAudio)."""
    streams = _streams(path, "audio")
    if not streams:
        raise MediaError(f"no audio stream in {path.name}")
    channels = int(streams[0].get("channels", 2))
    rate = int(streams[0].get("sample_rate", 44100))
    raw = np.frombuffer(_run(decode_audio_args(path, channels, rate)), dtype=np.float32)
    return Audio(raw.reshape(-1, channels).T.copy(), rate)


def decode_video_args(path: Path) -> list[str]:
    """Decode a file's frames to raw RGB on stdout."""
    return [*QUIET, "-i", str(path), "-an", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]


def load_video(path: Path) -> Video:
    """A video file's frames, soundtrack (if any) and frame rate (LoadVideo)."""
    streams = _streams(path, "video")
    if not streams:
        raise MediaError(f"no video stream in {path.name}")
    width, height = int(streams[0]["width"]), int(streams[0]["height"])
    num, _, den = str(streams[0].get("avg_frame_rate", "24/1")).partition("/")
    fps = float(num) / float(den or 1) if float(den or 1) else 24.0
    raw = np.frombuffer(_run(decode_video_args(path)), dtype=np.uint8)
    frames = Images(raw.reshape(-1, height, width, 3).copy())
    audio = load_audio(path) if _streams(path, "audio") else None
    return Video(frames, audio, fps)


def encode_audio_args(audio: Audio, codec: str, out: Path) -> list[str]:
    """Encode interleaved float32 from stdin with one of ``AUDIO_CODECS``."""
    channels = str(audio.samples.shape[0])
    source = ["-f", "f32le", "-ar", str(audio.rate), "-ac", channels, "-i", "-"]
    rate = ["-ar", "48000"] if codec == "opus" else []  # opus only runs at 48 kHz
    return [*QUIET, *source, *AUDIO_CODECS[codec], *rate, str(out)]


def write_audio(audio: Audio, codec: str, out: Path) -> None:
    """Save ``audio`` as flac, mp3 or opus."""
    interleaved = np.ascontiguousarray(audio.samples.T, dtype=np.float32)
    _run(encode_audio_args(audio, codec, out), interleaved.tobytes())


def encode_video_args(
    width: int, height: int, fps: float, audio: Path | None, audio_format: list[str], out: Path
) -> list[str]:
    """Encode raw RGB frames from stdin (and a raw soundtrack file) to mp4 or webm."""
    webm = out.suffix == ".webm"
    args = [*QUIET, "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}"]
    args += ["-r", f"{fps:g}", "-i", "-"]
    if audio is not None:
        args += [*audio_format, "-i", str(audio)]
    # yuv420p needs even sides: pad by one pixel where a side is odd.
    args += ["-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-pix_fmt", "yuv420p"]
    if webm:
        args += ["-c:v", "libvpx-vp9", "-crf", "32", "-b:v", "0"]
    else:
        args += ["-c:v", "libx264", "-preset", "veryfast", "-crf", "20"]
    if audio is not None:
        args += ["-c:a", "libopus" if webm else "aac", "-shortest"]
    return [*args, str(out)]


def write_video(video: Video, out: Path) -> None:
    """Save frames (and sound) as an h264/aac mp4 or a vp9/opus webm."""
    _, height, width = video.images.pixels.shape[:3]
    with tempfile.TemporaryDirectory(prefix="sim-video-") as scratch:
        track = None
        audio_format: list[str] = []
        if video.audio is not None:
            track = Path(scratch) / "track.f32"
            track.write_bytes(np.ascontiguousarray(video.audio.samples.T).tobytes())
            channels = str(video.audio.samples.shape[0])
            audio_format = ["-f", "f32le", "-ar", str(video.audio.rate), "-ac", channels]
        args = encode_video_args(width, height, video.fps, track, audio_format, out)
        _run(args, np.ascontiguousarray(video.images.pixels).tobytes())


def write_png(pixels: np.ndarray, out: Path) -> None:
    """One frame as PNG."""
    Image.fromarray(pixels).save(out, compress_level=4)


def write_animated(images: Images, fps: float, out: Path, **options: Any) -> None:
    """All frames as one animated WebP or PNG (by ``out``'s suffix)."""
    frames = [Image.fromarray(frame) for frame in images.pixels]
    duration = round(1000 / fps) if fps > 0 else 100
    kind = "WEBP" if out.suffix == ".webp" else "PNG"
    frames[0].save(
        out, kind, save_all=True, append_images=frames[1:], duration=duration, loop=0, **options
    )
