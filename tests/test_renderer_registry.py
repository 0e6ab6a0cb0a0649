"""The renderer registry: --format is declared in one place, and a format registered there is
offered and used by the command at once (one function and one line make a new format)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from policybot import render
from policybot.cli import build_parser, main

PACKAGE = Path(__file__).resolve().parent.parent / "policybot"


def format_choices() -> dict[str, tuple[str, ...]]:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if a.dest == "command"]
    out = {}
    for name, p in sub.choices.items():
        for action in p._actions:
            if "--format" in action.option_strings:
                out[name] = tuple(action.choices)
    return out


def test_format_is_declared_once():
    calls = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and any(isinstance(a, ast.Constant) and a.value == "--format"
                                                  for a in node.args):
                calls.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert len(calls) == 1 and calls[0].startswith("cli/options.py:"), calls


def test_each_commands_formats_are_its_kinds_in_the_registry():
    kinds = {"inventory": "inventory", "audit": "audit", "review": "review", "check": "check",
             "history": "history", "report": "page", "rules": "rules", "explain": "rule", "census": "census",
             "propose": "propose", "doctor": "doctor"}
    assert format_choices() == {c: render.formats(k) for c, k in kinds.items()}
    # census --list renders the kept table in the formats census offers
    assert render.formats("census-table") == render.formats("census")


def test_every_registered_renderer_exists():
    import importlib
    for kind, by_format in render.FORMATS.items():
        for fmt, where in by_format.items():
            module, function = where.split(":")
            assert callable(getattr(importlib.import_module(f"policybot.render.{module}"), function)), (kind, fmt)


def test_a_format_registered_once_is_offered_and_used(monkeypatch, capsys):
    """What docs/design.md shows: one function and one registration give `rules --format tsv`."""
    import policybot.render.rules as rules_module

    def tsv(rules) -> str:
        return "".join(f"{r.id}\t{r.family}\n" for r in rules.values())

    monkeypatch.setattr(rules_module, "tsv", tsv, raising=False)
    monkeypatch.setitem(render.FORMATS, "rules", {**render.FORMATS["rules"], "tsv": "rules:tsv"})
    assert "tsv" in format_choices()["rules"]
    assert main(["rules", "--format", "tsv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "KFUNC_REMOVED\tremoval" in lines


def test_review_writes_sarif_from_the_shared_renderer(tmp_path, capsys):
    """review --format sarif: the same SARIF as audit's and check's, one result per finding."""
    import subprocess
    from policybot.gitbuild import HistoryBuilder
    from kit.trees import BTF_H, MANIFEST, kernel
    repo = tmp_path / "linux"
    b = HistoryBuilder(repo)
    b.commit({"include/linux/btf.h": BTF_H, "kernel/bpf/helpers.c": kernel({"bpf_foo": "int|int x",
                                                                               "bpf_bar": "int|int x"}),
              MANIFEST: "kfuncs:\n  bpf_foo:\n    stability: stable\n"},
             "base", "2024-01-01T12:00:00")
    b.tag("v6.8")
    git = ["git", "-C", str(repo), "-c", "user.name=Jane", "-c", "user.email=jane@example.com"]
    subprocess.run([*git, "checkout", "-qb", "work"], check=True)
    (repo / "kernel/bpf/helpers.c").write_text(kernel({"bpf_bar": "int|int x"}))
    subprocess.run([*git, "commit", "-qam", "bpf: drop bpf_foo"], check=True)
    patch = subprocess.run([*git, "format-patch", "--stdout", "-1", "--base=v6.8"],
                           check=True, capture_output=True, text=True).stdout
    mbox = tmp_path / "s.mbox"
    mbox.write_text(patch.replace("Subject:", "Message-Id: <p1@example.com>\nTo: bpf@vger.kernel.org\nSubject:", 1))
    rc = main(["review", "--repo", str(repo), "--mbox", str(mbox), "--format", "sarif", "--today", "2025-01-01",
               "--from", "bot <bot@example.org>"])
    from kit.sarif import validate
    doc = validate(capsys.readouterr().out)
    results = doc["runs"][0]["results"]
    assert rc == 1 and doc["version"] == "2.1.0"
    assert doc["runs"][0]["automationDetails"] == {"id": "policybot/review/"}
    assert set(results[0]["partialFingerprints"]) == {"policybotFinding/v1"}
    assert [(r["ruleId"], r["level"]) for r in results] == [("KFUNC_REMOVED", "error")]
    assert results[0]["message"]["text"].startswith("bpf_foo ")
