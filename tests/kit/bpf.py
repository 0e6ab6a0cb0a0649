"""Compiling the tests' BPF programs (tests/bpf/*.bpf.c, SOURCES) with Debian's clang, in the test
run, finding a line of their sources by its text (line_of, call_site), and reading objects without
policybot: libbpf's flavor rule (flavorless), readelf's symbols (undefined_symbols,
extern_symbols) and the BPF objects a program embeds (cut_objects)."""

import glob
import re
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


def flavorless(name: str) -> str:
    """libbpf's flavor rule, written again as a regular expression: everything before the last
    X___Y separator (X, Y not '_')."""
    m = re.match(r"^(.*[^_])___[^_].*$", name)  # greedy: the last separator
    return m[1] if m else name


def undefined_symbols(obj: Path) -> dict[str, tuple[str, str]]:
    """Undefined global or weak symbols of an object, as readelf prints them: name -> (bind, type)."""
    out = {}
    for line in subprocess.run(["readelf", "-sW", str(obj)], check=True, capture_output=True,
                               text=True).stdout.splitlines():
        cols = line.split()
        if len(cols) >= 8 and cols[6] == "UND" and cols[4] in ("GLOBAL", "WEAK"):
            out[cols[7]] = (cols[4], cols[3])
    return out


def extern_symbols(obj: Path) -> dict[str, bool]:
    """name -> weak, of the symbols libbpf's sym_is_extern takes: undefined, global or weak, NOTYPE."""
    return {n: bind == "WEAK" for n, (bind, kind) in undefined_symbols(obj).items() if kind == "NOTYPE"}


def cut_objects(data: bytes) -> list[bytes]:
    """The EM_BPF relocatables inside ``data`` (a program or library that embeds libbpf skeletons),
    read without policybot: 64-bit little-endian ELF header, cut at the end of the section header
    table (llvm writes it last)."""
    import struct
    out, pos = [], data.find(b"\x7fELF")
    while pos >= 0:
        head = data[pos:pos + 64]
        if len(head) == 64 and head[4] == 2 and head[5] == 1 and struct.unpack_from("<H", head, 18)[0] == 247:
            shoff = struct.unpack_from("<Q", head, 40)[0]
            shentsize, shnum = struct.unpack_from("<HH", head, 58)
            end = pos + shoff + shentsize * shnum
            out.append(data[pos:end])
            pos = data.find(b"\x7fELF", end)
        else:
            pos = data.find(b"\x7fELF", pos + 1)
    return out


def build_deb(root: Path, name: str, version: str, files: dict[str, bytes]) -> Path:
    """A real package holding ``files`` (path in the package -> bytes), built with dpkg-deb."""
    pkg = root / f"{name}-pkg"
    (pkg / "DEBIAN").mkdir(parents=True)
    (pkg / "DEBIAN" / "control").write_text(f"Package: {name}\nVersion: {version}\nArchitecture: amd64\n"
                                            f"Maintainer: Test <t@example.org>\nDescription: test\n")
    for path, data in files.items():
        (pkg / path).parent.mkdir(parents=True, exist_ok=True)
        (pkg / path).write_bytes(data)
    out = root / f"{name}_{version}_amd64.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", "-Zxz", str(pkg), str(out)], check=True,
                   capture_output=True)
    return out
