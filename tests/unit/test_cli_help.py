"""``workbook --help`` and the README's "Command line" list say the same thing (issue 22).

Every command and subcommand has a description; every option has a help text that gives its
default (required options and positionals excepted); the README lists exactly the commands and
options of the parser, the choices it offers and which options are required.
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from workbook import cli

README = Path(__file__).resolve().parents[2] / "README.md"


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def leaf_commands() -> dict[tuple[str, ...], argparse.ArgumentParser]:
    """Every command a user runs: ("run",), ("local", "start"), ..."""
    leaves = {}
    for name, parser in _subparsers(cli.build_parser()).items():
        nested = _subparsers(parser)
        if nested:
            leaves.update({(name, sub): subparser for sub, subparser in nested.items()})
        else:
            leaves[(name,)] = parser
    return leaves


def every_parser() -> list[tuple[str, argparse.ArgumentParser]]:
    found = [("workbook", cli.build_parser())]
    for name, parser in _subparsers(found[0][1]).items():
        found.append((name, parser))
        found += [(f"{name} {sub}", subparser) for sub, subparser in _subparsers(parser).items()]
    return found


def options_of(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.option_strings and not isinstance(a, argparse._HelpAction)]


def readme_commands() -> dict[tuple[str, ...], str]:
    """The README's command block: each command with its whole text (continuation lines joined)."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Command line"):]
    block = section[section.index("```\n") + 4:section.index("\n```", section.index("```\n") + 4)]
    commands: dict[tuple[str, ...], str] = {}
    last = None
    for line in block.splitlines():
        if line.startswith("workbook "):
            words = line.split()
            key = (words[1], words[2]) if words[1] == "local" else (words[1],)
            commands[key] = line
            last = key
        elif line.strip() and last is not None:
            commands[last] += " " + line.strip()
    return commands


@pytest.mark.parametrize("name, parser", every_parser(), ids=lambda value: value if isinstance(value, str) else "")
def test_every_command_has_a_description_and_every_option_its_default(name, parser):
    assert parser.description, f"`workbook {name}` has no description"
    for action in options_of(parser):
        flag = action.option_strings[-1] if len(action.option_strings) == 1 else "/".join(action.option_strings)
        assert action.help, f"`workbook {name} {flag}` has no help"
        if not action.required:
            assert "default" in action.help, f"`workbook {name} {flag}`: the help does not give the default"


def test_the_readme_lists_exactly_the_parsers_commands():
    assert set(readme_commands()) == set(leaf_commands())


@pytest.mark.parametrize("command", sorted(leaf_commands()), ids=" ".join)
def test_the_readme_gives_each_commands_options_choices_and_requirements(command):
    parser, line = leaf_commands()[command], readme_commands()[command]
    in_readme = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", line))
    actions = options_of(parser)
    # every option of the parser is in the README, and nothing else is
    for action in actions:
        assert in_readme & set(action.option_strings), f"README lacks {action.option_strings} of workbook {' '.join(command)}"
    assert in_readme <= {flag for action in actions for flag in action.option_strings}, line
    by_flag = {flag: action for action in actions for flag in action.option_strings}
    # choices written a|b|c are the parser's choices
    for flag, choices in re.findall(r"(--[a-z-]+)[ =]([A-Za-z]+(?:\|[A-Za-z]+)+)", line):
        assert set(choices.split("|")) == set(by_flag[flag].choices), (flag, choices)
    # required options are written outside [brackets], optional ones inside
    for action in actions:
        flag = next(f for f in action.option_strings if f in in_readme)
        bracketed = re.search(rf"\[{re.escape(flag)}\b", line) is not None
        assert bracketed != action.required, f"{flag} of workbook {' '.join(command)}: required={action.required}"


def test_local_status_documents_exit_code_3():
    assert "exit 3" in readme_commands()[("local", "status")]
    assert "3" in leaf_commands()[("local", "status")].description


def test_a_missing_pulumi_cli_reads_as_english_for_outputs():
    from workbook.deploy.errors import operation_verb

    assert operation_verb("outputs") == "read the outputs of" and operation_verb("preview") == "preview"


def test_tunes_help_gives_the_defaults_the_tuning_uses():
    # The parser does not import workbook.tuning (it would cost `workbook --help` a second): this keeps them equal.
    from workbook.tuning import defaults

    helps = {action.dest: action.help for action in options_of(leaf_commands()[("tune",)])}
    assert f"default: {defaults.DEFAULT_NUM_INVOCATIONS})" in helps["num"]
    assert f"default: {defaults.DEFAULT_STRATEGY})" in helps["strategy"]
    assert f"default: {defaults.DEFAULT_BALANCED_WEIGHT:g})" in helps["balanced_weight"]
    assert f"default: {defaults.DEFAULT_DISCARD_TOP_BOTTOM:g};" in helps["discard_top_bottom"]
    assert f"{min(defaults.DEFAULT_POWER_VALUES)} to {max(defaults.DEFAULT_POWER_VALUES)}" in helps["power_values"]
