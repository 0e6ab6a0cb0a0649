"""The command line as a whole: help that teaches, documented commands, bad input."""

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest

from policybot.cli import build_parser, main
from policybot.policy.rules import catalogue

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def subcommands():
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices, {a.dest: a.help for a in action._choices_actions}


def readme_sections() -> set[str]:
    """Commands README's `### policybot ...` headings name (`### policybot rules, policybot explain RULE`: two).

    A heading, not any mention: "policybot reports" in a sentence is no section of `policybot report`.
    """
    return {name for line in README.splitlines() if line.startswith("### policybot ")
            for name in re.findall(r"\bpolicybot (\w+)", line)}


def test_every_command_has_help_and_a_readme_section():
    commands, helps = subcommands()
    assert set(commands) >= {"inventory", "audit", "review", "maintainers", "run", "schedule",
                             "notice", "outbox", "rules", "explain", "check", "history", "report"}
    sections = readme_sections()
    for name, parser in commands.items():
        assert helps[name], name
        assert parser.description, name
        assert name in sections, f"README has no `### policybot {name}` section"
        for action in parser._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, f"{name} {action.option_strings} has no help"


def readme_rules() -> set[str]:
    """Rule ids of README's rule table; `KFUNC_PARAM_ADDED` / `_REMOVED` is KFUNC_PARAM_REMOVED too."""
    table = README.split("| rule | what changed |", 1)[1].split("\n\n", 1)[0]
    out = set()
    for row in table.split("\n")[2:]:
        first, *others = re.findall(r"`(\w+)`", row.split("|")[1])
        out.add(first)
        out |= {first.rsplit("_", 1)[0] + suffix if suffix.startswith("_") else suffix for suffix in others}
    return out


def test_every_rule_is_in_the_readme():
    assert readme_rules() == set(catalogue())


def test_help_runs_and_shows_examples():
    out = subprocess.run([sys.executable, "-m", "policybot", "audit", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "examples:" in out.stdout and "exit status" in out.stdout


@pytest.mark.parametrize("argv, message", [
    (["inventory", "--repo", "/nonexistent"], "no such file or directory"),
    (["audit", "--repo", ".", "--policy", "/nonexistent.toml"], "nonexistent.toml"),
    (["run", "--config", "/nonexistent.toml"], "nonexistent.toml"),
    (["explain", "NOPE"], "unknown rule 'NOPE'"),
])
def test_errors_are_one_line_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out
