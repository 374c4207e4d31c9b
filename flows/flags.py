"""Command-line flags built from `FilmOptions`: one flag per field, its help the field's own.

`--score-gain` for `delivery.score_gain`: a group's fields are spelled without the group,
so every field name in the options model must be unique across its groups.
"""

from __future__ import annotations

import argparse
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from tasks.errors import ReelflowError
from tasks.schema.options import FilmOptions


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def _is_group(field: FieldInfo) -> bool:
    return isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)


def _add_flag(group: argparse._ArgumentGroup, name: str, field: FieldInfo) -> None:
    kind, default = field.annotation, field.default
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    metavar = extra.get("metavar")
    help_text = field.description or ""
    if kind is bool:
        if default:
            group.add_argument(
                f"--no-{name.replace('_', '-')}",
                dest=name,
                action="store_false",
                help=f"Turn off, which is on by default: {help_text[:1].lower()}{help_text[1:]}",
            )
        else:
            group.add_argument(flag_name(name), dest=name, action="store_true", help=help_text)
        return
    if get_origin(kind) is tuple:
        item = get_args(kind)[0]
        # A list of choices (`--gates cast --gates final`): each value one of them.
        choices = get_args(item) if get_origin(item) is Literal else None
        group.add_argument(
            flag_name(name),
            dest=name,
            type=str if choices else item,
            choices=choices,
            action="append",
            default=[],
            metavar=metavar,
            help=f"{help_text} (repeatable)",
        )
        return
    if get_origin(kind) is Literal:
        choices = get_args(kind)
        group.add_argument(
            flag_name(name), dest=name, choices=choices, default=default, help=help_text
        )
        return
    group.add_argument(
        flag_name(name),
        dest=name,
        type=kind,  # type: ignore[arg-type]
        default=default,
        metavar=metavar,
        help=f"{help_text} (default: {default!r})" if default not in ("", None) else help_text,
    )


def add_option_flags(parser: argparse.ArgumentParser) -> None:
    """Every field of `FilmOptions` as a flag, its groups as the help's sections."""
    essentials = parser.add_argument_group("run")
    for name, field in FilmOptions.model_fields.items():
        if _is_group(field):
            model: type[BaseModel] = field.annotation  # type: ignore[assignment]
            doc = (model.__doc__ or name).strip().splitlines()[0]
            group = parser.add_argument_group(name, doc)
            for sub_name, sub_field in model.model_fields.items():
                _add_flag(group, sub_name, sub_field)
        else:
            _add_flag(essentials, name, field)


def options_from(args: argparse.Namespace) -> FilmOptions:
    """The `FilmOptions` that parsed flags describe."""
    values: dict[str, Any] = vars(args)
    document: dict[str, Any] = {}
    for name, field in FilmOptions.model_fields.items():
        if _is_group(field):
            model: type[BaseModel] = field.annotation  # type: ignore[assignment]
            document[name] = {sub: values[sub] for sub in model.model_fields}
        else:
            document[name] = values[name]
    try:
        return FilmOptions.model_validate(document)
    except ValidationError as bad:  # one line per flag, no traceback
        raise ReelflowError(
            "; ".join(
                f"{flag_name(str(error['loc'][-1]))}: {error['msg'].removeprefix('Value error, ')}"
                for error in bad.errors()
            )
        ) from None
