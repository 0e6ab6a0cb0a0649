"""One census of one source: a file or directory (BPF C sources, ``.bpf.o`` objects,
executables and libraries with embedded objects, Debian packages) or a git repository at a
revision (``REPO@REV[:PATH]``, read through pygit2, no checkout).

Users are named by program: a C source or object by its file name without ``.bpf.c``,
``.c``, ``.bpf.o`` or ``.o``, an executable or library by its file name; in a kernel tree
(a directory with Kbuild, MAINTAINERS and tools/), by its path from the tree's root, and
those under ``tools/`` or ``samples/`` are in-tree. A C source uses the kfuncs it declares
``__ksym`` and those a header of the same source declares and it calls.

Nothing here stops on a bad file: each becomes one line in ``Census.problems``, naming
the file, and the census goes on. Every read goes through policybot/bounded.py.
"""

from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Iterator

import pygit2

from .. import bounded
from ..errors import InputError, PolicybotError
from ..kernel.gitrepo import open_repo, repo_name, resolve
from ..kernel.ledger import makefile_version
from ..model.census import Census, Use, essential_name
from .csource import KsymExtern, ksym_externs, references, wrappers
from .deb import AR_MAGIC, package_files, read_package
from .embedded import ELF_MAGIC, bpf_objects, object_externs

IN_TREE_DIRS = ("tools/", "samples/")
C_SUFFIXES = (".c", ".h")


@dataclass(frozen=True)
class Origin:
    """Who the uses of one source belong to."""
    key: str  # the source's key in the state: a new census replaces the old one's uses
    project: str
    version: str
    kernel_root: bool  # paths are relative to a kernel tree's root


@dataclass
class _Reading:
    origin: Origin
    census: Census
    c_files: dict[str, bytes] = field(default_factory=dict)  # path -> C text


def census(spec: str, name: str | None = None, version: str | None = None) -> list[Census]:
    """The census of ``spec``: one ``Census`` per source it holds (each Debian package is one)."""
    if os.path.lexists(spec):
        return _path_census(spec, name, version)
    m = re.fullmatch(r"(.+?)@([^:]+)(?::(.*))?", spec)
    if m and os.path.isdir(m[1]):
        return [_git_census(m[1], m[2], (m[3] or "").strip("/"), name, version)]
    raise InputError(f"{spec}: no such file or directory (a git source is REPO@REV[:PATH])")


# -- the readers of one file ----------------------------------------------------------------------


