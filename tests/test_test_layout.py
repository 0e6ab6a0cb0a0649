"""The tests' own layout, checked: test modules never import each other; shared helpers live in
tests/kit/ (one module per topic, each listed in the kit's docstring), shared fixtures in
tests/conftest.py, and no helper module lies loose in tests/."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
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


# -- a unit run never reaches the real kernel trees (issue 21) ----------------------------------------

PROBE = '''\
import pytest
from pathlib import Path

RAN = Path({ran!r})


@pytest.fixture(scope="session")
def kernel_repo():  # stands in for conftest's, which runs scripts/kernel-trees: says that it ran
    RAN.write_text("kernel_repo was set up")
    return "repo"


@pytest.fixture
def built_on_it(kernel_repo):
    return kernel_repo


def test_unmarked(kernel_repo):
    pass


def test_unmarked_through_a_fixture(built_on_it):
    pass


@pytest.mark.realtree
def test_marked(built_on_it):
    pass


def test_unit():
    pass
'''


def _probe(tmp_path, *args) -> tuple[subprocess.CompletedProcess, bool]:
    """tests/conftest.py (loaded as a plugin) over PROBE: the run, and whether the fixture ran."""
    ran = tmp_path / "fixture-ran"
    ran.unlink(missing_ok=True)
    (tmp_path / "test_probe.py").write_text(PROBE.format(ran=str(ran)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS.parent), str(TESTS)])}
    out = subprocess.run([sys.executable, "-m", "pytest", "-p", "conftest", "-p", "no:cacheprovider", "-q", "-rA",
                          "--rootdir", str(tmp_path), "-W", "ignore::pytest.PytestUnknownMarkWarning",
                          str(tmp_path / "test_probe.py"), *args],
                         cwd=tmp_path, env=env, capture_output=True, text=True)
    return out, ran.exists()


def test_a_real_tree_fixture_fails_an_unmarked_test_before_it_is_set_up(tmp_path):
    out, ran = _probe(tmp_path, "-m", "not realtree")
    assert out.returncode == 1, out.stdout + out.stderr
    assert not ran, "a unit run set up kernel_repo"
    assert "PASSED test_probe.py::test_unit" in out.stdout.splitlines()
    for name in ("test_unmarked", "test_unmarked_through_a_fixture"):  # directly, and through a fixture
        assert f"ERROR at setup of {name} " in out.stdout
        assert (f"\ntest_probe.py::{name} uses kernel_repo (the real kernel trees, " in out.stdout
                and "but is not marked realtree: mark the test where it is defined" in out.stdout), out.stdout
    # the marked test is left to the real-tree run, where the fixture is set up as before
    out, ran = _probe(tmp_path, "-m", "realtree")
    assert out.returncode == 0 and ran, out.stdout + out.stderr
    assert "PASSED test_probe.py::test_marked" in out.stdout.splitlines()


def test_the_guard_reads_the_mark_where_the_test_is_defined():
    from types import SimpleNamespace

    from kit.realtree import REAL_TREE_FIXTURES, unmarked_real_tree_use

    def item(fixtures, marked):
        return SimpleNamespace(nodeid="tests/test_x.py::test_y", fixturenames=list(fixtures),
                               get_closest_marker=lambda name: object() if marked and name == "realtree" else None)

    assert REAL_TREE_FIXTURES >= {"kernel_repo", "binaries"}
    assert unmarked_real_tree_use(item(["tmp_path", "kernel_state"], False)) is None  # a parse cache only
    assert unmarked_real_tree_use(item(["tmp_path", "binaries"], True)) is None
    why = unmarked_real_tree_use(item(["binaries", "extracted", "tmp_path"], False))
    assert why.startswith("tests/test_x.py::test_y uses binaries, extracted (the real kernel trees")
