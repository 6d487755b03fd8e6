"""Help that reads at 80 columns: every value named in words, no ``<str>``/``<bool>`` labels.

Typer labels each value with its Python type (``--fleet <str>``, ``--json <bool>``), flags and
``--help`` included. :class:`ReadableCommand` names a value by its ``metavar`` when the flag
declares one (``--fleet FLEET``), else by typer's classic words (TEXT, INTEGER, NUMBER, FILE);
a flag takes no value and shows none. Options are grouped in panels (``rich_help_panel``), so
each panel's columns are only as wide as its own flags.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from typer.core import TyperArgument, TyperCommand, TyperOption

WORDS = {int: "INTEGER", float: "NUMBER", Path: "FILE"}
CONNECTION = "Connection"
"""The panel of --url, --token and --json, last in every command's help."""


class ReadableCommand(TyperCommand):
    # Any: typer's click (vendored or not, by version)
    def get_params(self, ctx: Any) -> list[Any]:
        params: list[Any] = super().get_params(ctx)
        for param in params:
            if isinstance(param, TyperOption) and param.metavar is None:
                param.metavar = "" if param.is_flag else _word(param)
            elif isinstance(param, TyperArgument) and not isinstance(param, _NamedArgument):
                param.metavar = param.metavar or (param.name or "value").upper()
                param.__class__ = _NamedArgument
        return params


class _NamedArgument(TyperArgument):
    """An argument shown by its name alone (``PATTERN``), which says what it is."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None


def _word(option: TyperOption) -> str:
    annotation: Any = getattr(getattr(option, "type_descriptor", None), "annotation", None)
    return WORDS.get(annotation, "TEXT")


def readable(app: typer.Typer) -> None:
    """Every command of ``app`` (and those added to it later in its module) helps readably."""
    for command in app.registered_commands:
        if command.cls in (None, TyperCommand):
            command.cls = ReadableCommand
