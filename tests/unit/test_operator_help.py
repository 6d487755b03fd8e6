"""Every operator command's help reads at 80 columns: no line past it, every value named in
words (FLEET, KEY=VALUE, INTEGER), no ``<str>``/``<bool>`` type labels."""

from __future__ import annotations

import re
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from fleetwave.cli import cli

OPERATOR_GROUPS = ("policies", "rollouts", "devices", "users")
TYPE_LABEL = re.compile(r"<(str|bool|int|float|path|list\[[a-z]+\])[^>]*>")


def operator_commands() -> list[list[str]]:
    root: Any = typer.main.get_command(cli)  # typer's own click: its groups have commands
    found = [["trigger"]]
    for name in OPERATOR_GROUPS:
        found += _leaves([name], root.commands[name])
    return found


def _leaves(words: list[str], group: Any) -> list[list[str]]:
    """The commands under ``group``, nested groups (``users tokens``) included."""
    found = []
    for name, command in group.commands.items():
        nested = getattr(command, "commands", None)
        found += _leaves([*words, name], command) if nested else [[*words, name]]
    return found


def help_of(words: list[str]) -> str:
    answer = CliRunner().invoke(cli, [*words, "--help"], env={"COLUMNS": "80", "TERM": "dumb"})
    assert answer.exit_code == 0, answer.output
    return answer.output


@pytest.mark.parametrize("words", operator_commands(), ids=" ".join)
def test_the_help_fits_80_columns_and_names_values_in_words(words: list[str]) -> None:
    shown = help_of(words)
    too_long = [line for line in shown.splitlines() if len(line) > 80]
    assert not too_long, "\n".join(too_long)
    labels = TYPE_LABEL.findall(shown)
    assert not labels, f"{' '.join(words)}: type labels {labels}"


def test_policies_create_groups_its_options_and_names_their_values() -> None:
    shown = help_of(["policies", "create"])
    for panel in ("Batches", "Devices", "Safety", "Policy", "Connection"):
        assert f"─ {panel} ─" in shown
    for flag in ("--tag           KEY=VALUE", "--percentages        PERCENTS"):
        assert re.search(flag.replace(" ", r"\s*").replace("--", r"--\s*"), shown), flag
    assert "--health-checks       --no-health-checks" in shown


def test_trigger_offers_watchs_pause_and_timeout_flags() -> None:
    shown = help_of(["trigger"])
    for flag in ("--watch", "--through-pause", "--timeout", "--interval"):
        assert flag in shown
