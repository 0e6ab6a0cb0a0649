"""Which architectures' BPF JITs can call kfuncs, read from a tree's ``arch/*/net/``.

The verifier rejects a kfunc call unless the JIT answers true to
``bpf_jit_supports_kfunc_call()``; kernel/bpf/core.c's weak default says
false, and each JIT that can do it overrides it in ``arch/<name>/net/``.
Some return a condition (powerpc: ``IS_ENABLED(CONFIG_PPC64)``), and some
JIT files are built only for one word size (riscv's ``bpf_jit_comp64.c``
under ``CONFIG_ARCH_RV64I``): both are kept as the support's conditions.
"""

from __future__ import annotations

import re

import pygit2

from .csource import parse_csource
from .gitrepo import resolve
from .kbuild import BuildReader, arch_option, negate
from ..model.history import JitSupport, arches  # noqa: F401 - arches: the JITs of a support tuple
from ..model.inventory import Location

FUNCTION = "bpf_jit_supports_kfunc_call"
_DEFINITION = re.compile(r"\b" + FUNCTION + r"\s*\(\s*(?:void)?\s*\)\s*\{")
_RETURN = re.compile(r"\breturn\b\s*(.*?)\s*;", re.S)
_TRUE = {"true", "1"}
_FALSE = {"false", "0"}


def _returned(body: str) -> str | None:
    """The condition under which the body returns true: "" always, None never."""
    values = [re.sub(r"\s+", " ", v).strip() for v in _RETURN.findall(body)]
    if not values or all(v in _FALSE for v in values):
        return None
    if any(v in _TRUE for v in values) and len(values) == 1:
        return ""
    return " || ".join(v for v in values if v not in _FALSE)


def _body(code: str, brace: int) -> str:
    depth = 0
    for i in range(brace, len(code)):
        if code[i] == "{":
            depth += 1
        elif code[i] == "}":
            depth -= 1
            if depth == 0:
                return code[brace + 1:i]
    return code[brace + 1:]


def _c_files(repo: pygit2.Repository, tree: pygit2.Tree, prefix: str):
    for e in tree:
        if e.type == pygit2.enums.ObjectType.TREE:
            yield from _c_files(repo, repo[e.id], prefix + e.name + "/")
        elif e.type == pygit2.enums.ObjectType.BLOB and e.name.endswith(".c"):
            yield prefix + e.name, e.id


def kfunc_call_support_of_tree(repo: pygit2.Repository, tree: pygit2.Tree,
                               cache: dict | None = None) -> tuple[JitSupport, ...]:
    """Every JIT file of the tree that can call kfuncs, sorted by architecture and path."""
    try:
        arch_tree = repo[tree["arch"].id]
    except KeyError:
        return ()
    build = BuildReader(repo, tree, cache)
    out = []
    for a in arch_tree:
        if a.type != pygit2.enums.ObjectType.TREE:
            continue
        try:
            net = repo[repo[a.id]["net"].id]
        except KeyError:
            continue
        if not isinstance(net, pygit2.Tree):
            continue
        for path, oid in _c_files(repo, net, f"arch/{a.name}/net/"):
            data = repo.odb.read(oid)[1]
            if FUNCTION.encode() not in data:
                continue
            src = parse_csource(path, data)
            for m in _DEFINITION.finditer(src.code):
                returned = _returned(_body(src.code, m.end() - 1))
                if returned is None:
                    continue
                line = src.line_of(m.start())
                own = arch_option(a.name)
                conditions = [b.condition for b in build.guards_of(path) if b.condition != own]
                conditions += [g for g in src.guards_by_line[line] if g not in conditions]
                if returned:
                    conditions.append(returned)
                out.append(JitSupport(a.name, Location(path, line), tuple(conditions)))
    return tuple(sorted(out, key=lambda s: (s.arch, s.location.path)))


def kfunc_call_support(repo: pygit2.Repository, rev: str) -> tuple[JitSupport, ...]:
    """The JIT files that can call kfuncs at ``rev``."""
    return kfunc_call_support_of_tree(repo, resolve(repo, rev).tree)


def kfunc_call_arches(repo: pygit2.Repository, rev: str) -> list[str]:
    """The architectures whose JIT can call kfuncs at ``rev`` (under some condition), sorted."""
    return arches(kfunc_call_support(repo, rev))


def arch_condition(support: tuple[JitSupport, ...], arch: str) -> str:
    """When the architecture's kernels can call kfuncs: "" always (x86's two JIT files, one
    under CONFIG_X86_32 and one under !CONFIG_X86_32, together cover every x86 kernel)."""
    conds = [" && ".join(s.conditions) for s in support if s.arch == arch]
    if "" in conds or any(negate(c) in conds for c in conds):
        return ""
    return " || ".join(dict.fromkeys(conds))
