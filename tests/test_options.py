"""One options model: every flow parameter round-trips through the CLI and the re-render command."""

from __future__ import annotations

import inspect
import shlex
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from hypothesis import given, settings
from hypothesis import strategies as st
from prefect.utilities.callables import parameter_schema
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from flows.cli import _render_parser
from flows.film import film
from flows.flags import options_from
from tasks.deliver.dailies.commands import rerender_command, rerender_parameters
from tasks.schema.options import FilmOptions

SCREENPLAY = Path("examples/the harbour.json")
# What a shell user could type as a value: anything but a leading dash (argparse reads a flag).
WORDS = st.text(min_size=1, max_size=12).filter(lambda text: not text.startswith("-"))


def _value(field: FieldInfo) -> st.SearchStrategy[Any]:
    kind = field.annotation
    bounds = {type(m).__name__: m for m in field.metadata}
    if kind is bool:
        return st.booleans()
    if get_origin(kind) is Literal:
        return st.sampled_from(get_args(kind))
    if get_origin(kind) is tuple:
        return st.lists(_item(field), max_size=3).map(tuple)
    if kind is int:
        low = bounds["Ge"].ge if "Ge" in bounds else 0  # type: ignore[attr-defined]
        high = bounds["Le"].le if "Le" in bounds else 10_000  # type: ignore[attr-defined]
        return st.integers(low, high)
    if kind is float:
        low, high = bounds["Ge"].ge, bounds["Le"].le  # type: ignore[attr-defined]
        return st.floats(low, high, allow_nan=False)
    return WORDS | st.just(field.default)


def _item(field: FieldInfo) -> st.SearchStrategy[Any]:
    """One entry of a list option: a number, one of its choices, a SEQ=TAKE pair, or words."""
    item = get_args(field.annotation)[0]
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    if item is int:
        return st.integers(0, 40)
    if get_origin(item) is Literal:
        return st.sampled_from(get_args(item))
    if extra.get("metavar") == "SEQ=TAKE":
        return st.tuples(st.integers(0, 40), st.integers(0, 8)).map(lambda p: f"{p[0]}={p[1]}")
    return WORDS


def _model(model: type[BaseModel]) -> st.SearchStrategy[Any]:
    fields = {}
    for name, field in model.model_fields.items():
        is_group = isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
        fields[name] = _model(field.annotation) if is_group else _value(field)  # type: ignore[arg-type]
    return st.fixed_dictionaries(fields).map(model.model_validate)


@settings(max_examples=150, deadline=None)
@given(options=_model(FilmOptions), sequence=st.integers(0, 40))
def test_every_option_survives_the_rerender_command_and_the_deployment_parameters(
    options: FilmOptions, sequence: int
) -> None:
    wanted = options.with_rerolled(sequence)

    words = shlex.split(rerender_command(SCREENPLAY, options, sequence))
    assert words[:3] == ["python", "-m", "flows.film"]
    args = _render_parser().parse_args(words[3:])
    assert args.screenplay == SCREENPLAY
    assert options_from(args) == wanted

    parameters = rerender_parameters(SCREENPLAY, options, sequence)
    bound = inspect.signature(film.fn).bind(**parameters).arguments
    assert bound["screenplay"] == SCREENPLAY.as_posix()
    assert FilmOptions.model_validate(bound["options"]) == wanted


def test_flat_names_reach_their_group() -> None:
    options = FilmOptions.of(out="x", fix=True, score_gain=0.5, gpu_slots="prefect")
    assert (options.out, options.render.fix, options.delivery.score_gain) == ("x", True, 0.5)
    assert options.studio.gpu_slots == "prefect"


def test_the_run_form_offers_choices_as_dropdowns_and_groups_the_expert_settings() -> None:
    schema = parameter_schema(film.fn).model_dump()
    assert list(schema["properties"]) == ["screenplay", "options"]
    definitions = schema["definitions"]
    options = definitions["FilmOptions"]["properties"]
    # A Literal is an enum in the schema: the Prefect UI draws a dropdown, not a toggle.
    assert options["mode"]["enum"] == ["screenplay", "fast", "quality"]
    assert definitions["StudioOptions"]["properties"]["schedule"]["enum"] == [
        "auto",
        "aware",
        "unaware",
    ]
    assert list(options)[:4] == ["comfyui", "out", "store", "mode"]
    assert {"render", "delivery", "studio"} <= set(options)
