"""The tree's own dated promises, read from its text (issue 24).

A note is a line that says a thing will be removed, dropped or deprecated in, after, by or
until a version ("COMPAT: Will be removed in v6.23", "drop compat helper after v6.22"), or a
run-time deprecation warning (``pr_warn*("... deprecated ...")``). What it dates: the function
defined right under a top-level comment, and the names the comment writes as ``name()``.

Version names are mapped to the release that carries them: after 6.19 came 7.0, so "v6.22" is
7.2. The last minor of each major comes from the repository's tags where the next major's .0
is tagged, else from LAST_MINOR (kernel.org's release history: 3.19 then 4.0, 4.20 then 5.0,
5.19 then 6.0, 6.19 then 7.0).

Only the files that define or register kfuncs are read, and the policy's ``[ledger] paths``
(the BPF side: tools/sched_ext/, tools/lib/bpf/): the whole tree would cost a `git grep`
(18 s) per audit, for notes about everything else.
"""

from __future__ import annotations

import re
from typing import Iterable

import pygit2

from ..model.ledger import DatedNote
from .csource import decode

LAST_MINOR = {2: 6, 3: 19, 4: 20, 5: 19, 6: 19}
_VERSION = r"v(\d+)\.(\d+)\b"
# the word and the version in one sentence, either order: "Will be removed in v6.23", "drop compat
# helper after v6.22", "After v6.23 release, remove the compat handling"
_WORD = r"\b(?:remov(?:e|ed|al)|drop(?:ped)?|deprecat(?:e|ed|ion))\b"
_WHEN = r"\b(?:in|after|by|until|before)\s+" + _VERSION
_DATED = re.compile(_WORD + r"[^.\n]{0,80}?" + _WHEN + "|" + _WHEN + r"[^.\n]{0,60}?" + _WORD, re.I)
_WARNING = re.compile(r"\bpr_(?:warn|info|notice)(?:_once|_ratelimited)?\s*\([^;]{0,200}?deprecat", re.I)
_CALLED = re.compile(r"\b([A-Za-z_]\w*)\(\)")
_DEFINED = re.compile(r"\b([A-Za-z_]\w*)\s*\(")
_NOT_DEFINED = frozenset({"__attribute__", "SEC", "BPF_PROG", "__printf", "__weak"})
MAX_FILE_BYTES = 4 << 20  # a source file; a larger blob is not read for notes


def release_of(major: int, minor: int, tags: set[tuple[int, int]]) -> tuple[int, int]:
    """The release a version name means: (6, 22) is (7, 2) after 6.19."""
    for _ in range(8):  # names a few majors ahead at most
        last = max((n for m, n in tags if m == major), default=None) if (major + 1, 0) in tags else None
        last = last if last is not None else LAST_MINOR.get(major)
        if last is None or minor <= last:
            return major, minor
        major, minor = major + 1, minor - last - 1
    return major, minor


def release_distance(start: tuple[int, int], end: tuple[int, int], tags: set[tuple[int, int]]) -> int:
    """How many releases follow ``start`` up to ``end``: 6.1 to 7.2 is 21 (6.2 .. 6.19, 7.0 .. 7.2)."""
    count, major, minor = 0, *start
    while (major, minor) < end and count < 1000:
        major, minor = release_of(major, minor + 1, tags)
        count += 1
    return count


def makefile_version(makefile: bytes) -> tuple[int, ...]:
    """(VERSION, PATCHLEVEL, SUBLEVEL) of a kernel's top-level Makefile, as far as it says them."""
    parts = dict(re.findall(rb"^(VERSION|PATCHLEVEL|SUBLEVEL)\s*=\s*(\d+)\s*$", makefile[:4096], re.M))
    out: list[int] = []
    for key in (b"VERSION", b"PATCHLEVEL", b"SUBLEVEL"):
        if key not in parts:
            break
        out.append(int(parts[key]))
    return tuple(out)


def tree_release(repo: pygit2.Repository, commit: pygit2.Commit) -> tuple[int, int] | None:
    """The release a commit's tree says it is: its Makefile's VERSION.PATCHLEVEL (an -rc says
    the coming release); None without one (the calendar then asks the tags)."""
    try:
        version = makefile_version(repo[commit.tree["Makefile"].id].data)
    except KeyError:
        return None
    return (version[0], version[1]) if len(version) >= 2 else None


