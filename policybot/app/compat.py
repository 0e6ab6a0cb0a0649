"""The compat use case (``policybot compat``): a C header for BPF programs that bridges the kfuncs
whose name, prototype or availability differs across a range of releases.

Data: each release's inventory (the BPF-visible prototypes, as ``check`` reads a source target),
the history's renames over the range, propose's successors (``NAME___v2`` beside ``NAME``), the
promises each release declares (``check``'s source targets), and the operator's fallbacks (the
policy file's ``[compat]``). The entries are decided in policy/compat.py; the text is
templates/compat.h.j2. The generated externs are then checked against every release.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import InputError
from ..model.compat import CompatHeader, CParam, Promise, Prototype, Variant
from ..policy.calendar import release_number

if TYPE_CHECKING:
    from .context import Context


def parse_range(text: str) -> tuple[str, str]:
    """``v6.12..v7.2`` -> ("v6.12", "v7.2"): two release tags, the older first."""
    first, sep, last = text.partition("..")
    if not sep or release_number(first) is None or release_number(last) is None:
        raise InputError(f"--releases: expected two release tags as A..B (v6.12..v7.2), got {text!r}")
    if release_number(first) >= release_number(last):
        raise InputError(f"--releases: {first} is not older than {last}")
    return first, last


def used_names(paths: list[str]) -> set[str]:
    """The kfunc names the given BPF C sources and files with BPF objects name: the externs each
    object leaves to libbpf (their essential names; objects read as ``check`` and the census read
    them: a .bpf.o, those an executable or shared library embeds, those of a Debian package's
    files), and in a C source its ksym externs and every identifier (a call through this header
    names the kfunc itself). Any other file is bad input."""
    import re

    from ..bounded import read_input
    from ..model.census import essential_name
    from ..usage.csource import ksym_externs
    from ..usage.embedded import file_kind
    from .check import read_objects
    out: set[str] = set()
    for path in paths:
        if file_kind(path) != "other":
            out |= {e.kfunc for obj in read_objects(path, []) for e in obj.externs}
            continue
        data = read_input(path)
        if b"\0" in data or not _utf8(data):
            raise InputError(f"{path}: neither a BPF C source nor a file with BPF objects in it "
                             f"(a BPF object, an executable or shared library, a Debian package)")
        out |= {essential_name(e.name) for e in ksym_externs(data)}
        out |= set(re.findall(r"\b[A-Za-z_]\w*\b", data.decode("utf-8")))
    return out


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _prototypes(scanner, repo, rel, include_tests: bool) -> dict[str, Prototype]:
    from ..policy.diff import bpf_params
    inv = scanner.inventory_of_commit(repo[rel.commit], rel.name)
    out = {}
    for k in inv.selected(include_tests):
        if k.definition is not None:
            out[k.name] = Prototype(k.definition.signature.return_type,
                                    tuple(CParam(p.type, p.name) for p in bpf_params(k, inv)))
    return out


def compat(ctx: Context, releases: str, kfunc_files: list[str]) -> CompatHeader:
    """`policybot compat`: the header for the releases ``A..B`` (every release tag between them),
    for every kfunc that differs, or only those ``kfunc_files`` (C sources, BPF objects) name."""
    from ..policy.check import source_targets
    from ..policy.compat import self_check
    from .history import kfunc_history, releases_for
    first, last = parse_range(releases)
    used = used_names(kfunc_files) if kfunc_files else None  # bad input fails before any tree is read
    scanner, policy = ctx.scanner, ctx.policy
    repo = scanner.repo
    rels = [r for r in releases_for(repo, "v*", since=first) if release_number(r.name) <= release_number(last)]
    names = [r.name for r in rels]
    if first not in names or last not in names:
        raise InputError(f"{ctx.repo_path}: no release tag {first if first not in names else last} "
                         f"(release tags: {', '.join(r.name for r in releases_for(repo)) or 'none'})")
    protos = {r.name: _prototypes(scanner, repo, r, policy.include_tests) for r in rels}
    history = kfunc_history(repo, scanner, "v*", policy, upto=last, since=first)
    targets = source_targets(ctx.repo_path, names, None, policy, lambda: ctx.auditor, ctx.today,
                             cache_dir=ctx.cache_path("check"))
    promises = {t.name: {n: Promise(p.level, p.promise_ends, p.earliest_removal, p.replacement)
                         for n, p in t.policy.items()} for t in targets}
    header = CompatHeader(ctx.repo_path, first, last, tuple(names), filtered_by=tuple(kfunc_files))
    header.entries = _entries(history, protos, promises, names, policy.compat_fallbacks, used)
    externs = {v.extern: v for e in header.entries for v in e.variants}
    header.dead = self_check([v for _, v in sorted(externs.items())], targets, header.entries)
    return header


def _entries(history, protos, promises, names: list[str], fallbacks: dict[str, str], used: set[str] | None):
    from ..policy.compat import chains, entry, variants_of
    from .propose import successors_of
    renamed_from = {h.name: h.renamed_from for h in history if h.renamed_from}
    every = set().union(*(p.keys() for p in protos.values()))
    successors = {b: s for b, s in successors_of(protos[names[-1]]).items() if b in every}
    numbering: dict[str, list] = {}
    out = []
    base_of = {s: b for b, s in successors.items()}
    for name, chain in sorted(chains(renamed_from, successors, every).items()):
        if used is not None and not used.intersection(chain):
            continue
        variants: list[Variant] = variants_of(chain, names, protos, promises, numbering)
        e = entry(chain, variants, names, base_of.get(name), fallbacks.get(name))
        if e is not None:
            out.append(e)
    return out
