"""Screenplays in a bucket: `s3://bucket/prefix` read with the AWS_* environment, as the
media store reads its own (AWS_ENDPOINT_URL for MinIO and friends)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from tasks.errors import ReelflowError
from tasks.runtime.files import write_atomic


class BucketUnreadable(ReelflowError):
    """Objects in a bucket cannot be listed or read."""


def _explain(uri: str, failure: Exception) -> BucketUnreadable:
    return BucketUnreadable(
        f"cannot read {uri}: {failure}. Check the bucket name and the AWS_* environment "
        "(credentials, AWS_ENDPOINT_URL)."
    )


def json_objects(uri: str) -> list[str]:
    """The keys of the `.json` objects directly under `s3://bucket/prefix`, sorted."""
    parts = urlsplit(uri)
    prefix = parts.path.strip("/")
    prefix = f"{prefix}/" if prefix else ""
    try:
        pages = (
            boto3.client("s3")
            .get_paginator("list_objects_v2")
            .paginate(Bucket=parts.netloc, Prefix=prefix, Delimiter="/")
        )
        return sorted(
            item["Key"]
            for page in pages
            for item in page.get("Contents", [])
            if item["Key"].endswith(".json")
        )
    except (BotoCoreError, ClientError) as failure:
        raise _explain(uri, failure) from failure


def download(uri: str, dest: Path) -> Path:
    """The object `s3://bucket/key` as the local file `dest` (written atomically)."""
    parts = urlsplit(uri)
    try:
        body = boto3.client("s3").get_object(Bucket=parts.netloc, Key=parts.path.lstrip("/"))
        return write_atomic(dest, body["Body"].read())
    except (BotoCoreError, ClientError) as failure:
        raise _explain(uri, failure) from failure
