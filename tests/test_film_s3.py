"""Media and results on an S3-compatible server (moto in server mode, on loopback)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from blocks.storage import resolve_storage
from tasks.runtime.store import probe_storage
from tests.film_helpers import instant_simulator, render, three_chain_scenes, write_screenplay
from tests.s3_helpers import moto_server, use_s3

pytestmark = pytest.mark.usefixtures("prefect_api")


@pytest.fixture
def s3_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with moto_server() as port:
        url = f"http://127.0.0.1:{port}"
        use_s3(monkeypatch, url)
        yield url


def test_a_fresh_worker_continues_a_film_from_the_bucket_alone(
    tmp_path: Path, s3_endpoint: str
) -> None:
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    s3.create_bucket(Bucket="films")
    screenplay = write_screenplay(tmp_path, three_chain_scenes())
    with instant_simulator(tmp_path) as sim:
        first = render(screenplay, tmp_path / "worker-a", [sim.url], store="s3://films/studio")
        assert first.prompts == 9
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="films")["Contents"]]
        # In the store: six renders, each normalized cut that is a file of its own (a sequence
        # needing no gain is cut as rendered), and the film itself.
        results = [result for chain in first.chains for result in chain.sequences]
        renders = {result.rendered.video.sha256 for result in results}
        cuts = {result.finished.video.sha256 for result in results}
        videos = {
            Path(key).stem
            for key in keys
            if key.startswith("studio/media/") and key.endswith(".mp4")
        }
        assert len(renders) == 6 and renders | cuts <= videos
        assert len(videos) == len(renders | cuts) + 1
        # Beside it, the delivered folder others open by link: film and six sequences.
        delivered = [key for key in keys if key.startswith("studio/films/test_reel/")]
        assert sum(key.endswith(".mp4") for key in delivered) == 7
        assert any(key.startswith("studio/results/") for key in keys)
        # another machine: nothing local at all, only the bucket
        second = render(screenplay, tmp_path / "worker-b", [sim.url], store="s3://films/studio")
    assert second.prompts == 0
    delivered = sorted((Path(second.folder) / "sequences").glob("*.mp4"))
    assert len(delivered) == 6 and all(p.stat().st_size > 0 for p in delivered)
    assert Path(second.film).is_file()
    assert not (tmp_path / "worker-b" / ".reelflow" / "media").exists()


def test_films_starting_at_once_on_one_bucket_all_pass_the_store_check(
    tmp_path: Path, s3_endpoint: str
) -> None:
    """Every run writes and reads back a probe object before any GPU work; a studio starts
    several films on one bucket at the same moment, and none may read another's probe."""
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket="films")

    async def start(n: int) -> None:
        scratch = tmp_path / f"run{n}" / "scratch"
        storage = await resolve_storage("s3://films/studio", default=tmp_path, scratch=scratch)
        await probe_storage(storage, scratch)

    async def studio() -> list[BaseException | None]:
        return await asyncio.gather(*(start(n) for n in range(8)), return_exceptions=True)

    refused = [str(outcome) for outcome in asyncio.run(studio()) if outcome is not None]
    assert refused == []
