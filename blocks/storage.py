"""Where a studio keeps media and results: a local folder, or an S3(-compatible) bucket."""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar, Literal
from urllib.parse import urlsplit

from prefect.blocks.core import Block
from prefect_aws import AwsCredentials, S3Bucket
from prefect_aws.client_parameters import AwsClientParameters
from pydantic import Field, SecretStr

from tasks.errors import ReelflowError
from tasks.runtime.store import Storage, local_storage


class MediaStorage(Block):
    """The media store and Prefect result storage of reelflow renders."""

    _block_type_name: ClassVar[str] = "reelflow Media Storage"
    _block_type_slug: ClassVar[str] = "reelflow-media-storage"
    _description: ClassVar[str] = "Local folder or S3 bucket for reelflow media and results."

    kind: Literal["local", "s3"] = Field("local", description="local folder or S3 bucket")
    path: str = Field("renders/.reelflow", description="local folder (kind=local)")
    bucket: str | None = Field(None, description="bucket name (kind=s3)")
    prefix: str = Field("reelflow", description="folder inside the bucket")
    endpoint_url: str | None = Field(None, description="for S3-compatible stores (MinIO, ...)")
    region: str | None = Field(None, description="AWS region")
    access_key_id: str | None = Field(None, description="falls back to the AWS environment")
    secret_access_key: SecretStr | None = Field(
        None, description="falls back to the AWS environment"
    )

    def storage(self, scratch: Path) -> Storage:
        if self.kind == "local":
            return local_storage(Path(self.path))
        if not self.bucket:
            raise ReelflowError("MediaStorage kind='s3' needs a bucket name.")
        credentials = AwsCredentials(
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            region_name=self.region,
            aws_client_parameters=AwsClientParameters(endpoint_url=self.endpoint_url),
        )
        prefix = self.prefix.strip("/")
        return Storage(
            media=S3Bucket(bucket_name=self.bucket, credentials=credentials, bucket_folder=prefix),
            results=S3Bucket(
                bucket_name=self.bucket, credentials=credentials, bucket_folder=f"{prefix}/results"
            ),
            locks=scratch / "locks",
        )


async def resolve_storage(store: str | None, *, default: Path, scratch: Path) -> Storage:
    """`store` is a folder, `s3://bucket/prefix`, or `block:NAME` (a saved MediaStorage).

    Unset: $REELFLOW_STORE, else `default`. S3 credentials and endpoint come from the usual
    AWS environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL, ...).
    """
    choice = store or os.environ.get("REELFLOW_STORE") or str(default)
    if choice.startswith("block:"):
        block = await MediaStorage.aload(choice.removeprefix("block:"))
        return block.storage(scratch)
    if choice.startswith("s3://"):
        parts = urlsplit(choice)
        endpoint = os.environ.get("AWS_ENDPOINT_URL")
        return MediaStorage(
            kind="s3",
            bucket=parts.netloc,
            prefix=parts.path.strip("/") or "reelflow",
            endpoint_url=endpoint,
        ).storage(scratch)
    return local_storage(Path(choice))
