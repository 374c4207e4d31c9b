"""The film is one click away from any machine: every link a run publishes opens."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin

import boto3
import httpx
import pytest

from flows.film import film
from flows.serve import film_server
from sim.embedded import free_loopback_port
from tasks.schema.options import FilmOptions
from tasks.schema.outcomes import FilmResult
from tests.film_helpers import render, write_screenplay
from tests.s3_helpers import moto_server, use_s3

pytestmark = pytest.mark.usefixtures("prefect_api")

SCENES = [
    {"description": "Gulls circle the mast.", "duration": 2.0},
    {"description": "The lamp turns.", "duration": 2.0, "relay_break": True},
]
_ATTRIBUTE = re.compile(r"(?:src|href|poster)='([^'#]+)'")


def assert_page_and_everything_on_it_opens(review_url: str) -> None:
    page = httpx.get(review_url, timeout=30)
    assert page.status_code == 200, review_url
    assert "<video" in page.text
    found = [link for link in _ATTRIBUTE.findall(page.text) if not link.startswith("data:")]
    links = {urljoin(review_url, link.replace("&amp;", "&")) for link in found}
    assert len(links) >= 6  # the film, each sequence, its frames and charts, the downloads
    broken = [link for link in links if httpx.get(link, timeout=30).status_code != 200]
    assert broken == []


def assert_links_open(result: FilmResult) -> None:
    shared = result.shared
    assert shared.review and shared.film and shared.contact_sheet and shared.keyframes
    for link in (shared.film, shared.contact_sheet, *shared.keyframes):
        answer = httpx.get(link, timeout=30)
        assert answer.status_code == 200 and len(answer.content) > 1000, link
    assert httpx.get(shared.contact_sheet, timeout=30).content[:4] == b"\x89PNG"
    assert_page_and_everything_on_it_opens(shared.review)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    out = tmp_path / "renders"
    out.mkdir()
    server = film_server(out, "127.0.0.1", free_loopback_port())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield out, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_film_on_a_local_store_opens_from_the_served_folder(
    tmp_path: Path, served: tuple[Path, str]
) -> None:
    out, base = served
    result = render(write_screenplay(tmp_path, SCENES), out, [], public_url=base)
    assert result.shared.review == f"{base}/test_reel/review.html"
    assert_links_open(result)
    # The store beside the films is never served.
    assert httpx.get(f"{base}/.reelflow/results/", timeout=10).status_code == 404


def test_without_a_public_url_the_run_says_how_to_get_one(tmp_path: Path) -> None:
    result = render(write_screenplay(tmp_path, SCENES), tmp_path / "renders", [])
    assert result.shared.review is None
    assert "python -m flows.film serve" in result.shared.note


def test_a_film_in_a_bucket_opens_from_its_presigned_links_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with moto_server() as port:
        endpoint = f"http://127.0.0.1:{port}"
        use_s3(monkeypatch, endpoint)
        s3 = boto3.client("s3", endpoint_url=endpoint)
        s3.create_bucket(Bucket="films")
        # The screenplay itself is a bucket object: no path on the worker is needed.
        written = write_screenplay(tmp_path, SCENES)
        s3.put_object(Bucket="films", Key="inbox/reel.json", Body=written.read_bytes())
        chosen = FilmOptions.of(out=str(tmp_path / "renders"), store="s3://films/studio")
        result = asyncio.run(film(screenplay="s3://films/inbox/reel.json", options=chosen))
        assert "X-Amz-Expires=604800" in (result.shared.review or "")
        assert_links_open(result)
