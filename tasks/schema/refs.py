"""References to media: what tasks pass around instead of bytes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class MediaRef(BaseModel):
    """A file in the media store, named by its content."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sha256: str
    suffix: str
    size: int

    @property
    def key(self) -> str:
        return f"media/{self.sha256[:2]}/{self.sha256}{self.suffix}"

    @property
    def short(self) -> str:
        return self.sha256[:12]
