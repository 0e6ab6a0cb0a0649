"""Every rule's reference names a document a reader can open: a file of the real kernel tree
(with the section or function it names), or a section of a page of docs/."""

from __future__ import annotations

import re
import subprocess
import tomllib
from importlib import resources
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def references() -> dict[str, tuple[str, str]]:
    rules = tomllib.loads(resources.files("policybot.policy").joinpath("rules.toml").read_text())
    out = {}
    for rid, rule in rules.items():
        where, _, what = rule["reference"].partition(": ")
        assert what, f"{rid}: reference {rule['reference']!r} names no section"
        out[rid] = (where, what)
    return out


def test_rule_references_to_docs_name_a_heading():
    for rid, (where, what) in references().items():
        if not where.startswith("docs/"):
            continue
        page = ROOT / where
        assert page.is_file(), f"{rid}: {where} does not exist"
        headings = {h.strip() for h in re.findall(r"^#+ (.*)$", page.read_text(), re.M)}
        assert what in headings, f"{rid}: {where} has no section {what!r}"
    rules = tomllib.loads(resources.files("policybot.policy").joinpath("rules.toml").read_text())
    assert not [r for r in rules.values() if "kfuncs.md" in r["reference"] + r["compares"]]


@pytest.mark.realtree
def test_rule_references_point_at_real_documents(kernel_repo):
    for rid, (where, what) in references().items():
        if where.startswith("docs/"):
            continue
        text = subprocess.run(["git", "-C", kernel_repo, "show", f"v7.2:{where}"], capture_output=True,
                              text=True).stdout
        assert text, f"{rid}: {where} is not in the kernel tree at v7.2"
        # "A, B (a remark)": each named section or function is in the file
        for name in re.sub(r"\s*\([^)]*\)", "", what).split(", "):
            name = re.match(r"\w+", name).group(0) if where.endswith((".c", ".h")) else name
            assert name in text, f"{rid}: {where} does not mention {name!r}"
