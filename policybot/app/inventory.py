"""The inventory use case: the kfuncs of a source tree at a revision, or of a compiled kernel."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..model.check import CrossCheck
    from ..btf.kfuncs import CompiledKernel
    from ..model.inventory import Inventory
    from .context import Context


def inventory(ctx: Context, rev: str) -> Inventory:
    prefetch_cold(ctx, rev)
    return ctx.scanner.inventory(rev)


def compiled_kernel(ctx: Context, btf: list[str], cross_check_rev: str | None = None,
                    functions: frozenset[str] = frozenset()) -> tuple[CompiledKernel, CrossCheck | None]:
    """A compiled kernel's kfuncs: its vmlinux/vmlinuz BTF, then any module's split BTF; with
    ``cross_check_rev``, what the source tree at that revision says of them; the prototypes of
    ``functions`` (what objects load the address of)."""
    from ..btf.kfuncs import read_kernel  # only this use case reads ELF and BTF
    kernel = read_kernel(btf[0], tuple(btf[1:]), cache_dir=ctx.cache_path("btf"), wanted=functions)
    if cross_check_rev is None:
        return kernel, None
    from ..policy.check import cross_check
    return kernel, cross_check(kernel, ctx.scanner, cross_check_rev)


def prefetch_cold(ctx: Context, rev: str | None, cache_file: str | None = None) -> None:
    """An empty cache: start git grep on ``rev``'s tree before the scanner's imports (pygit2's too).

    ``cache_file``: where this command's cache is (default: the state directory's). A wrong
    guess of ``rev`` costs CPU, not correctness: the scanner takes a grep of its own tree only.
    """
    from ..cache import CACHE_FILE
    from ..kernel.grep import prefetch_grep
    if not rev or ctx.verify_objects or (os.cpu_count() or 1) < 2:
        return
    if os.path.exists(cache_file or ctx.cache_path(CACHE_FILE)):
        return  # a cache: the scanner reads only what it lacks
    prefetch_grep(ctx.repo_path, rev)