def _comment_block(lines: list[str], i: int) -> tuple[int, int]:
    """The lines of the comment around line ``i`` (0-based): [start, end)."""
    start = i
    while start > 0 and lines[start - 1].lstrip().startswith(("*", "/*", "//")) and "*/" not in lines[start - 1]:
        start -= 1
    end = i + 1
    while end < len(lines) and lines[end - 1].find("*/") < 0 and lines[end].lstrip().startswith(("*", "*/")):
        end += 1
    return start, end


def _symbols(lines: list[str], i: int) -> tuple[str, ...]:
    start, end = _comment_block(lines, i)
    named = [m[1] for line in lines[start:end] for m in _CALLED.finditer(line)]
    top_level = not lines[start][:1].isspace()
    if top_level:
        for line in lines[end:end + 3]:
            if not line.strip():
                continue
            if line[:1].isspace() or line.lstrip().startswith(("#", "/", "*")):
                break
            m = next((m for m in _DEFINED.finditer(line) if m[1] not in _NOT_DEFINED), None)
            if m:
                named.append(m[1])
            break
    return tuple(dict.fromkeys(named))


def notes_in(path: str, data: bytes, tags: set[tuple[int, int]]) -> list[DatedNote]:
    text = decode(data)
    if "deprecat" not in text.lower() and "remove" not in text.lower() and "drop" not in text.lower():
        return []
    lines = text.split("\n")
    out = []
    for i, line in enumerate(lines):
        m = _DATED.search(line)
        if m:
            major, minor = int(m[1] or m[3]), int(m[2] or m[4])
            rel = release_of(major, minor, tags)
            symbols = _symbols(lines, i)
            out.append(DatedNote(path, i + 1, line.strip()[:200], f"v{major}.{minor}", f"v{rel[0]}.{rel[1]}",
                                 symbols, "" if symbols else _anchor(lines, i)))
        elif _WARNING.search(line):
            out.append(DatedNote(path, i + 1, line.strip()[:200], "", "", _enclosing(lines, i)))
    return out


def _anchor(lines: list[str], i: int) -> str:
    """What a note inside a function dates: the first line of code under its comment."""
    _, end = _comment_block(lines, i)
    for line in lines[end:end + 3]:
        if line.strip():
            return line.strip()[:200]
    return ""


def _enclosing(lines: list[str], i: int) -> tuple[str, ...]:
    """The function a warning is in: the last top-level definition line above it."""
    for j in range(i, max(i - 400, -1), -1):
        line = lines[j]
        if line[:1].isalpha() or line.startswith("_"):
            m = next((m for m in _DEFINED.finditer(line) if m[1] not in _NOT_DEFINED), None)
            if m:
                return (m[1],)
    return ()


def dated_notes(repo: pygit2.Repository, tree: pygit2.Tree, files: Iterable[str], paths: Iterable[str],
                tags: set[tuple[int, int]]) -> list[DatedNote]:
    """The notes of ``files`` (the kfunc files) and of the C files under ``paths``, in path order."""
    wanted = set(files)
    for prefix in paths:
        prefix = prefix.rstrip("/")
        try:
            obj = tree[prefix]
        except KeyError:
            continue
        if obj.type == pygit2.enums.ObjectType.BLOB:
            wanted.add(prefix)
            continue
        stack = [(prefix, repo[obj.id])]
        while stack:
            base, t = stack.pop()
            for entry in t:
                p = f"{base}/{entry.name}"
                if entry.type == pygit2.enums.ObjectType.TREE:
                    stack.append((p, repo[entry.id]))
                elif p.endswith((".c", ".h")):
                    wanted.add(p)
    out = []
    for path in sorted(wanted):
        try:
            blob = repo[tree[path].id]
        except KeyError:
            continue
        if blob.type != pygit2.enums.ObjectType.BLOB or blob.size > MAX_FILE_BYTES:
            continue
        out += notes_in(path, blob.data, tags)
    return out
