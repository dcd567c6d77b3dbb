"""Every ``qala`` command given bad input answers with one clear line naming what was wrong — never a traceback.

The commands are found by walking the click group (``app.cli``), so a command added later is covered without
touching this file. Each gets three kinds of bad input, as far as its parameters allow: a missing required
parameter, a malformed number or date or choice, and a file that does not exist. Commands run against the test
app's temporary database.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from flask import Flask
from flask.testing import FlaskCliRunner

MISSING_FILE = "/nonexistent/qala-missing-file.csv"
FILE_NAMES = {"path", "file", "feed", "pings", "events", "taps", "gtfs", "source"}  # input files given as text
HERE = Path(__file__).resolve()
NOT_A_NUMBER = "not-a-number"
Case = tuple[str, list[str], str]  # (what is wrong, argv, a word the error line must contain)


def leaf_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from leaf_commands(command, (*prefix, name))
        else:
            yield (*prefix, name), command


def _flag(param: click.Parameter) -> str:
    assert isinstance(param, click.Option)
    return max(param.opts, key=len)


def _is_file(param: click.Parameter) -> bool:
    """An input file or folder (outputs, like ``--out``, are not: a missing one is created)."""
    if isinstance(param.type, click.Path):
        return bool(param.type.exists)
    return isinstance(param.type, click.types.StringParamType) and (param.name or "") in FILE_NAMES


def _good_value(param: click.Parameter) -> str:
    """A well-formed value, so that only the one bad value in a case is wrong."""
    kind = param.type
    if isinstance(kind, click.Choice):
        return str(kind.choices[0])
    if isinstance(kind, click.IntRange | click.FloatRange):
        return str(kind.min if kind.min is not None else 1)
    if isinstance(kind, click.types.IntParamType | click.types.FloatParamType):
        return "1"
    if isinstance(kind, click.DateTime):
        return "2026-03-02"
    if isinstance(kind, click.Path) or _is_file(param):  # one that exists: only the bad value is wrong
        return str(HERE.parent if isinstance(kind, click.Path) and not kind.file_okay else HERE)
    return "x"


def _args(params: list[click.Parameter], bad: click.Parameter | None, bad_value: str) -> list[str]:
    argv: list[str] = []
    for param in params:
        if param is not bad and not param.required:
            continue
        value = bad_value if param is bad else _good_value(param)
        argv += [value] if isinstance(param, click.Argument) else [_flag(param), value]
    return argv


def _malformed(param: click.Parameter) -> bool:
    return isinstance(param.type, click.Choice | click.types.IntParamType | click.types.FloatParamType
                      | click.DateTime | click.IntRange | click.FloatRange)


def bad_inputs(command: click.Command) -> list[Case]:
    params = [p for p in command.params if not (isinstance(p, click.Option) and (p.is_flag or p.hidden))
              and p.name != "help"]
    cases: list[Case] = []
    required = [p for p in params if p.required]
    if required:
        name = required[0].name or ""
        cases.append(("missing", _args([p for p in params if p is not required[0]], None, ""), name))
    for param in params:
        if _malformed(param) and not param.multiple and param.nargs == 1:
            cases.append(("malformed", _args(params, param, NOT_A_NUMBER), NOT_A_NUMBER))
            break
    for param in params:
        if _is_file(param) and param.nargs == 1:
            cases.append(("no such file", _args(params, param, MISSING_FILE), "qala-missing-file"))
            break
    if not cases:
        cases.append(("unexpected argument", ["surplus-argument"], "surplus-argument"))
    return cases


def all_cases(app: Flask) -> list[tuple[str, list[str], str]]:
    return [(" ".join(path) + f" ({what})", [*path, *argv], word)
            for path, command in leaf_commands(app.cli) for what, argv, word in bad_inputs(command)]


def test_the_walk_finds_every_group(app: Flask) -> None:
    names = {path[0] for path, _ in leaf_commands(app.cli)}
    assert {"gtfs", "cards", "avl", "model", "demo", "worker", "reports", "simulate"} <= names, names
    assert len(all_cases(app)) >= 2 * len(names)


def test_every_command_answers_bad_input_with_one_line(app: Flask, runner: FlaskCliRunner) -> None:
    failures = []
    for label, argv, word in all_cases(app):
        result = runner.invoke(args=argv)
        output = result.output
        errors = [line for line in output.splitlines() if line.lower().startswith("error")]
        problem = None
        if result.exit_code == 0:
            problem = "exit code 0"
        elif "Traceback" in output or not isinstance(result.exception, SystemExit | None):
            problem = f"uncaught {type(result.exception).__name__}: {result.exception}"
        elif len(errors) != 1:
            problem = f"{len(errors)} error lines"
        elif word.lower().replace("_", "-") not in errors[0].lower().replace("_", "-"):
            problem = f"the error does not name {word!r}"
        if problem:
            failures.append(f"qala {' '.join(argv)} [{label}]: {problem}: {output.strip()[-200:]!r}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(("argv", "word"), [
    (["cards", "issue", "--category", "nonsense"], "nonsense"),
    (["cards", "issue", "--category", "student"], "registered"),
])
def test_known_card_mistakes_are_one_line(runner: FlaskCliRunner, argv: list[str], word: str) -> None:
    result = runner.invoke(args=argv)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.count("\n") == 1 and word in result.output, result.output
