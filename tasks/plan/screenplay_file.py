"""Reading a screenplay file, with one clear message per problem and never a traceback."""

from __future__ import annotations

import difflib
import json
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, ValidationError

from tasks import media
from tasks.errors import Problem, ScreenplayError
from tasks.schema.screenplay import DialogueLine, RenderSettings, Scene, Score, Screenplay

MAX_FILE_BYTES = 8 * 1024 * 1024

_MODEL_AT_KEY: dict[str | None, type[BaseModel]] = {
    None: Screenplay,
    "scenes": Scene,
    "dialogue": DialogueLine,
    "score": Score,
    "render": RenderSettings,
}

_EXPECTED_FORM = {
    "title": 'a text, e.g. "The Lighthouse Keeper"',
    "style": 'a text describing the look, e.g. "cinematic, 35mm film grain"',
    "setting": 'a text describing the place, e.g. "a stone lighthouse at dusk"',
    "characters": 'a mapping NAME -> visual description, e.g. {"EDDA": "an old woman ..."}',
    "scenes": "a non-empty list of scenes",
    "description": "a text saying what the camera sees",
    "duration": "a number of seconds greater than 0, e.g. 6.0",
    "dialogue": 'a list like [{"character": "EDDA", "line": "The storm is early."}]',
    "character": "a name listed in `characters`",
    "line": "the spoken words as text",
    "tags": 'a list of texts, e.g. ["transition"]',
    "relay_break": "true or false",
    "source_image": "a path to an image file, relative to the screenplay's folder",
    "bpm": "a whole number of beats per minute between 30 and 240",
    "fps": "a whole number of frames per second, e.g. 24",
    "width": "a multiple of 32, e.g. 768",
    "height": "a multiple of 32, e.g. 512",
    "mode": '"fast" or "quality"',
}


def load_screenplay(path: Path) -> Screenplay:
    """Read, parse and check a screenplay file, or raise ScreenplayError listing every problem."""
    source = str(path)
    raw = _read_json(path)
    try:
        screenplay = Screenplay.model_validate(raw)
    except ValidationError as invalid:
        raise ScreenplayError(source, [_describe(error) for error in invalid.errors()]) from None
    problems = [
        problem
        for index, scene in enumerate(screenplay.scenes)
        if scene.source_image is not None
        for problem in _check_source_image(path.parent, index, scene.source_image)
    ]
    problems += _check_cast(path.parent, screenplay)
    if problems:
        raise ScreenplayError(source, problems)
    return screenplay


def screenplay_title(path: Path) -> str:
    """The title a screenplay file gives itself, or its file name when it cannot be read
    (the plan stage then says what is wrong with it): for naming runs before planning."""
    try:
        document = json.loads(path.read_bytes()[:MAX_FILE_BYTES])
        title = document.get("title") if isinstance(document, dict) else None
    except (OSError, ValueError):
        title = None
    return " ".join(title.split())[:80] if isinstance(title, str) and title.strip() else path.stem


def parse_screenplay(text: str, *, source: str = "<screenplay>") -> Screenplay:
    """Parse screenplay JSON text that has no folder of its own (no source images allowed)."""
    raw = _decode(text, source)
    try:
        screenplay = Screenplay.model_validate(raw)
    except ValidationError as invalid:
        raise ScreenplayError(source, [_describe(error) for error in invalid.errors()]) from None
    for index, scene in enumerate(screenplay.scenes):
        if scene.source_image is not None:
            raise ScreenplayError(
                source,
                [
                    Problem(
                        f"scenes[{index}].source_image",
                        "has no folder to be resolved against.",
                        "load the screenplay from a file next to its images.",
                    )
                ],
            )
    return screenplay


def _read_json(path: Path) -> Any:
    source = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ScreenplayError(
                source,
                [
                    Problem(
                        "",
                        f"the file is {size} bytes; a screenplay is at most 8 MiB.",
                        "split the film into several screenplays.",
                    )
                ],
            )
        data = path.read_bytes()
    except FileNotFoundError:
        raise ScreenplayError(
            source, [Problem("", "no such file.", "check the path and spelling.")]
        ) from None
    except IsADirectoryError:
        raise ScreenplayError(
            source, [Problem("", "is a folder, not a file.", "name the .json file itself.")]
        ) from None
    except PermissionError:
        raise ScreenplayError(
            source, [Problem("", "cannot be read (permission denied).", "check its permissions.")]
        ) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as bad:
        raise ScreenplayError(
            source,
            [
                Problem(
                    "",
                    f"is not UTF-8 text (bad byte at offset {bad.start}).",
                    "save the screenplay as UTF-8 JSON.",
                )
            ],
        ) from None
    return _decode(text, source)


