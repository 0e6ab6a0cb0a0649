"""Where a line of a real kernel tree is, found by its text, independently of policybot's scanner.

The trees of the kernel_repo fixture are whatever point release of linux-source Debian serves
the day the cache is built (scripts/kernel-trees): a test that writes "kernel/bpf/helpers.c:3100"
breaks as soon as an upload moves lines, though policybot is right. A test names the line by
what is written on it instead:

    at(kernel_repo, "v6.12", "kernel/bpf/helpers.c", "BTF_ID_FLAGS(func, bpf_task_acquire,")
        -> "kernel/bpf/helpers.c:3100" (in linux-source-6.12 6.12.117-1~deb12u1)

The file is read with ``git --git-dir REPO show REV:PATH``. The text (an exact substring) must be
on exactly one line of the file, or the lookup fails naming what it looked for and where it was
found: a tree that changed must fail loudly, not match another line. A text on several lines is
picked out with ``nth``/``of`` (the nth of exactly ``of`` lines), or with an anchor that is itself
on exactly one line: ``after`` gives the first line holding the text at or after the anchor's line,
``before`` the last at or before it.

``listed`` gives, by git grep, the kfunc names a tree's set entries write: what a count of
policybot's inventory is held to, instead of the number one point release gives.
"""

from __future__ import annotations

import functools
import subprocess


class LineLookupError(AssertionError):
    """The text is on no line, or on more lines than the lookup allows (an AssertionError, so
    pytest shows the message as the test's failure)."""


@functools.lru_cache(maxsize=None)
def _lines(repo: str, rev: str, path: str) -> tuple[str, ...]:
    out = subprocess.run(["git", "--git-dir", repo, "show", f"{rev}:{path}"], capture_output=True)
    if out.returncode != 0:
        raise LineLookupError(f"git --git-dir {repo} show {rev}:{path}: {out.stderr.decode(errors='replace').strip()}")
    # lines as git and editors number them: split on "\n" only (str.splitlines would also split
    # on the form feeds and other separators that kernel sources contain)
    text = out.stdout.decode("utf-8", "replace")
    return tuple(text[:-1].split("\n") if text.endswith("\n") else text.split("\n"))


def _holding(lines, text: str) -> list[int]:
    return [i for i, ln in enumerate(lines, 1) if text in ln]


def _only(repo, rev, path, text) -> int:
    found = _holding(_lines(repo, rev, path), text)
    if len(found) != 1:
        where = "no line" if not found else f"{len(found)} lines ({', '.join(map(str, found))})"
        raise LineLookupError(f"{rev}:{path}: {text!r} is on {where}, not on exactly one")
    return found[0]


def line_of(repo: str, rev: str, path: str, text: str, *, nth: int | None = None, of: int | None = None,
            after: str | None = None, before: str | None = None) -> int:
    """The number (from 1) of the line of ``rev:path`` holding ``text`` (see the module's docstring)."""
    if (nth is None) != (of is None):
        raise ValueError("nth and of go together")
    if sum(x is not None for x in (nth, after, before)) > 1:
        raise ValueError("one of nth/of, after, before")
    lines = _lines(repo, rev, path)
    if nth is not None:
        found = _holding(lines, text)
        if len(found) != of or not 1 <= nth <= of:
            raise LineLookupError(f"{rev}:{path}: {text!r} is on {len(found)} lines "
                                  f"({', '.join(map(str, found)) or 'none'}), not {of}: no line {nth} of {of}")
        return found[nth - 1]
    if after is None and before is None:
        return _only(repo, rev, path, text)
    anchor = _only(repo, rev, path, after if after is not None else before)
    found = [i for i in _holding(lines, text) if (i >= anchor if after is not None else i <= anchor)]
    if not found:
        side = f"at or after {after!r}" if after is not None else f"at or before {before!r}"
        raise LineLookupError(f"{rev}:{path}: {text!r} is on no line {side} (line {anchor})")
    return found[0] if after is not None else found[-1]


def at(repo: str, rev: str, path: str, text: str, **where) -> str:
    """``"path:N"``, N the line of ``rev:path`` holding ``text``: how a location prints."""
    return f"{path}:{line_of(repo, rev, path, text, **where)}"


def listed(repo: str, rev: str, *pathspecs: str) -> set[str]:
    """The names of the ``BTF_ID_FLAGS(func, NAME`` entries written in ``rev``'s files under
    ``pathspecs``, read with ``git grep`` (no scanner code): a count a test can hold policybot's
    inventory to without writing down the number one point release gives."""
    out = subprocess.run(["git", "--git-dir", repo, "grep", "-h", "-o", "-E", r"BTF_ID_FLAGS\(func, *\w+", rev,
                          "--", *pathspecs], capture_output=True, text=True)
    if out.returncode not in (0, 1):  # 1: no match
        raise LineLookupError(f"git grep at {rev} -- {' '.join(pathspecs)}: {out.stderr.strip()}")
    return {m.split(",")[-1].strip() for m in out.stdout.splitlines()}
