"""scripts/mutate, the mutation run, on a tiny project made here: a mutant the tests notice is
killed, one they do not notice survives (exit 1), and a list that names a line twice or a
test that fails on the tree as it is cannot be judged (exit 2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "mutate"


def project(tmp_path: Path, test_body: str) -> Path:
    root = tmp_path / "proj"
    (root / "pkg").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "calc.py").write_text("def double(x):\n    return x * 2\n\n\ndef unused(x):\n    return x\n")
    (root / "tests" / "test_calc.py").write_text(f"from pkg.calc import double\n\n\ndef test_double():\n{test_body}\n")
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "x"], check=True)
    return root


def mutate(root: Path, lines: str) -> subprocess.CompletedProcess:
    mutants = root.parent / "mutants.txt"
    mutants.write_text(lines)
    return subprocess.run([sys.executable, str(SCRIPT), "--root", str(root), "--list", str(mutants),
                           "--python", sys.executable], capture_output=True, text=True, timeout=120)


def test_a_noticed_mutant_is_killed_and_an_unnoticed_one_survives(tmp_path):
    root = project(tmp_path, "    assert double(3) == 6")
    run = mutate(root, "# a comment\n\npkg/calc.py|return x * 2|return x + 2|tests/test_calc.py\n")
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.splitlines()[0].startswith("killed") and "1 mutants, 1 killed, 0 survived" in run.stdout
    run = mutate(root, "pkg/calc.py|return x * 2|return x + 2|tests/test_calc.py\n"
                       "pkg/calc.py|return x|return None|tests/test_calc.py\n")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "SURVIVED" in run.stdout.splitlines()[1] and "2 mutants, 1 killed, 1 survived" in run.stdout
    # the tree is left as it was: the copy is mutated, never the repository
    assert "return x * 2" in (root / "pkg" / "calc.py").read_text()


def test_a_mutant_that_cannot_be_judged_is_an_error(tmp_path):
    root = project(tmp_path, "    assert double(3) == 6")
    (root / "pkg" / "calc.py").write_text("")  # uncommitted: the run reads HEAD, not the work tree
    run = mutate(root, "pkg/calc.py|return|pass|tests/test_calc.py\n")  # "return" alone is no line
    assert run.returncode == 2 and "0 times" in run.stderr + run.stdout
    failing = project(tmp_path / "b", "    assert double(3) == 7")
    run = mutate(failing, "pkg/calc.py|return x * 2|return x + 2|tests/test_calc.py\n")
    assert run.returncode == 2 and "do not pass on the tree as it is" in run.stderr
    run = mutate(failing, "pkg/calc.py|return x * 2|return x + 2\n")
    assert run.returncode != 0 and "expected FILE|ORIGINAL|REPLACEMENT|TESTS" in run.stderr
