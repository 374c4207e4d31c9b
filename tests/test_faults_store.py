"""A damaged or missing file in the media store: never delivered, made again, and said so.

The film renders on a simulator in its own process; the store is damaged on disk between
runs the way a bad disk or a careless `rm` would; the re-run is the command a user types.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import pytest

from sim.embedded import RunningSimulator, start_simulator
from sim.settings import SimSettings
from tasks import media
from tasks.errors import MediaCorrupt
from tasks.runtime.store import MediaStore, file_sha256, local_storage
from tasks.schema.outcomes import FilmResult
from tasks.schema.refs import MediaRef
from tests.film_helpers import (
    film_command,
    harness_environment,
    render,
    sim_stats,
    write_screenplay,
)

pytestmark = pytest.mark.usefixtures("prefect_api")

REPO = Path(__file__).resolve().parents[1]


def two_shots(tmp_path: Path) -> Path:
    scenes = [
        {"description": f"Shot {n}: rain on the quay.", "duration": 2.0, "relay_break": n > 0}
        for n in range(2)
    ]
    return write_screenplay(tmp_path, scenes)


def simulator(tmp_path: Path) -> RunningSimulator:
    return start_simulator(SimSettings(gpu_seconds_per_output_second=0.1), workdir=tmp_path / "sim")


def zero_the_middle(path: Path) -> None:
    """Same size, bytes zeroed in the middle: what a bad block or a bit flip looks like."""
    size = path.stat().st_size
    with path.open("r+b") as handle:
        handle.seek(size // 2)
        handle.write(b"\0" * max(1, min(8192, size // 4)))


def rerun(screenplay: Path, out: Path, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        film_command(screenplay, out, [url], "--no-dialogue-check"),
        env={**harness_environment(), "COLUMNS": "300"},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def assert_film_decodes(folder: Path, count: int = 2) -> None:
    videos = sorted((folder / "sequences").glob("*_SEQ*_v*.mp4"))
    assert len(videos) == count, videos
    for video in videos:
        media.verify_decodes(video)
    media.verify_decodes(next(folder.glob("*.mp4")))


def assert_store_intact(store: Path) -> None:
    for stored in (store / "media").rglob("*.*"):
        assert file_sha256(stored) == stored.stem, f"{stored} does not match its name"


def first_run(tmp_path: Path, sim: RunningSimulator) -> tuple[Path, FilmResult]:
    screenplay = two_shots(tmp_path)
    return screenplay, render(screenplay, tmp_path, [sim.url], dialogue_check=False)


def test_a_damaged_stored_sequence_is_made_again_never_delivered(tmp_path: Path) -> None:
    store = tmp_path / ".reelflow"
    with simulator(tmp_path) as sim:
        screenplay, first = first_run(tmp_path, sim)
        finished = first.chains[0].sequences[1].finished.video
        zero_the_middle(store / finished.key)
        shutil.rmtree(first.folder)
        before = sim_stats(sim.url)["prompts_submitted"]
        again = rerun(screenplay, tmp_path, sim.url)
        after = sim_stats(sim.url)["prompts_submitted"]
    output = again.stdout + again.stderr
    assert again.returncode == 0, output
    assert f"{finished.key} is damaged" in output and "making it again" in output, output
    assert after == before, "re-normalizing a sequence needs no GPU"
    assert_film_decodes(Path(first.folder))
    assert_store_intact(store)


def test_a_truncated_then_deleted_render_heals_on_the_next_run(tmp_path: Path) -> None:
    store = tmp_path / ".reelflow"
    with simulator(tmp_path) as sim:
        screenplay, first = first_run(tmp_path, sim)
        rendered = first.chains[0].sequences[0].rendered.video
        with (store / rendered.key).open("r+b") as handle:
            handle.truncate(rendered.size // 2)
        before = sim_stats(sim.url)["prompts_submitted"]
        truncated = rerun(screenplay, tmp_path, sim.url)
        (store / rendered.key).unlink()
        deleted = rerun(screenplay, tmp_path, sim.url)
        after = sim_stats(sim.url)["prompts_submitted"]
    for run in (truncated, deleted):
        output = run.stdout + run.stderr
        assert run.returncode == 0, output
        assert "bad screenplay" not in output and "Traceback" not in output, output
        assert f"{rendered.key} is " in output and "making it again" in output, output
    assert "damaged" in truncated.stdout and "missing" in deleted.stdout
    # The server still has that prompt's output: it is fetched again, not rendered again.
    assert after == before
    assert "picked up the prompt" in truncated.stdout and "picked up" in deleted.stdout
    assert_film_decodes(Path(first.folder))
    assert_store_intact(store)


def test_a_same_size_damaged_copy_is_never_handed_out(tmp_path: Path) -> None:
    """On a local store the scratch copy is a hard link to the stored file: damage in place
    shows in both, and only the hash can tell."""
    content = bytes(range(256)) * 512
    source = tmp_path / "render.mp4"
    source.write_bytes(content)
    store = MediaStore(local_storage(tmp_path / "store").media, tmp_path / "scratch")

    async def scenario() -> None:
        ref = await store.put(source)
        assert file_sha256(await store.fetch(ref)) == ref.sha256
        zero_the_middle(tmp_path / "store" / ref.key)
        with pytest.raises(MediaCorrupt, match=ref.key):
            await store.fetch(ref)
        assert await store.damage(ref) is not None
        again = tmp_path / "again.mp4"  # the same render, made again
        again.write_bytes(content)
        healed = await store.put(again)  # replaces the damaged copy
        assert healed == ref and await store.damage(ref) is None
        assert file_sha256(await store.fetch(ref)) == ref.sha256

    asyncio.run(scenario())


def test_readers_of_one_stored_file_never_find_it_missing(tmp_path: Path) -> None:
    """The cut and the delivery fetch the same sequence at once on a re-run with an empty
    scratch: one reader's fresh copy must not vanish while another reader makes its own."""
    source = tmp_path / "render.mp4"
    source.write_bytes(bytes(range(256)) * 64)
    store = MediaStore(local_storage(tmp_path / "store").media, tmp_path / "scratch")

    async def read(ref: MediaRef) -> int:
        return (await store.fetch(ref)).stat().st_size

    async def scenario() -> None:
        ref = await store.put(source)
        for _ in range(200):
            store.scratch_path(ref).unlink()  # a fresh worker's scratch
            assert await asyncio.gather(*(read(ref) for _ in range(4))) == [ref.size] * 4

    asyncio.run(scenario())
