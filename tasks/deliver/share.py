"""Links a person on another machine can open: the film, its dailies and its pictures.

- A bucket store: the film folder is copied into the bucket (`films/<folder>/`) and every
  link is a presigned URL valid for `LINK_DAYS`; the bucket's copy of review.html points at
  presigned URLs too, so the whole page plays from the link alone.
- A local store: the film folders are served over HTTP (`python -m flows.film serve`) under
  a public base URL (`public_url` option, else $REELFLOW_PUBLIC_URL); links are built on it.
- Neither: there is no link a browser elsewhere can open; `Shared.note` says how to get one.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Callable
from collections.abc import Sequence as Seq
from datetime import timedelta
from html import escape
from pathlib import Path
from urllib.parse import quote, unquote

from botocore.config import Config
from prefect_aws import S3Bucket

from tasks.runtime.files import copy_atomic
from tasks.runtime.store import call_filesystem
from tasks.runtime.studio import Studio
from tasks.schema.outcomes import Deliverables, Footage, Shared
from tasks.schema.refs import MediaRef

LINK_DAYS = 7
"""Presigned links live this long (S3's longest for signature version 4)."""
PUBLIC_URL_ENV = "REELFLOW_PUBLIC_URL"
_RELATIVE_ATTRIBUTE = re.compile(r"((?:src|href|poster)=')([^'#:?][^':?]*)(')")


def public_base(studio: Studio) -> str:
    """The base URL OUT is served under ('' when none is configured)."""
    chosen = studio.options.studio.public_url or os.environ.get(PUBLIC_URL_ENV, "")
    return chosen.rstrip("/")


async def share_film(studio: Studio, footage: Footage, delivered: Deliverables) -> Shared:
    """Publish the film folder where it can be opened, and return the links to it."""
    keyframes = await _keyframes(studio, footage, delivered.folder)
    files = {
        "film": delivered.film,
        "review": delivered.folder / "review.html",
        "contact_sheet": delivered.contact_sheet,
    }
    bucket = studio.store.filesystem
    if isinstance(bucket, S3Bucket):
        return await _share_in_bucket(bucket, delivered.folder, files, keyframes)
    base = public_base(studio)
    if not base:
        return Shared(
            note=f"The film is on the worker at {delivered.folder}. To open it from a browser, "
            f"serve the output folder with `python -m flows.film serve --out "
            f"{delivered.folder.parent}` and set the `public_url` option (or "
            f"${PUBLIC_URL_ENV}) to the address it prints."
        )

    def url(path: Path) -> str:
        relative = path.relative_to(delivered.folder.parent).as_posix()
        return f"{base}/{quote(relative)}"

    return Shared(
        film=url(files["film"]),
        review=url(files["review"]),
        contact_sheet=url(files["contact_sheet"]),
        keyframes=tuple(url(path) for path in keyframes),
        files=_every_file(delivered.folder, url),
    )


async def _keyframes(studio: Studio, footage: Footage, folder: Path) -> list[Path]:
    """Each chain's keyframe as `keyframes/chainN.png` in the film folder."""
    return await keyframe_files(studio, [(c.chain, c.keyframe) for c in footage.chains], folder)


async def keyframe_files(
    studio: Studio, keyframes: Seq[tuple[int, MediaRef | None]], folder: Path
) -> list[Path]:
    """Each (chain, keyframe) as `keyframes/chainN.png` in the film folder (None: no image)."""
    written = []
    for chain, keyframe in keyframes:
        if keyframe is None:
            continue
        local = await studio.store.fetch(keyframe)
        target = folder / "keyframes" / f"chain{chain}{keyframe.suffix}"
        written.append(await asyncio.to_thread(copy_atomic, local, target))
    return written


def _presigner(bucket: S3Bucket, folder: Path) -> Callable[[Path], str]:
    """Presigned links to files of `folder` as copied into the bucket under `films/`."""
    prefix = f"films/{folder.name}"
    credentials = bucket.credentials
    # Signature version 4: what AWS requires in most regions, and what bounds a link's life.
    overrides = credentials.aws_client_parameters.get_params_override()
    config = Config(signature_version="s3v4")
    if (own := overrides.pop("config", None)) is not None:  # the block's own client config
        config = (own if isinstance(own, Config) else Config(**own)).merge(config)
    client = credentials.get_boto3_session().client("s3", config=config, **overrides)

    def presign(path: Path) -> str:
        key = bucket._resolve_path(f"{prefix}/{path.relative_to(folder).as_posix()}")
        url: str = client.generate_presigned_url(
            "get_object",
            Params={"Bucket": bucket.bucket_name, "Key": key},
            ExpiresIn=int(timedelta(days=LINK_DAYS).total_seconds()),
        )
        return url

    return presign


async def links_to(studio: Studio, folder: Path, paths: Seq[Path]) -> list[str] | None:
    """Links that open anywhere to some files of a film folder (a gate's material): copied
    into the bucket and presigned, or under the public base URL; None when there is neither."""
    bucket = studio.store.filesystem
    if isinstance(bucket, S3Bucket):
        presign = _presigner(bucket, folder)
        for path in paths:
            data = await asyncio.to_thread(path.read_bytes)
            key = f"films/{folder.name}/{path.relative_to(folder).as_posix()}"
            await call_filesystem(bucket.write_path, key, data)
        return [presign(path) for path in paths]
    base = public_base(studio)
    if not base:
        return None
    return [f"{base}/{quote(path.relative_to(folder.parent).as_posix())}" for path in paths]


async def _share_in_bucket(
    bucket: S3Bucket, folder: Path, files: dict[str, Path], keyframes: list[Path]
) -> Shared:
    prefix = f"films/{folder.name}"
    presign = _presigner(bucket, folder)
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.name == "review.html":
            continue
        data = await asyncio.to_thread(path.read_bytes)
        await call_filesystem(bucket.write_path, f"{prefix}/{path.relative_to(folder)}", data)
    page = files["review"]
    if page.exists():
        html = await asyncio.to_thread(page.read_text, "utf-8")
        signed = signed_page(html, folder, presign)
        await call_filesystem(bucket.write_path, f"{prefix}/review.html", signed.encode())
    return Shared(
        film=presign(files["film"]),
        review=presign(page),
        contact_sheet=presign(files["contact_sheet"]),
        keyframes=tuple(presign(path) for path in keyframes),
        files=_every_file(folder, presign),
        note=f"Links expire in {LINK_DAYS} days; the folder stays in the bucket under {prefix}/.",
    )


def _every_file(folder: Path, url: Callable[[Path], str]) -> dict[str, str]:
    """Every file of the folder (its relative path) with its link."""
    return {
        path.relative_to(folder).as_posix(): url(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def signed_page(html: str, folder: Path, presign: Callable[[Path], str]) -> str:
    """The review page with every link to a file of its folder replaced by `presign(path)`."""

    def replace(match: re.Match[str]) -> str:
        target = folder / unquote(match.group(2))
        if not target.is_file():
            return match.group(0)
        return f"{match.group(1)}{escape(presign(target), quote=True)}{match.group(3)}"

    return _RELATIVE_ATTRIBUTE.sub(replace, html)
