"""The documentation: the generated pages are current, README stays short, links resolve,
and every command documents itself (help, description, an example)."""

from __future__ import annotations

import argparse
import importlib.machinery
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from policybot.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
GEN_DOCS = ROOT / "scripts" / "gen-docs"
README_MAX_LINES = 200


def gen_docs():
    """scripts/gen-docs as a module (it has no .py suffix)."""
    loader = importlib.machinery.SourceFileLoader("gen_docs", str(GEN_DOCS))
    spec = importlib.util.spec_from_loader("gen_docs", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


# -- (a) the generated pages are what scripts/gen-docs writes ---------------------------------

def test_generated_pages_are_current():
    stale = gen_docs().stale(ROOT)
    assert not stale, f"{', '.join(stale)} stale: run `.venv/bin/python scripts/gen-docs` and commit the result"


def test_check_names_a_stale_page_and_exits_1(tmp_path):
    mod = gen_docs()
    pages = mod.render()
    for path, text in pages.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text, encoding="utf-8")
    assert mod.stale(tmp_path) == []
    (tmp_path / "docs" / "rules.md").write_text(pages["docs/rules.md"] + "edited by hand\n", encoding="utf-8")
    assert mod.stale(tmp_path) == ["docs/rules.md"]


def test_check_command_line():
    out = subprocess.run([sys.executable, str(GEN_DOCS), "--check"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_generated_pages_do_not_depend_on_the_terminal(monkeypatch):
    mod = gen_docs()
    monkeypatch.setenv("COLUMNS", "40")
    narrow = mod.render()
    monkeypatch.setenv("COLUMNS", "250")
    assert mod.render() == narrow


# -- (b) README is an introduction, not the manual ------------------------------------------

def test_readme_is_short():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move detail into docs/"


# -- (c) every relative link points at a file, and an anchor at a heading ----------------------

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^()\s]+)\)")


def pages() -> list[Path]:
    return [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]


def prose(text: str) -> str:
    """The text outside fenced code blocks and inline code spans."""
    text = re.sub(r"^(```|~~~).*?^\1[^\n]*$", "", text, flags=re.M | re.S)
    return re.sub(r"`[^`\n]*`", "", text)


def anchors(page: Path) -> set[str]:
    """The anchors GitHub gives a page's headings (the same rule as scripts/gen-docs)."""
    slug = gen_docs().slug
    text = re.sub(r"^(```|~~~).*?^\1[^\n]*$", "", page.read_text(encoding="utf-8"), flags=re.M | re.S)
    seen: dict[str, int] = {}
    out = set()
    for heading in re.findall(r"^#{1,6} (.+?)\s*#*$", text, re.M):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def links() -> list[tuple[Path, str]]:
    return [(page, target) for page in pages() if page.exists()
            for target in LINK.findall(prose(page.read_text(encoding="utf-8")))
            if not re.match(r"[a-z][a-z0-9+.-]*:", target)]  # https:, mailto: ... are not checked


def test_pages_have_links():
    assert len(links()) > 20  # the check below would pass vacuously if the pattern broke


@pytest.mark.parametrize("page, target", links(), ids=lambda v: v.name if isinstance(v, Path) else v)
def test_relative_link_resolves(page, target):
    path, _, anchor = target.partition("#")
    dest = (page.parent / path).resolve() if path else page
    assert dest.exists(), f"{page.relative_to(ROOT)}: link to {target} names no file"
    if anchor and dest.suffix == ".md":
        assert anchor in anchors(dest), f"{page.relative_to(ROOT)}: {dest.name} has no heading #{anchor}"


# -- (d) every command documents itself ----------------------------------------------------------

def commands() -> dict[str, tuple[str | None, argparse.ArgumentParser]]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {a.dest: a.help for a in action._choices_actions}
    return {name: (helps.get(name), sub) for name, sub in action.choices.items()}


@pytest.mark.parametrize("name", list(commands()))
def test_command_has_help_description_and_an_example(name):
    help_, parser = commands()[name]
    assert help_, f"policybot {name}: no help (the line `policybot --help` lists)"
    assert parser.description, f"policybot {name}: no description"
    epilog = parser.epilog or ""
    assert re.search(r"^examples?:$", epilog, re.M), f"policybot {name}: no example: in its epilog"
    assert re.search(rf"^\s+(\S.*\|\s*)?policybot {name}\b", epilog, re.M), \
        f"policybot {name}: its epilog shows no `policybot {name} ...` line"