def _user(path: str, kernel_root: bool) -> str:
    p = PurePosixPath(path)
    base = p.name
    for suffix in (".bpf.c", ".bpf.o", ".c", ".o"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    return str(p.with_name(base)) if kernel_root else base


def _in_tree(path: str, origin: Origin) -> bool:
    return origin.kernel_root and path.startswith(IN_TREE_DIRS)


def _read_elf(path: str, data: bytes, r: _Reading, user: str | None = None) -> None:
    """The kfunc externs of every BPF object in ``data`` (itself, or embedded)."""
    user = user or _user(path, r.origin.kernel_root)
    for where, obj in bpf_objects(path, data, r.census.problems):
        try:
            externs = object_externs(obj, where)
        except PolicybotError as e:
            r.census.problems.append(str(e))
            continue
        except (struct.error, IndexError, ValueError) as e:  # tables that point at nonsense
            r.census.problems.append(f"{where}: corrupt BPF object: {e}")
            continue
        r.census.objects += 1
        for declared, weak in externs:
            kfunc = essential_name(declared)
            r.census.uses.append(Use(kfunc, user, r.origin.project, r.origin.version, _in_tree(path, r.origin),
                                     weak, where, declared if declared != kfunc else ""))


def _read_file(path: str, data: bytes, r: _Reading) -> None:
    r.census.files += 1
    if data.startswith(ELF_MAGIC):
        _read_elf(path, data, r)
    elif path.endswith(C_SUFFIXES):
        r.c_files[path] = data


def _read_c_sources(r: _Reading) -> None:
    """Each .c file's uses: the kfuncs it names that it or a header declares ``__ksym``, and
    those the headers' inline wrappers and macros it calls name (transitively)."""
    own: dict[str, dict[str, KsymExtern]] = {}
    in_headers: dict[str, KsymExtern] = {}
    wraps: dict[str, set[str]] = {}
    for path, data in sorted(r.c_files.items()):
        own[path] = {e.name: e for e in ksym_externs(data)} if b"__ksym" in data else {}
        if path.endswith(".h"):
            for e in own[path].values():
                in_headers.setdefault(e.name, e)
            for name, names in wrappers(data).items():
                wraps.setdefault(name, names)
    reach: dict[str, set[str]] = {}

    def kfuncs_behind(wrapper: str) -> set[str]:
        """The declared names a wrapper leads to, through other wrappers (each visited once)."""
        if wrapper not in reach:
            found, seen, todo = set(), {wrapper}, [wrapper]
            while todo:
                for n in wraps.get(todo.pop(), ()):
                    if n in in_headers:
                        found.add(n)
                    if n in wraps and n not in seen:
                        seen.add(n)
                        todo.append(n)
            reach[wrapper] = found
        return reach[wrapper]

    for path, data in sorted(r.c_files.items()):
        if not path.endswith(".c"):
            continue
        user, in_tree = _user(path, r.origin.kernel_root), _in_tree(path, r.origin)
        known = {**in_headers, **own[path]}
        found: dict[str, int] = {}
        for name, line in references(data, set(known) | set(wraps)).items():
            for k in ({name} if name in known else set()) | (kfuncs_behind(name) if name in wraps else set()):
                found.setdefault(k, line)
        for name, line in sorted(found.items()):
            r.census.uses.append(_c_use(name, user, r.origin, in_tree, known[name].weak, f"{path}:{line}"))


def _c_use(name: str, user: str, origin: Origin, in_tree: bool, weak: bool, location: str) -> Use:
    kfunc = essential_name(name)
    return Use(kfunc, user, origin.project, origin.version, in_tree, weak, location, name if name != kfunc else "")


def _finish(r: _Reading) -> Census:
    _read_c_sources(r)
    seen, uses = set(), []
    for u in r.census.uses:  # one program declaring a kfunc in several objects is one use
        if (u.kfunc, u.user, u.weak) not in seen:
            seen.add((u.kfunc, u.user, u.weak))
            uses.append(u)
    r.census.uses = sorted(uses, key=lambda u: (u.kfunc, u.user, u.weak))
    return r.census


# -- sources -------------------------------------------------------------------------------------


def _kernel_root(path: str) -> str | None:
    """The kernel tree ``path`` is in, if any."""
    d = os.path.realpath(path if os.path.isdir(path) else os.path.dirname(path) or ".")
    while True:
        if all(os.path.exists(os.path.join(d, f)) for f in ("Kbuild", "MAINTAINERS", "tools")):
            return d
        parent = os.path.dirname(d)
        if parent == d:
            return None
        d = parent


def _walk(top: str) -> Iterator[str]:
    """Files under ``top``, sorted, never through a symbolic link (no loops)."""
    stack = [top]
    while stack:
        d = stack.pop()
        try:
            entries = sorted(os.scandir(d), key=lambda e: e.name, reverse=True)
        except OSError:
            continue
        for e in entries:
            if e.is_symlink():
                continue
            if e.is_dir(follow_symlinks=False):
                stack.append(e.path)
            else:
                yield e.path


def _path_census(spec: str, name, version) -> list[Census]:
    top = os.path.abspath(spec)
    root = _kernel_root(top)
    if root:
        try:
            makefile = bounded.read_input(os.path.join(root, "Makefile"), cap=1 << 20)
            tree_version = ".".join(map(str, makefile_version(makefile)))
        except InputError:
            tree_version = ""
        origin = Origin(f"path:{top}", name or "linux", version or tree_version, True)
    else:
        base = os.path.basename(top.rstrip("/")) or top
        origin = Origin(f"path:{top}", name or base, version or "", False)
    r = _Reading(origin, Census(origin.key))
    packages = []
    files = [top] if not os.path.isdir(top) else _walk(top)
    for path in files:
        rel = os.path.relpath(path, root) if root else (os.path.relpath(path, top) if path != top else
                                                         os.path.basename(path))
        try:
            with bounded.open_input(path) as f:
                head = f.read(8)
            if head.startswith(AR_MAGIC) and path.endswith(".deb"):
                packages.append(_deb_census(path))
                continue
            if not (head.startswith(ELF_MAGIC) or (path.endswith(C_SUFFIXES))):
                continue
            _read_file(rel, bounded.read_input(path), r)
        except PolicybotError as e:
            r.census.problems.append(str(e))
    own = _finish(r)
    keep_own = own.uses or own.problems or not packages
    return ([own] if keep_own else []) + packages


def _deb_census(path: str) -> Census:
    try:
        package = read_package(path)
    except PolicybotError as e:
        return Census(f"path:{os.path.abspath(path)}", problems=[str(e)])
    origin = Origin(f"deb:{package.name}", package.name, package.version, False)
    r = _Reading(origin, Census(origin.key))
    try:
        for rel, data in package_files(package, path):
            if data.startswith(ELF_MAGIC):
                r.census.files += 1
                try:
                    _read_elf(f"{os.path.basename(path)}:{rel}", data, r, user=PurePosixPath(rel).name)
                except PolicybotError as e:
                    r.census.problems.append(str(e))
    except PolicybotError as e:
        r.census.problems.append(str(e))
    return _finish(r)


def _git_census(repo_path: str, rev: str, under: str, name, version) -> Census:
    repo = open_repo(repo_path)
    commit = resolve(repo, rev)
    tree = commit.tree
    kernel = all(n in tree for n in ("Kbuild", "MAINTAINERS", "tools"))
    key = f"git:{os.path.realpath(repo_path)}:{under}"
    origin = Origin(key, name or ("linux" if kernel else repo_name(repo)), version or rev, kernel)
    r = _Reading(origin, Census(key))
    if under:
        try:
            obj = tree[under]
        except KeyError:
            raise InputError(f"{repo_path}: {rev} has no {under}") from None
        if obj.type != pygit2.enums.ObjectType.TREE:
            raise InputError(f"{repo_path}: {rev}:{under} is not a directory")
        tree = repo[obj.id]
    cap = bounded.limits().max_input_bytes
    stack = [(under, tree)]
    while stack:
        prefix, t = stack.pop()
        for entry in t:
            path = f"{prefix}/{entry.name}" if prefix else entry.name
            if entry.type == pygit2.enums.ObjectType.TREE:
                stack.append((path, repo[entry.id]))
                continue
            if entry.filemode not in (pygit2.enums.FileMode.BLOB, pygit2.enums.FileMode.BLOB_EXECUTABLE):
                continue  # links, submodules
            if not path.endswith(C_SUFFIXES) and not path.endswith(".o"):
                continue
            blob = repo[entry.id]
            if blob.size > cap:
                r.census.problems.append(f"{rev}:{path}: {blob.size} bytes, over limits.max_input_bytes ({cap})")
                continue
            _read_file(path, blob.data, r)
    return _finish(r)
