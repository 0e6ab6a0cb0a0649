"""Opening repositories and resolving revisions, with errors a person can act on."""

from __future__ import annotations

import os
from pathlib import Path

import pygit2

from ..errors import InputError

def open_repo(path: str | os.PathLike) -> pygit2.Repository:
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file or directory")
    try:
        # no discovery upwards: the operator names the repository exactly
        repo = pygit2.Repository(path, pygit2.enums.RepositoryOpenFlag.NO_SEARCH)
    except (pygit2.GitError, KeyError, ValueError):
        raise InputError(f"{path}: not a git repository") from None
    return repo


def enclosing_repo(cwd: str | os.PathLike | None = None) -> str:
    """The git repository the current directory is in, found as git finds it: ``$GIT_DIR`` when
    set, else the nearest ``.git`` upwards (stopping at ``$GIT_CEILING_DIRECTORIES`` and at a
    file system boundary). A checkout's top directory, or a bare repository's own path."""
    cwd = os.fspath(cwd if cwd is not None else os.getcwd())
    found = os.environ.get("GIT_DIR")
    if found:
        found = os.path.join(cwd, found)
    else:
        found = pygit2.discover_repository(cwd, False, os.environ.get("GIT_CEILING_DIRECTORIES", ""))
    if not found:
        raise InputError(f"{cwd}: not in a git repository (give --repo PATH)")
    try:
        repo = pygit2.Repository(found, pygit2.enums.RepositoryOpenFlag.NO_SEARCH)
    except (pygit2.GitError, KeyError, ValueError):
        raise InputError(f"{found}: not a git repository (give --repo PATH)") from None
    return (repo.workdir or repo.path).rstrip("/") or "/"


def tree_path(repo: pygit2.Repository, path: str, cwd: str | os.PathLike | None = None) -> str:
    """``path`` as a path in the tree, as git reads a pathspec: in a checkout's work tree it is
    relative to the current directory, and an absolute path inside the work tree is made relative
    to its top. From the top, from outside the checkout, and for a bare repository it is taken as
    given (relative to the top). Not normalised further when it leaves the work tree."""
    top = repo.workdir
    if not top or not path:
        return path
    top = os.path.realpath(top)
    here = os.path.realpath(os.fspath(cwd if cwd is not None else os.getcwd()))
    if os.path.isabs(path):
        where = os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))
    elif _inside(here, top):
        where = os.path.join(here, path)
    else:
        return path
    where = os.path.normpath(where)
    return os.path.relpath(where, top) if _inside(where, top) else path


def _inside(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip(os.sep) + os.sep)


def objects_dir(repo: pygit2.Repository) -> Path:
    """The directory holding ``repo``'s objects. A linked worktree's git directory
    (``.git/worktrees/NAME``, pygit2's ``repo.path``) has none of its own: its ``commondir``
    file names the main git directory (relative to the worktree's), as git reads it."""
    git_dir = Path(repo.path)
    try:
        common = (git_dir / "commondir").read_text().strip()
    except (FileNotFoundError, NotADirectoryError):
        common = ""
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{git_dir / 'commondir'}: cannot read: {e}") from None
    return ((git_dir / common) if common else git_dir).resolve() / "objects"


def resolve(repo: pygit2.Repository, rev: str) -> pygit2.Commit:
    """A branch, tag, sha or ``HEAD~3`` to the commit it names."""
    where = repo.path.rstrip("/")
    if repo.is_empty:
        raise InputError(f"{where}: repository has no commits")
    if rev.startswith("-"):
        raise InputError(f"{where}: unknown revision '{rev}'")
    try:
        obj = repo.revparse_single(rev)
        commit = obj.peel(pygit2.Commit)
    except (KeyError, ValueError, pygit2.GitError, pygit2.InvalidSpecError):
        raise InputError(f"{where}: unknown revision '{rev}'") from None
    return commit


def remote_branches(repo: pygit2.Repository, url: str) -> dict[str, str]:
    """branch -> commit id of the remote at ``url`` as it says now (nothing fetched, nothing
    written to ``repo``)."""
    try:
        heads = repo.remotes.create_anonymous(url).list_heads()
    except (pygit2.GitError, KeyError, ValueError) as e:
        raise InputError(f"{url}: cannot list its branches ({' '.join(str(e).split())})") from None
    prefix = "refs/heads/"
    return {h.name[len(prefix):]: str(h.oid) for h in heads if h.name.startswith(prefix)}


def missing_branch(url: str, branch: str, branches: dict[str, str]) -> str | None:
    """What to say when the remote at ``url`` (its ``branches``, remote_branches) has no
    ``branch``, a [[trees]] table's; None when it has it."""
    if branch in branches:
        return None
    known = ", ".join(sorted(branches)[:10]) or "none"
    return f"{url} has no branch {branch!r} (fix [[trees]] branch; it has: {known})"


class TreePaths:
    """Entries of trees by path, through subtrees kept by id.

    ``tree["include/linux/btf.h"]`` makes libgit2 read and parse every tree on
    the path again (600 us under include/linux/, 2,000 entries); trees of
    neighbouring revisions share most subtrees, so each is parsed once here.
    """

    def __init__(self, repo: pygit2.Repository):
        self.repo = repo
        self._trees: dict[pygit2.Oid, pygit2.Tree] = {}

    def tree(self, oid: pygit2.Oid) -> pygit2.Tree:
        t = self._trees.get(oid)
        if t is None:
            t = self._trees[oid] = self.repo[oid]
        return t

    def entry(self, root: pygit2.Tree, path: str):
        """The object at ``path`` of ``root`` (a subtree comes loaded), or None; "" is ``root``."""
        if not path:
            return root
        node = root
        *dirs, name = path.split("/")
        for part in dirs:
            try:
                e = node[part]
            except KeyError:
                return None
            if e.type != _TREE:
                return None
            node = self.tree(e.id)
        try:
            e = node[name]
        except KeyError:
            return None
        return self.tree(e.id) if e.type == _TREE else e


_TREE = int(pygit2.enums.ObjectType.TREE)


def repo_name(repo: pygit2.Repository) -> str:
    path = repo.path.rstrip("/")
    if path.endswith("/.git"):
        path = path[:-5]
    return os.path.basename(path)


def describe(repo: pygit2.Repository, commit: str) -> str:
    """``git describe --tags`` of ``commit`` ("v7.2-3-g1234abcd5678"), or its short id when no tag
    is behind it."""
    try:
        return repo.describe(commit, describe_strategy=pygit2.enums.DescribeStrategy.TAGS,
                             show_commit_oid_as_fallback=True, abbreviated_size=12)
    except (KeyError, ValueError, pygit2.GitError):
        return commit[:12]
