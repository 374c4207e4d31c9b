"""Renders cached by an earlier reelflow stay cached: an upgrade re-renders nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import boto3
import pytest

from tests.film_helpers import render
from tests.s3_helpers import moto_server, use_s3

pytestmark = pytest.mark.usefixtures("prefect_api")

STORE = Path(__file__).parent / "fixtures" / "store_v0_1"


def _screenplay(tmp_path: Path) -> Path:
    return Path(shutil.copy(STORE / "screenplay.json", tmp_path / "screenplay.json"))


def _assert_nothing_rendered(tmp_path: Path, out: Path, store: str | None = None) -> None:
    result = render(_screenplay(tmp_path), out, [], **({"store": store} if store else {}))
    assert result.prompts == 0
    assert result.duration_s == pytest.approx(7.08, abs=0.05)
    assert (Path(result.folder) / "LEGACY_REEL_v001.mp4").is_file()


def test_a_film_rendered_before_the_restructure_re_runs_with_zero_prompts(
    tmp_path: Path,
) -> None:
    out = tmp_path / "renders"
    for part in ("media", "results"):
        shutil.copytree(STORE / part, out / ".reelflow" / part)
    _assert_nothing_rendered(tmp_path, out)


def test_the_same_holds_for_a_store_in_a_bucket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with moto_server() as port:
        endpoint = f"http://127.0.0.1:{port}"
        use_s3(monkeypatch, endpoint)
        s3 = boto3.client("s3", endpoint_url=endpoint)
        s3.create_bucket(Bucket="films")
        for part in ("media", "results"):
            for path in (STORE / part).rglob("*"):
                if path.is_file():
                    key = f"studio/{path.relative_to(STORE).as_posix()}"
                    s3.put_object(Bucket="films", Key=key, Body=path.read_bytes())
        _assert_nothing_rendered(tmp_path, tmp_path / "renders", store="s3://films/studio")
