"""The one place reelflow runs ffmpeg and ffprobe, and writes outputs atomically."""

from __future__ import annotations

import contextlib
import errno
import json
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from tasks.media.errors import DiskFull, MediaError, MediaInvalid
from tasks.runtime.files import atomic_path

FFMPEG = "ffmpeg"
FFPROBE = "ffprobe"
_STDERR_TAIL_LINES = 8
_ENOSPC_TEXT = "No space left on device"


def _tail(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return "\n".join(lines[-_STDERR_TAIL_LINES:])


def ffmpeg_command(args: Sequence[str]) -> list[str]:
    """The full ffmpeg argument list reelflow runs for `args` (quiet, never interactive)."""
    return [FFMPEG, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args]


def run_ffmpeg(args: Sequence[str], *, stdin: bytes | None = None) -> str:
    """Run ffmpeg with `args`; return its stderr, or raise MediaError / DiskFull."""
    command = ffmpeg_command(args)
    try:
        done = subprocess.run(command, input=stdin, capture_output=True, check=False)
    except OSError as exc:
        raise MediaError(f"cannot start ffmpeg: {exc}") from exc
    stderr = done.stderr.decode("utf-8", "replace")
    # ffmpeg can exit 0 after a failed write; a full disk is an error whatever the exit code.
    if _ENOSPC_TEXT in stderr:
        # ffmpeg's output is always the last argument in every graph we build.
        raise DiskFull(Path(args[-1]).parent, _tail(stderr))
    if done.returncode != 0:
        raise MediaError(f"ffmpeg failed (exit {done.returncode}):\n{_tail(stderr)}")
    return stderr


def run_ffprobe(path: Path, args: Sequence[str], *, clean: bool = False) -> dict[str, Any]:
    """Run ffprobe with JSON output on `path`; raise MediaError if it cannot read it.

    `clean`: any error ffprobe reports while reading (a decode error with `-count_frames`)
    raises MediaInvalid, even where it still produced an answer.
    """
    command = [FFPROBE, "-v", "error", "-of", "json", *args, str(path)]
    done = subprocess.run(command, capture_output=True, check=False)
    stderr = done.stderr.decode("utf-8", "replace")
    if done.returncode != 0:
        raise MediaError(f"ffprobe cannot read {path}:\n{_tail(stderr)}")
    if clean and stderr.strip():
        first_lines = "\n".join(stderr.strip().splitlines()[:_STDERR_TAIL_LINES])
        raise MediaInvalid(
            f"{path} does not decode cleanly (truncated or corrupt?):\n{first_lines}"
        )
    result: dict[str, Any] = json.loads(done.stdout or b"{}")
    return result


@contextlib.contextmanager
def atomic_output(dest: Path) -> Iterator[Path]:
    """`tasks.runtime.files.atomic_path` for ffmpeg outputs, with a full disk named as such."""
    try:
        with atomic_path(dest) as tmp:
            yield tmp
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise DiskFull(dest.parent, str(exc)) from exc
        raise
