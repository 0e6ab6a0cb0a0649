"""git grep as a reader: git's threaded C names a tree's candidate files while Python walks it.

Light on purpose (no pygit2): ``policybot inventory`` starts it before its other
imports. Results are keyed by tree id and words: a tree id names its content,
so a grep of that tree in any repository answers for every repository.
"""

from __future__ import annotations

import os
import subprocess

KFUNC_WORDS = (b"kfunc", b"KFUNC")  # the scanner's first test: a .c file holding neither is irrelevant


class GrepCandidates:
    """`git grep -l` of some words over one tree's .c files, running meanwhile.

    A cold scan must inflate every .c blob; git does that in threaded C, at the
    speed of the reference it is measured against, while this process walks
    the trees. A regular .c file not listed holds none of the words; symlinks
    are not read by git grep (the scanner reads those itself).
    """

    def __init__(self, git_dir: str, tree_id: str, words: tuple[bytes, ...], threads: int = 2,
                 env_extra: dict[str, str] | None = None, pathspecs: tuple[str, ...] = ("*.c",),
                 whole_words: bool = False):
        self.tree_id, self.words = tree_id, words
        env = {**_git_env(), **(env_extra or {})}
        # small pack windows: git maps the whole pack otherwise (peak RSS 370 MB instead of 170 MB on 6.12)
        cmd = ["git", "--no-replace-objects", "-c", "core.packedGitWindowSize=16m", "-c", "core.packedGitLimit=64m",
               "--git-dir", git_dir, "grep", "--no-color", "-l", "-z", "-F", f"--threads={threads}"]
        if whole_words:
            cmd.append("-w")
        for word in words:
            cmd += ["-e", word.decode()]
        try:
            self.proc = subprocess.Popen(cmd + [tree_id, "--", *pathspecs], stdout=subprocess.PIPE,
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


class BlobGrep(GrepCandidates):
    """`git grep -l` over some blobs only (those new to the cache: a tree shares most of its
    blobs with the last release scanned): git inflates just those, in threaded C.

    They are listed in a tree of their own, written as one loose object to a scratch object
    directory that git reads beside the repository's (through GIT_ALTERNATE_OBJECT_DIRECTORIES):
    the repository itself is never written to. Entries are named by their rank in
    ``blob_ids``, which git reads in that order: in path order, a pack's blobs are read
    nearly in sequence (in id order, git remaps its pack windows all the time: twice the
    system time). ``listed()`` yields blob ids. The scratch directory goes when the grep ends.
    """

    def __init__(self, git_dir: str, blob_ids: list[str], words: tuple[bytes, ...], threads: int = 2,
                 scratch_parent: str | None = None):
        import shutil

        from .. import scratch
        self.blob_ids = blob_ids
        self.scratch = str(scratch.make("grep", scratch_parent))
        try:
            tree_id = _write_tree(self.scratch, blob_ids)
        except BaseException:
            shutil.rmtree(self.scratch, ignore_errors=True)
            raise
        super().__init__(git_dir, tree_id, words, threads, {"GIT_ALTERNATE_OBJECT_DIRECTORIES": self.scratch})

    def listed(self):
        try:
            for name in super().listed():
                yield self.blob_ids[int(name.removesuffix(".c"))]
        finally:
            self._remove()

    def cancel(self) -> None:
        super().cancel()
        self._remove()

    def _remove(self) -> None:
        import shutil
        shutil.rmtree(self.scratch, ignore_errors=True)


def _write_tree(objects_dir: str, blob_ids: list[str]) -> str:
    """A loose SHA-1 tree object in ``objects_dir`` naming the i-th blob ``<i>.c`` (mode 100644, i
    zero-padded: equal-length names sort as git orders a tree's entries): its id."""
    import hashlib
    import zlib
    body = b"".join(b"100644 %08d.c\0%s" % (i, bytes.fromhex(h)) for i, h in enumerate(blob_ids))
    obj = b"tree %d\0" % len(body) + body
    tree_id = hashlib.sha1(obj).hexdigest()
    os.makedirs(os.path.join(objects_dir, tree_id[:2]))
    with open(os.path.join(objects_dir, tree_id[:2], tree_id[2:]), "wb") as f:
        f.write(zlib.compress(obj, 1))
    return tree_id


_prefetched: dict[tuple[str, tuple[bytes, ...]], GrepCandidates] = {}


def _git_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}  # e.g. GIT_GLOB_PATHSPECS


def prefetch_grep(repo_path: str, rev: str, words: tuple[bytes, ...] = KFUNC_WORDS, threads: int = 2) -> None:
    """Start a GrepCandidates on ``rev``'s tree before a command's slow imports (by default the
    scanner's words). The scanner takes it when its cache is empty; else it is killed at exit.
    Anything git cannot resolve starts nothing: the scanner reports it in its own words."""
    import atexit
    if rev.startswith("-"):
        return  # not a revision but an option to git (git before 2.43 echoes --end-of-options back)
    try:
        out = subprocess.run(["git", "-C", repo_path, "rev-parse", "--absolute-git-dir", rev + "^{tree}"],
                             capture_output=True, text=True, env=_git_env(),
                             stdin=subprocess.DEVNULL, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return
    lines = out.stdout.splitlines()
    if out.returncode != 0 or len(lines) != 2:
        return
    git_dir, tree_id = lines
    key = (tree_id, words)
    if key not in _prefetched:
        grep = _prefetched[key] = GrepCandidates(git_dir, tree_id, words, threads)
        atexit.register(grep.cancel)


def take_prefetched(tree_id, words: tuple[bytes, ...]) -> GrepCandidates | None:
    """The grep prefetched for this tree, if any. The first cold tree a command scans is the one
    it prefetched for: any other grep was a wrong guess, stopped now (not at exit) to free its cores."""
    found = _prefetched.pop((str(tree_id), words), None)
    while _prefetched:
        _prefetched.popitem()[1].cancel()
    return found


IN_TREE_USERS = ("kernel/", "tools/", "samples/")  # where a kfunc's in-tree callers and special cases live


def files_naming(git_dir: str, tree_id: str, names: list[str],
                 pathspecs: tuple[str, ...] = ("*.c",)) -> dict[str, list[str]]:
    """name -> the files of the tree ``tree_id`` under ``pathspecs`` that hold it as a whole word
    (git grep -lw), sorted: where a function of that name may be defined (.c files), or the
    in-tree users of a kfunc (IN_TREE_USERS). Nothing for a name when git cannot run."""
    out = {}
    for name in names:
        g = GrepCandidates(git_dir, tree_id, (name.encode(),), pathspecs=pathspecs, whole_words=True)
        out[name] = sorted(g.listed())
    return out
