"""The inventory use case: the kfuncs of a source tree at a revision, or of a compiled kernel."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..btf.kfuncs import CompiledKernel
    from ..kernel.model import Inventory
    from ..kernel.scanner import Scanner
    from ..progress import Progress


def scanner(repo_path: str, cache, progress: Progress | None = None, verify_objects: bool = False) -> Scanner:
    """The scanner of the repository at ``repo_path`` (every use case that reads a tree starts here)."""
    from ..kernel.gitrepo import open_repo  # pygit2: not for a compiled kernel's use case
    from ..kernel.scanner import Scanner
    return Scanner(open_repo(repo_path), cache, progress, verify_objects=verify_objects)


def inventory(scan: Scanner, rev: str) -> Inventory:
    return scan.inventory(rev)


def compiled_kernel(btf: list[str], cache_dir: str) -> CompiledKernel:
    """A compiled kernel's kfuncs: its vmlinux/vmlinuz BTF, then any module's split BTF."""
    from ..btf.kfuncs import read_kernel  # only this use case reads ELF and BTF
    return read_kernel(btf[0], tuple(btf[1:]), cache_dir=cache_dir)
