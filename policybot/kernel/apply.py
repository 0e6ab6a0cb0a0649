"""Apply mailed patches to a git tree in memory: no work tree, the real repository untouched.

libgit2 applies to an index, which lives in ``$GIT_DIR/index``; so patches are
applied in a scratch bare repository that borrows the real repository's
objects through ``objects/info/alternates``. New blobs land in the scratch
repository only, and a scanner over it sees both.
"""

from __future__ import annotations

import posixpath
import re
import shutil
import tempfile
from pathlib import Path

import pygit2



class PatchDoesNotApply(Exception):
    """The reason is for people: it goes into the output and the review mail."""


_PATH_HEADER = re.compile(r"^(?:diff --git a/(\S+) b/(\S+)|--- (?:a/)?(\S+)|\+\+\+ (?:b/)?(\S+))", re.M)


def unsafe_paths(diff_text: str) -> list[str]:
    """Paths a patch names that would leave the tree (``../``, absolute paths)."""
    bad = []
    for m in _PATH_HEADER.finditer(diff_text):
        for p in m.groups():
            if not p or p == "/dev/null":
                continue
            norm = posixpath.normpath(p)
            if p.startswith("/") or norm.startswith("..") or "/../" in f"/{p}/":
                bad.append(p)
    return sorted(set(bad))


class ScratchRepo:
    """A bare repository borrowing ``repo``'s objects; removed on close."""

    def __init__(self, repo: pygit2.Repository, parent_dir: str | Path | None = None):
        self.origin = repo
        if parent_dir:
            Path(parent_dir).mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix="policybot-apply-", dir=parent_dir))
        self.repo = pygit2.init_repository(str(self.path), bare=True)
        objects = Path(repo.path) / "objects"
        (self.path / "objects" / "info" / "alternates").write_text(str(objects.resolve()) + "\n")
        self.repo = pygit2.Repository(str(self.path))  # reopen: alternates are read at open

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self) -> "ScratchRepo":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def apply(self, tree: pygit2.Tree, diff_text: str) -> pygit2.Tree:
        """``tree`` with the patch applied, or ``PatchDoesNotApply``."""
        if not diff_text.strip():
            raise PatchDoesNotApply("the message carries no diff")
        bad = unsafe_paths(diff_text)
        if bad:
            raise PatchDoesNotApply(f"the patch names paths outside the tree: {', '.join(bad)}")
        try:
            diff = pygit2.Diff.parse_diff(diff_text)
        except (pygit2.GitError, ValueError) as e:
            raise PatchDoesNotApply(f"the diff cannot be parsed: {e}") from None
        for delta in diff.deltas:
            # libgit2 lets a "new file" patch overwrite an existing file: refuse it ourselves
            if delta.status == pygit2.enums.DeltaStatus.ADDED:
                try:
                    tree[delta.new_file.path]
                except KeyError:
                    continue
                raise PatchDoesNotApply(f"{delta.new_file.path}: the patch creates a file that already exists")
        index = self.repo.index
        index.read_tree(tree)
        try:
            self.repo.apply(diff, pygit2.enums.ApplyLocation.INDEX)
        except pygit2.GitError as e:
            raise PatchDoesNotApply(str(e).strip() or "a hunk does not match") from None
        return self.repo[index.write_tree()]
