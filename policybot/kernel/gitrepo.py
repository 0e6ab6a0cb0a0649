"""Opening repositories and resolving revisions, with errors a person can act on."""

from __future__ import annotations

import os

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


def repo_name(repo: pygit2.Repository) -> str:
    path = repo.path.rstrip("/")
    if path.endswith("/.git"):
        path = path[:-5]
    return os.path.basename(path)
