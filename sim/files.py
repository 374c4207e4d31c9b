"""``/view`` and ``/upload/image``: file transfer with ComfyUI's naming and path rules."""

from __future__ import annotations

import hashlib
import mimetypes
import os
from pathlib import Path
from typing import Any

from aiohttp import web

from sim import previews

_CONTENT_TYPES = {
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".webp": "image/webp",
    ".png": "image/png",
    ".flac": "audio/flac",
    ".mp3": "audio/mpeg",
    ".opus": "audio/ogg",
    ".wav": "audio/wav",
    ".latent": "application/octet-stream",
}


def _folders(request: web.Request) -> dict[str, Path]:
    folders = request.app["sim"].folders
    return {"output": folders.output, "input": folders.input, "temp": folders.temp}


def _inside(root: Path, path: Path) -> bool:
    return os.path.commonpath([root.resolve(), path.resolve()]) == str(root.resolve())


async def view(request: web.Request) -> web.StreamResponse:
    query = request.query
    # "x.png [output]" names its folder itself, whatever the type says.
    filename, annotated = request.app["sim"].folders.split(query.get("filename", ""))
    if not filename or filename.startswith("/") or ".." in filename:
        return web.Response(status=400)
    annotation = query.get("filename", "") != filename
    root = annotated if annotation else _folders(request).get(query.get("type", "output"))
    if root is None:
        return web.Response(status=400)
    folder = root / query.get("subfolder", "")
    if not _inside(root, folder):
        return web.Response(status=403)
    path = folder / os.path.basename(filename)
    if not path.is_file():
        return web.Response(status=404)
    channel = query.get("channel", "")
    converted = (
        previews.preview(path, query["preview"], channel)
        if "preview" in query
        else previews.one_channel(path, channel or "rgba")
    )
    if converted is not None:
        disposition = {"Content-Disposition": f'filename="{converted.filename}"'}
        return web.Response(
            body=converted.body, content_type=converted.content_type, headers=disposition
        )
    kind = _CONTENT_TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0]
    headers = {"Content-Disposition": f'filename="{path.name}"'}
    if kind:
        headers["Content-Type"] = kind
    return web.FileResponse(path, headers=headers)


async def upload_image(request: web.Request) -> web.Response:
    post = await request.post()
    image: Any = post.get("image")
    if image is None or not hasattr(image, "file") or not image.filename:
        return web.Response(status=400)
    kind = str(post.get("type") or "input")
    root = _folders(request).get(kind)
    if root is None:
        kind, root = "input", _folders(request)["input"]
    subfolder = str(post.get("subfolder", ""))
    folder = root / os.path.normpath(subfolder) if subfolder else root
    target = folder / image.filename
    if not _inside(root, target):
        return web.Response(status=400)
    folder.mkdir(parents=True, exist_ok=True)
    data = image.file.read()
    name = Path(image.filename).name
    overwrite = str(post.get("overwrite", "")) in ("true", "1")
    if not overwrite:
        stem, suffix = os.path.splitext(name)
        attempt = 1
        digest = hashlib.sha256(data).digest()
        while target.exists():
            if hashlib.sha256(target.read_bytes()).digest() == digest:
                # An identical re-upload keeps the existing name and file.
                return web.json_response({"name": name, "subfolder": subfolder, "type": kind})
            name = f"{stem} ({attempt}){suffix}"
            target = folder / name
            attempt += 1
    partial = target.with_name(target.name + ".partial")
    partial.write_bytes(data)
    partial.replace(target)
    return web.json_response({"name": name, "subfolder": subfolder, "type": kind})


ROUTES: list[tuple[str, str, Any]] = [
    ("GET", "/view", view),
    ("POST", "/upload/image", upload_image),
]
