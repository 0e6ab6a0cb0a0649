"""The maintainers use case: who MAINTAINERS at a revision assigns to some files, or to the files
a patch touches."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..errors import InputError, PolicybotError

if TYPE_CHECKING:
    import pygit2

    from .context import Context


def maintainers(ctx: Context, rev: str, files: list[str]) -> list[str]:
    """The maintainers, reviewers and lists of ``files``, in get_maintainer.pl's order. Each is a
    path in the tree, or a patch file (a .patch, ``git format-patch`` output, an mbox) read as
    the script reads one: the paths it touches and the K: keywords it matches. A path that no
    revision has (not at ``rev``, nor at any branch or tag) and that is no patch is refused."""
    from ..kernel.gitrepo import open_repo, resolve, tree_path
    from ..kernel.maintainers import maintainers_at
    repo = open_repo(ctx.repo_path)
    tree = resolve(repo, rev).tree
    maint = maintainers_at(repo, tree)
    if maint is None:
        raise PolicybotError(f"{ctx.repo_path}: no MAINTAINERS file at {rev}")
    paths: list[str] = []
    patches: list[str] = []
    for arg in files:
        path = tree_path(repo, arg)
        if _in_tree(tree, path):
            paths.append(path)
        elif os.path.isfile(arg) and (text := _patch_text(arg)) is not None:
            patches.append(text)
        elif _in_some_revision(repo, path):
            paths.append(path)
        else:
            raise InputError(f"{arg}: no such path in {ctx.repo_path} (at {rev} nor at any branch or tag), "
                             "and not a patch")
    return (maint.for_patches(patches, paths) if patches else maint.for_files(paths)).all()


def _patch_text(path: str) -> str | None:
    """The file's text when it is a patch (it names a file as a diff does), else None."""
    from .. import bounded
    from ..kernel.maintainers import patch_lines
    text = bounded.read_input(path).decode("utf-8", "surrogateescape")
    return text if patch_lines(text)[0] else None


def _in_tree(tree: pygit2.Tree, path: str) -> bool:
    p = os.path.normpath(path) if path else ""
    if p in ("", ".") or os.path.isabs(p) or p.startswith("../"):
        return False
    try:
        tree[p]
    except KeyError:
        return False
    return True


def _in_some_revision(repo: pygit2.Repository, path: str) -> bool:
    """Whether a branch or tag of ``repo`` has ``path`` (a file since deleted, one not yet merged)."""
    import pygit2
    for name in repo.references:
        if not name.startswith(("refs/heads/", "refs/tags/", "refs/remotes/")):
            continue
        try:
            commit = repo.references[name].peel(pygit2.Commit)
        except (pygit2.GitError, ValueError, KeyError):
            continue
        if _in_tree(commit.tree, path):
            return True
    return False
