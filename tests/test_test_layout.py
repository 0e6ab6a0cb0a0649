"""The tests' own layout, checked: test modules never import each other; shared helpers live in
tests/kit/ (one module per topic, each listed in the kit's docstring), shared fixtures in
tests/conftest.py, and no helper module lies loose in tests/."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
KIT = TESTS / "kit"


def imported(source: str) -> list[tuple[int, str]]:
    """(line, top-level module) of every import in ``source``, at any depth (function-local too)."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.append((node.lineno, node.module.split(".")[0]))
    return out


def forbidden(path: Path) -> list[str]:
    """The imports of ``path`` that reach into a test module or into conftest.py."""
    return [f"{path.relative_to(TESTS)}:{line}: imports {name}"
            for line, name in imported(path.read_text()) if name.startswith("test_") or name == "conftest"]


def test_the_check_sees_every_kind_of_import():
    source = ("import test_a\nimport test_b.x as y\nfrom test_c import f\nimport conftest\n"
              "def g():\n    from test_d import h\n"
              "import kit.trees\nfrom kit.mail import BOT\nfrom policybot import cli\nimport pytest\n")
    assert [name for _, name in imported(source) if name.startswith("test_") or name == "conftest"] == [
        "test_a", "test_b", "test_c", "conftest", "test_d"]


def test_test_modules_never_import_each_other():
    modules = sorted(TESTS.glob("test_*.py"))
    assert len(modules) > 30, modules  # the check walks the real test modules
    problems = [p for path in modules for p in forbidden(path)]
    assert problems == [], "a helper two test modules share belongs in tests/kit/:\n" + "\n".join(problems)


def test_the_kit_imports_no_test_module():
    modules = sorted(KIT.glob("*.py"))
    assert modules, KIT
    problems = [p for path in [*modules, TESTS / "conftest.py"] for p in forbidden(path)]
    assert problems == [], "\n".join(problems)


def test_no_helper_module_lies_loose_in_tests():
    loose = sorted(str(p.relative_to(TESTS)) for p in TESTS.rglob("*.py")
                   if p.parent != KIT and not (p.parent == TESTS and (p.name.startswith("test_")
                                                                      or p.name == "conftest.py")))
    assert loose == [], f"helpers go to a module of tests/kit/, not {loose}"


def test_the_kits_docstring_lists_its_modules():
    doc = ast.get_docstring(ast.parse((KIT / "__init__.py").read_text()))
    listed = {line.split()[0] for line in doc.splitlines() if line.startswith("  ") and not line.startswith("   ")}
    assert listed == {p.stem for p in KIT.glob("*.py") if p.name != "__init__.py"}
