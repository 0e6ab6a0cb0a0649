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

    def __init__(self, git_dir: str, tree_id: str, words: tuple[bytes, ...], threads: int = 2):
        self.tree_id, self.words = tree_id, words
        env = _git_env()
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
