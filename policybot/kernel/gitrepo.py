"""Opening repositories and resolving revisions, with errors a person can act on."""

from __future__ import annotations

import os

import pygit2

from ..errors import InputError

KFUNC_WORDS = (b"kfunc", b"KFUNC")  # the scanner's first test: a .c file holding neither is irrelevant


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


class GrepCandidates:
    """`git grep -l` of some words over one tree's .c files, running meanwhile.

    A cold scan must inflate every .c blob; git does that in threaded C, at the
    speed of the reference it is measured against, while this process walks
    the trees. A regular .c file not listed holds none of the words; symlinks
    are not read by git grep (the scanner reads those itself).
    """

    def __init__(self, git_dir: str, tree_id: str, words: tuple[bytes, ...], threads: int = 2):
        import subprocess
        self.tree_id, self.words = tree_id, words
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}  # e.g. GIT_GLOB_PATHSPECS
        # small pack windows: git maps the whole pack otherwise (peak RSS 370 MB instead of 170 MB on 6.12)
        cmd = ["git", "--no-replace-objects", "-c", "core.packedGitWindowSize=16m", "-c", "core.packedGitLimit=64m",
               "--git-dir", git_dir, "grep", "--no-color", "-l", "-z", "-F", f"--threads={threads}"]
        for word in words:
            cmd += ["-e", word.decode()]
        try:
            self.proc = subprocess.Popen(cmd + [tree_id, "--", "*.c"], stdout=subprocess.PIPE,
                                         stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, env=env)
        except OSError:  # no git: every blob is read here
            self.proc = None

    def listed(self):
        """Each path git grep lists, as it prints it (reading overlaps its run).

        Afterwards ``complete`` says whether it answered for the whole tree:
        False (no git, an error) means every blob must be read here.
        """
        self.complete = False
        if self.proc is None:
            return
        prefix, rest = (self.tree_id + ":").encode(), b""
        fd = self.proc.stdout.fileno()
        while chunk := os.read(fd, 1 << 16):
            *names, rest = (rest + chunk).split(b"\0")
            for raw in names:
                yield (raw[len(prefix):] if raw.startswith(prefix) else raw).decode("utf-8", "surrogateescape")
        self.proc.stdout.close()
        self.complete = self.proc.wait() in (0, 1) and not rest  # 1: nothing matched

    def cancel(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc is not None and self.proc.stdout:
            self.proc.stdout.close()


_prefetched: dict[tuple[str, str, tuple[bytes, ...]], GrepCandidates] = {}


def prefetch_grep(repo: pygit2.Repository, tree_id, words: tuple[bytes, ...] = KFUNC_WORDS,
                  threads: int = 2) -> None:
    """Start a GrepCandidates before a command's slow imports (by default the scanner's words).

    The scanner takes it when its cache is empty; else it is killed at exit.
    """
    import atexit
    key = (repo.path, str(tree_id), words)
    if key not in _prefetched:
        grep = _prefetched[key] = GrepCandidates(repo.path, str(tree_id), words, threads)
        atexit.register(grep.cancel)


def take_prefetched(repo: pygit2.Repository, tree_id, words: tuple[bytes, ...]) -> GrepCandidates | None:
    return _prefetched.pop((repo.path, str(tree_id), words), None)
