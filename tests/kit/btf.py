"""Debian's compiled kernels for tests (scripts/kernel-binaries), read by other tools than
policybot: the kernel's own scripts/extract-vmlinux decompresses each vmlinuz, and bpftool dumps
its BTF (dump), in which the kfuncs are the FUNCs a ``bpf_kfunc`` decl tag names (tagged_kfuncs).
conftest's ``binaries`` and ``extracted`` fixtures are kernel_binaries and extract_vmlinux."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from kit.realtree import KERNEL_CACHE

ROOT = Path(__file__).resolve().parents[2]
RELEASES = ("6.12", "7.2")


def kernel_binaries() -> dict:
    """{release: {"vmlinuz": path, "ko": [paths]}} from scripts/kernel-binaries."""
    out = subprocess.run([str(ROOT / "scripts" / "kernel-binaries"), KERNEL_CACHE],
                         check=True, capture_output=True, text=True).stdout
    found: dict = {}
    for line in out.splitlines():
        rel, kind, path = line.split(" ", 2)
        entry = found.setdefault(rel, {"ko": []})
        if kind == "ko":
            entry["ko"].append(Path(path))
        else:
            entry[kind] = Path(path)
    return found


def extract_vmlinux(binaries: dict, kernel_repo: str, d: Path) -> dict:
    """{release: vmlinux ELF} in ``d``, decompressed by the v7.2 tree's scripts/extract-vmlinux."""
    script = d / "extract-vmlinux"
    script.write_bytes(subprocess.run(["git", "-C", kernel_repo, "show", "v7.2:scripts/extract-vmlinux"],
                                      check=True, capture_output=True).stdout)
    out = {}
    for rel in RELEASES:
        target = d / f"vmlinux-{rel}"
        with open(target, "wb") as fh:
            subprocess.run(["sh", str(script), str(binaries[rel]["vmlinuz"])], check=True, stdout=fh)
        out[rel] = target
    return out


def bpftool() -> str:
    return shutil.which("bpftool") or shutil.which("/usr/sbin/bpftool") or pytest.fail(
        "no bpftool (Debian: apt-get install bpftool; make test installs it)")


def dump(path: Path, base: Path | None = None) -> str:
    cmd = [bpftool(), "btf", "dump", *(["-B", str(base)] if base else []), "file", str(path)]
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


_TYPE = re.compile(r"^\[(\d+)\] (\w+) '([^']*)'(.*)$", re.M)


def dump_types(text: str) -> dict[int, tuple[str, str, str]]:
    return {int(m[1]): (m[2], m[3], m[4]) for m in _TYPE.finditer(text)}


def tagged_kfuncs(text: str) -> dict[str, int]:
    """name -> FUNC id of every bpf_kfunc decl tag on a function (component_idx=-1)."""
    types = dump_types(text)
    out = {}
    for tid, (kind, name, rest) in types.items():
        if kind == "DECL_TAG" and name == "bpf_kfunc" and "component_idx=-1" in rest:
            target = int(re.search(r"type_id=(\d+)", rest)[1])
            if target in types and types[target][0] == "FUNC":
                out[types[target][1]] = target
    return out
