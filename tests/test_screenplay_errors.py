"""Bad screenplays get one clear message per problem: where it is and how to fix it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tasks.errors import ScreenplayError
from tasks.plan.screenplay_file import load_screenplay

REPO = Path(__file__).resolve().parents[1]


def good() -> dict[str, Any]:
    return {
        "title": "Two at the Station",
        "style": "cinematic, soft overcast light",
        "setting": "a rural train platform",
        "characters": {"MARA": "a woman in her forties with cropped grey hair"},
        "scenes": [
            {
                "description": "Mara waits on the bench.",
                "duration": 8.0,
                "characters": ["MARA"],
                "dialogue": [{"character": "MARA", "line": "You missed the last one."}],
            },
        ],
    }


def problems_of(tmp_path: Path, document: Any, *, raw: str | None = None) -> list[str]:
    path = tmp_path / "film.json"
    path.write_text(raw if raw is not None else json.dumps(document), encoding="utf-8")
    with pytest.raises(ScreenplayError) as caught:
        load_screenplay(path)
    return [str(problem) for problem in caught.value.problems]


def only(tmp_path: Path, document: Any, **kwargs: Any) -> str:
    found = problems_of(tmp_path, document, **kwargs)
    assert len(found) == 1, found
    return found[0]


def test_a_good_screenplay_loads(tmp_path: Path) -> None:
    path = tmp_path / "film.json"
    path.write_text(json.dumps(good()))
    assert load_screenplay(path).scenes[0].dialogue[0].line == "You missed the last one."


def test_json_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    message = only(tmp_path, None, raw='{\n  "title": "x",\n  "style" "y"\n}')
    assert "line 3, column 11" in message and "invalid JSON" in message


def test_a_file_that_is_not_json_says_so(tmp_path: Path) -> None:
    assert "invalid JSON" in only(tmp_path, None, raw="INT. LIGHTHOUSE - NIGHT\nEDDA polishes.")


def test_a_binary_file_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "film.json"
    path.write_bytes(b"\xff\xfe\x00garbage\x9c")
    with pytest.raises(ScreenplayError, match="not UTF-8"):
        load_screenplay(path)


def test_missing_file_says_check_the_path(tmp_path: Path) -> None:
    with pytest.raises(ScreenplayError, match="no such file"):
        load_screenplay(tmp_path / "nope.json")


def test_top_level_list_is_refused(tmp_path: Path) -> None:
    assert "not an object" in only(tmp_path, [good()])


def test_deeply_nested_json_is_refused_without_a_crash(tmp_path: Path) -> None:
    assert "nested too deeply" in only(tmp_path, None, raw="[" * 100_000 + "]" * 100_000)


def test_duplicate_keys_are_refused(tmp_path: Path) -> None:
    raw = '{"title": "a", "title": "b", "style": "s", "setting": "x", "scenes": []}'
    assert "'title' appears twice" in only(tmp_path, None, raw=raw)


def test_missing_title_names_the_field_and_the_form(tmp_path: Path) -> None:
    document = good()
    del document["title"]
    message = only(tmp_path, document)
    assert message.startswith("title: is missing") and "e.g." in message


def test_empty_scene_list_is_refused(tmp_path: Path) -> None:
    document = good() | {"scenes": []}
    assert only(tmp_path, document).startswith("scenes:")


def test_dialogue_written_with_text_instead_of_line_suggests_line(tmp_path: Path) -> None:
    document = good()
    document["scenes"][0]["dialogue"] = [{"character": "MARA", "text": "Hello."}]
    found = problems_of(tmp_path, document)
    assert any(
        "scenes[0].dialogue[0].text: unknown key 'text'" in p and "'line'" in p for p in found
    )
    assert any(p.startswith("scenes[0].dialogue[0].line: is missing") for p in found)


def test_misspelled_scene_key_gets_did_you_mean(tmp_path: Path) -> None:
    document = good()
    document["scenes"][0]["durration"] = 5
    assert "did you mean 'duration'" in only(tmp_path, document)


def test_unknown_top_level_key_is_not_silently_dropped(tmp_path: Path) -> None:
    assert "unknown key 'soundtrack'" in only(tmp_path, good() | {"soundtrack": "jazz"})


def test_characters_as_a_list_explains_why_descriptions_matter(tmp_path: Path) -> None:
    message = only(tmp_path, good() | {"characters": ["MARA"]})
    assert message.startswith("characters:") and "visual description" in message


def test_dialogue_by_an_unlisted_character_names_them(tmp_path: Path) -> None:
    document = good()
    document["scenes"][0]["dialogue"][0]["character"] = "TOMAS"
    message = only(tmp_path, document)
    assert message.startswith("scenes[0].dialogue[0].character") and "'TOMAS'" in message
    assert "MARA" in message


def test_scene_character_not_in_characters_is_refused(tmp_path: Path) -> None:
    document = good()
    document["scenes"][0]["characters"] = ["MARA", "GHOST"]
    assert only(tmp_path, document).startswith("scenes[0].characters")


@pytest.mark.parametrize("duration", [0, -3.5])
def test_zero_or_negative_duration_is_refused(tmp_path: Path, duration: float) -> None:
    document = good()
    document["scenes"][0]["duration"] = duration
    message = only(tmp_path, document)
    assert message.startswith("scenes[0].duration") and "greater than 0" in message


def test_duration_as_text_is_refused(tmp_path: Path) -> None:
    document = good()
    document["scenes"][0]["duration"] = "six seconds"
    assert "number of seconds" in only(tmp_path, document)


def test_a_huge_duration_is_refused(tmp_path: Path) -> None:
    document = good()
    document["scenes"][0]["duration"] = 1e9
    assert only(tmp_path, document).startswith("scenes[0].duration")


def test_relay_separator_in_a_line_is_refused(tmp_path: Path) -> None:
    document = good()
    document["scenes"][0]["dialogue"][0]["line"] = "Wait | no."
    message = only(tmp_path, document)
    assert message.startswith("scenes[0].dialogue[0].line") and "'|'" in message


def test_relay_separator_in_a_description_is_refused(tmp_path: Path) -> None:
    document = good()
    document["scenes"][0]["description"] = "A | B"
    assert only(tmp_path, document).startswith("scenes[0].description")


def test_empty_line_is_refused(tmp_path: Path) -> None:
    document = good()
    document["scenes"][0]["dialogue"][0]["line"] = "   "
    assert only(tmp_path, document).startswith("scenes[0].dialogue[0].line")


def test_width_not_a_multiple_of_32_is_refused(tmp_path: Path) -> None:
    message = only(tmp_path, good() | {"render": {"width": 770}})
    assert message.startswith("render.width") and "multiple of 32" in message


def test_unknown_render_mode_is_refused(tmp_path: Path) -> None:
    assert '"fast" or "quality"' in only(tmp_path, good() | {"render": {"mode": "turbo"}})


def test_absolute_source_image_is_refused(tmp_path: Path) -> None:
    document = good()
    document["scenes"][0]["source_image"] = "/etc/passwd"
    assert "absolute path" in only(tmp_path, document)


def test_source_image_escaping_the_folder_is_refused(tmp_path: Path) -> None:
    document = good()
    document["scenes"][0]["source_image"] = "../../secret.png"
    assert "outside the screenplay's folder" in only(tmp_path, document)


def test_missing_source_image_is_refused(tmp_path: Path) -> None:
    document = good()
    document["scenes"][0]["source_image"] = "images/start.png"
    message = only(tmp_path, document)
    assert "does not exist" in message and "images/start.png" in message


def test_source_image_that_is_not_an_image_is_refused(tmp_path: Path) -> None:
    (tmp_path / "start.png").write_text("not a png")
    document = good()
    document["scenes"][0]["source_image"] = "start.png"
    assert "not a readable image" in only(tmp_path, document)


def test_a_real_source_image_is_accepted(tmp_path: Path) -> None:
    Image.new("RGB", (64, 64), "navy").save(tmp_path / "start.png")
    document = good()
    document["scenes"][0]["source_image"] = "start.png"
    path = tmp_path / "film.json"
    path.write_text(json.dumps(document))
    assert load_screenplay(path).scenes[0].source_image == "start.png"


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    document = good() | {"characters": ["MARA"], "rendr": {}}
    document["scenes"][0]["duration"] = -1
    assert len(problems_of(tmp_path, document)) == 3


def test_the_cli_prints_a_clear_error_and_no_traceback(tmp_path: Path) -> None:
    document = good()
    document["scenes"][0]["dialogue"] = [{"character": "MARA", "text": "Hello."}]
    path = tmp_path / "film.json"
    path.write_text(json.dumps(document))
    result = subprocess.run(
        [sys.executable, "-m", "flows.film", "plan", str(path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert result.returncode == 2
    assert "did you mean 'line'" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
