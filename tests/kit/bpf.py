"""Compiling the tests' BPF programs (tests/bpf/*.bpf.c, SOURCES) with Debian's clang, in the test
run, and finding a line of their sources by its text (line_of, call_site)."""

import glob
import shutil
import subprocess
from pathlib import Path

import pytest

SOURCES = Path(__file__).resolve().parent.parent / "bpf"


def clang() -> str:
    """The newest Debian clang installed (clang-19 emits BTF for every extern; clang 14 drops some)."""
    for name in ("clang-19", "clang-18", "clang-17", "clang-16", "clang-15", "clang"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("no clang (Debian: apt-get install clang-19 libbpf-dev; make test installs them)")


def compile_bpf(src: Path, out: Path, *flags: str, debug: bool = True) -> Path:
    if not Path("/usr/include/bpf/bpf_helpers.h").exists():
        pytest.fail("no libbpf-dev headers (Debian: apt-get install libbpf-dev; make test installs them)")
    multiarch = [d for d in glob.glob("/usr/include/*-linux-gnu") if Path(d, "asm").is_dir()]
    cmd = [clang(), "-target", "bpf", "-mcpu=v3", "-O2", *(["-g"] if debug else []),
           *(f"-idirafter{d}" for d in multiarch), *flags, "-c", src.name, "-o", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=src.parent)
    assert r.returncode == 0, f"{' '.join(cmd)}\n{r.stderr}"
    return out


def line_of(src: Path, text: str) -> int:
    """The line of the source holding ``text``, found independently of the object's line info."""
    for i, line in enumerate(src.read_text().splitlines(), 1):
        if text in line:
            return i
    raise AssertionError(f"{text!r} not in {src}")


def call_site(program: str, text: str) -> str:
    """``path:line`` of the first line of tests/bpf/PROGRAM.bpf.c holding ``text``: how check prints a call."""
    src = SOURCES / f"{program}.bpf.c"
    return f"{src}:{line_of(src, text)}"
