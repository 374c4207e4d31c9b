"""Prefect block naming the speech recognizer the dialogue check listens with.

Constructing a block needs no Prefect API; ``.save()`` and ``.load()`` do.
"""

from __future__ import annotations

from typing import ClassVar, Literal
from urllib.parse import urlsplit

from prefect.blocks.core import Block
from pydantic import Field, SecretStr, model_validator

from tasks.runtime.asr import EmbeddedTranscriber, Transcriber, WhisperServerTranscriber


class ASREndpoint(Block):
    """Where speech is recognized: the embedded offline model, or a Whisper server."""

    _block_type_name: ClassVar[str] = "ASR Endpoint"
    _block_type_slug: ClassVar[str] = "reelflow-asr-endpoint"
    _description: ClassVar[str] = (
        "The speech recognizer for reelflow's dialogue check: 'embedded' (Whisper tiny.en "
        "on CPU, offline) or 'openai' (any OpenAI-compatible /v1/audio/transcriptions server)."
    )

    kind: Literal["embedded", "openai"] = "embedded"
    url: str | None = Field(None, description="Base URL of the server, e.g. http://asr-box:8000")
    model: str = Field("whisper-1", description="Model name sent to the server.")
    api_key: SecretStr | None = Field(None, description="Sent as 'Authorization: Bearer ...'.")
    language: str = Field("en", description="Spoken language of the dialogue (ISO 639-1).")
    timeout: float = Field(120.0, gt=0, description="Seconds one transcription may take.")

    @model_validator(mode="after")
    def _server_needs_url(self) -> ASREndpoint:
        if self.kind == "openai":
            parts = urlsplit(self.url or "")
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(
                    f"kind 'openai' needs an http(s) url with a host, got {self.url!r}"
                )
            self.url = (self.url or "").rstrip("/")
        elif self.language != "en":
            raise ValueError("the embedded model understands English only: use kind 'openai'")
        return self

    def transcriber(self) -> Transcriber:
        """The backend this block describes; pass `language` to its `transcribe`."""
        if self.kind == "openai" and self.url is not None:
            return WhisperServerTranscriber(
                self.url, model=self.model, api_key=self.api_key, timeout=self.timeout
            )
        return EmbeddedTranscriber()
