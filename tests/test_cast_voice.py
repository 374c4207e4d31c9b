"""The cast's voice check on real espeak-ng speech: the bundled model, verified at load.

Lines are spoken by espeak-ng voice variants, as the simulator voices characters, and go
through an AAC round trip at 48 kHz, as a rendered line does before it is checked.
"""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tasks.cast.checkpoint import CheckpointError, load_legacy_checkpoint
from tasks.cast.voice import (
    SAME_VOICE_THRESHOLD,
    VoiceClipInvalid,
    VoiceModelInvalid,
    bundled_weights,
    embed,
    embed_file,
    load_voice_encoder,
    match_voice,
)
from tasks.media import read_audio
from tests.sim_helpers import aac_clip

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")

REFERENCE = (
    "The lighthouse keeper climbed the stairs before dawn. "
    "Nobody comes to the island in November, not even the mail boat."
)
LINE = "Bring the lamp, the tide is turning fast tonight."


def spoken_line(dest: Path, voice: str, pitch: int, text: str) -> Path:
    """`text` in an espeak-ng voice variant, AAC-encoded at 48 kHz like a rendered line."""
    raw = dest.with_suffix(".wav")
    subprocess.run(
        ["espeak-ng", "-w", str(raw), "-v", f"en-us+{voice}", "-p", str(pitch), text],
        check=True,
        capture_output=True,
    )
    return aac_clip(raw, dest)


@pytest.fixture(scope="module")
def voices(tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    """References and lines of three voices that sound nothing alike."""
    folder = tmp_path_factory.mktemp("voices")
    embeddings: dict[str, np.ndarray] = {}
    for voice, pitch in (("m7", 35), ("f1", 60), ("m1", 40)):
        for kind, text in (("reference", REFERENCE), ("line", LINE)):
            clip = spoken_line(folder / f"{voice}-{kind}.m4a", voice, pitch, text)
            embeddings[f"{voice} {kind}"] = embed_file(clip)
    return embeddings


def test_a_line_in_its_characters_voice_is_the_same_voice(voices: dict[str, np.ndarray]) -> None:
    for voice in ("m7", "f1", "m1"):
        match = match_voice(voices[f"{voice} line"], voices[f"{voice} reference"])
        assert match.verdict == "same_voice", (voice, match)
        assert match.similarity >= SAME_VOICE_THRESHOLD


def test_a_line_in_another_voice_is_the_wrong_voice(voices: dict[str, np.ndarray]) -> None:
    for line, reference in (("m7", "f1"), ("f1", "m7"), ("m1", "f1"), ("f1", "m1")):
        match = match_voice(voices[f"{line} line"], voices[f"{reference} reference"])
        assert match.verdict == "wrong_voice", (line, reference, match)
        assert match.similarity < SAME_VOICE_THRESHOLD


def test_the_same_clip_always_gives_the_same_embedding(tmp_path: Path) -> None:
    clip = spoken_line(tmp_path / "line.m4a", "f3", 55, LINE)
    first = embed_file(clip)
    again = embed_file(clip)
    assert first.shape == (256,)
    assert np.array_equal(first, again)
    assert np.isclose(np.linalg.norm(first), 1.0, atol=1e-5)


def test_the_level_of_a_line_does_not_change_its_voice(tmp_path: Path) -> None:
    # Renders differ by up to 20 dB in level; the verdict must not follow the level.
    clip = spoken_line(tmp_path / "line.m4a", "m7", 35, LINE)
    samples = read_audio(clip, rate=48_000, mono=True)
    loud, quiet = embed(samples, 48_000), embed(samples * 0.1, 48_000)
    assert float(np.dot(loud, quiet)) > 0.999


def test_damaged_weights_are_refused_with_one_line(tmp_path: Path) -> None:
    damaged = tmp_path / "pretrained.pt"
    data = bytearray(bundled_weights().read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    with pytest.raises(VoiceModelInvalid) as caught:
        load_voice_encoder(damaged)
    message = str(caught.value)
    assert "\n" not in message
    assert "sha256" in message and "reinstall" in message and str(damaged) in message


def test_missing_weights_are_refused_with_one_line(tmp_path: Path) -> None:
    with pytest.raises(VoiceModelInvalid, match="is missing") as caught:
        load_voice_encoder(tmp_path / "pretrained.pt")
    assert "\n" not in str(caught.value)


def test_a_clip_without_speech_is_refused_with_one_line() -> None:
    with pytest.raises(VoiceClipInvalid, match="of speech") as caught:
        embed(np.zeros(48_000, dtype=np.float32), 48_000)
    assert "\n" not in str(caught.value)
    with pytest.raises(VoiceClipInvalid, match="of speech"):
        embed(np.full(2_000, 0.1, dtype=np.float32), 16_000)  # 0.125 s


class _RunsACommand:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def test_a_checkpoint_that_names_other_code_is_not_run(tmp_path: Path) -> None:
    # The reader rebuilds tensors only; a pickle reaching for anything else is refused.
    hostile = tmp_path / "hostile.pt"
    with hostile.open("wb") as handle:
        for part in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}):
            pickle.dump(part, handle, protocol=2)
        pickle.dump(_RunsACommand(tmp_path / "ran"), handle, protocol=2)
    with pytest.raises(CheckpointError, match=r"system, which is not allowed"):
        load_legacy_checkpoint(hostile)
    assert not (tmp_path / "ran").exists()