def _decode(text: str, source: str) -> Any:
    try:
        raw = json.loads(text, object_pairs_hook=_refuse_duplicate_keys)
    except json.JSONDecodeError as bad:
        raise ScreenplayError(
            source,
            [
                Problem(
                    f"line {bad.lineno}, column {bad.colno}",
                    f"invalid JSON: {bad.msg}.",
                    "fix the JSON syntax there (a missing comma or quote is typical).",
                )
            ],
        ) from None
    except _DuplicateKey as duplicate:
        raise ScreenplayError(
            source,
            [
                Problem(
                    "",
                    f"the key {duplicate.key!r} appears twice in one object.",
                    "keep one of them; JSON readers silently drop the other.",
                )
            ],
        ) from None
    except RecursionError:
        raise ScreenplayError(
            source,
            [
                Problem(
                    "",
                    "the JSON is nested too deeply to be a screenplay.",
                    "check the file is the screenplay you meant.",
                )
            ],
        ) from None
    if not isinstance(raw, dict):
        raise ScreenplayError(
            source,
            [
                Problem(
                    "",
                    f"the top level is a JSON {type(raw).__name__}, not an object.",
                    'write one object: {"title": ..., "scenes": [...]}.',
                )
            ],
        )
    return raw


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def _location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def _describe(error: Any) -> Problem:
    loc: tuple[int | str, ...] = tuple(error["loc"])
    kind: str = error["type"]
    field = next((part for part in reversed(loc) if isinstance(part, str)), "")
    where = _location(loc)
    if kind == "extra_forbidden":
        return _unknown_key(loc)
    if kind == "unknown_character":
        name = error["ctx"]["name"]
        return Problem(
            str(error["ctx"]["location"]),
            error["msg"] + ".",
            f"add {name!r} with a visual description to `characters`, or fix the spelling.",
        )
    if kind in ("characters_as_list", "relay_separator"):
        return Problem(where, error["msg"] + ".")
    expected = _EXPECTED_FORM.get(field)
    if kind == "missing":
        return Problem(where, "is missing.", f"add it: {expected}." if expected else "add it.")
    got = _shorten(error.get("input"))
    fix = f"write {expected}." if expected else ""
    return Problem(where, f"{_sentence(error['msg'])} (got {got}).", fix)


def _unknown_key(loc: tuple[int | str, ...]) -> Problem:
    key = str(loc[-1])
    parent = next((part for part in reversed(loc[:-1]) if isinstance(part, str)), None)
    model = _MODEL_AT_KEY.get(parent, Screenplay)
    allowed = list(model.model_fields)
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.5)
    if key == "text" and "line" in allowed:
        close = ["line"]
    hint = f"did you mean {close[0]!r}?" if close else f"known keys are {', '.join(allowed)}."
    return Problem(_location(loc), f"unknown key {key!r}; it would be ignored.", hint)


def _sentence(message: str) -> str:
    message = message.removeprefix("Value error, ")
    return message[:1].upper() + message[1:]


def _shorten(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if value is not None else "null"
    return text if len(text) <= 60 else text[:57] + "..."


def _check_source_image(folder: Path, index: int, source_image: str) -> list[Problem]:
    return _check_file(folder, f"scenes[{index}].source_image", source_image, "image")


VOICE_SECONDS = (2.0, 15.0)
"""A voice reference long enough to identify a speaker, short enough to be one clean take."""


def _check_cast(folder: Path, screenplay: Screenplay) -> list[Problem]:
    problems = []
    for name, character in screenplay.characters.items():
        if character.portrait is not None:
            where = f"characters.{name}.portrait"
            problems += _check_file(folder, where, character.portrait, "image")
        if character.voice is not None:
            where = f"characters.{name}.voice"
            problems += _check_file(folder, where, character.voice, "audio")
    return problems


def _check_file(folder: Path, where: str, name: str, kind: str) -> list[Problem]:
    """A file the screenplay names: relative, inside its folder, there, and readable."""
    if not name.strip():
        return [Problem(where, "is empty.", f"name an {kind} file, or remove the field.")]
    if "\x00" in name:
        return [Problem(where, "contains a NUL character.", "write a plain file name.")]
    posix, windows = PurePosixPath(name), PureWindowsPath(name)
    if posix.is_absolute() or windows.is_absolute() or windows.drive:
        return [
            Problem(
                where,
                f"{name!r} is an absolute path.",
                f"give a path relative to the screenplay's folder, e.g. cast/{Path(name).name}.",
            )
        ]
    base = folder.resolve()
    target = (base / name).resolve()
    if not target.is_relative_to(base):
        return [
            Problem(
                where,
                f"{name!r} points outside the screenplay's folder.",
                f"copy the {kind} next to the screenplay and name it relatively.",
            )
        ]
    if not target.exists():
        return [
            Problem(
                where,
                f"{name!r} does not exist in {base}.",
                "check the file name, or remove the field to have it made for you.",
            )
        ]
    if not target.is_file():
        return [Problem(where, f"{name!r} is not a regular file.", f"name an {kind} file.")]
    return _readable_image(where, name, target) if kind == "image" else _voice(where, name, target)


def _readable_image(where: str, name: str, target: Path) -> list[Problem]:
    try:
        with Image.open(target) as image:
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError):
        return [Problem(where, f"{name!r} is not a readable image.", "use a PNG or JPEG file.")]
    return []


def _voice(where: str, name: str, target: Path) -> list[Problem]:
    try:
        audio = media.probe(target).audio
    except media.MediaError:
        audio = None
    if audio is None:
        return [
            Problem(where, f"{name!r} is not a readable audio file.", "use a WAV, FLAC or MP3.")
        ]
    low, high = VOICE_SECONDS
    if not low <= audio.duration <= high:
        return [
            Problem(
                where,
                f"{name!r} is {audio.duration:.1f} s long.",
                f"give {low:g}-{high:g} s of the character speaking clearly (about 5 s is best).",
            )
        ]
    return []
