"""Downloading a prompt's outputs: streamed to a temporary name, checked, renamed, synced."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

import httpx

from tasks.comfyui import protocol as p
from tasks.comfyui.errors import OutputInvalid, ServerError
from tasks.comfyui.transport import mapped
from tasks.runtime.disk import raise_if_disk_full


async def download_output(
    http: httpx.AsyncClient, base_url: str, output: p.OutputFile, dest_dir: Path
) -> Path:
    """Stream one output into ``dest_dir`` under its server name, atomically; a body shorter
    than the server announced, or empty, is refused."""
    p.check_output_path(output)
    dest_dir.mkdir(parents=True, exist_ok=True)
    final = dest_dir / output.filename
    params = {"filename": output.filename, "subfolder": output.subfolder, "type": output.type}
    fd, tmp_name = tempfile.mkstemp(dir=dest_dir, prefix=f".{output.filename}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with raise_if_disk_full(tmp), os.fdopen(fd, "wb") as fh:  # ENOSPC: DiskFull, its disk
            written, expected = await _stream_view(http, base_url, params, fh)
            fh.flush()
            os.fsync(fh.fileno())
        if written == 0 or (expected is not None and expected != written):
            raise OutputInvalid(
                f"{output.filename}: got {written} bytes, server announced {expected}"
            )
        os.replace(tmp, final)
        _fsync_dir(dest_dir)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return final


async def _stream_view(
    http: httpx.AsyncClient, base_url: str, params: dict[str, str], fh: Any
) -> tuple[int, int | None]:
    written = 0
    with mapped(f"GET {base_url}/view {params['filename']}"):
        async with http.stream("GET", "/view", params=params) as response:
            if response.status_code >= 500:
                raise ServerError(
                    f"GET {base_url}/view {params['filename']}: server error "
                    f"{response.status_code}",
                    status_code=response.status_code,
                )
            if response.status_code != 200:
                raise OutputInvalid(f"GET {base_url}/view {params}: HTTP {response.status_code}")
            length = response.headers.get("content-length")
            encoded = response.headers.get("content-encoding", "identity") != "identity"
            async for chunk in response.aiter_bytes(1 << 20):
                fh.write(chunk)
                written += len(chunk)
    expected = int(length) if length and length.isdigit() and not encoded else None
    return written, expected


def _fsync_dir(path: Path) -> None:
    """Make the rename itself durable; some filesystems refuse, which is harmless."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
