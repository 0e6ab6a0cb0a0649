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

Other readings of the real trees that use no policybot code: ``independent_count`` (with
``source_tree``) follows kfunc registration in the sources itself, and ``jit_returns_by_grep``
reads what each JIT's ``bpf_jit_supports_kfunc_call()`` returns. ``KERNEL_CACHE`` is where
scripts/kernel-trees and scripts/kernel-binaries keep the trees and kernels they fetch;
``REAL_TREE_FIXTURES`` names the fixtures that reach it, which only a test marked realtree may use
(``unmarked_real_tree_use``, enforced by conftest.py).
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
from pathlib import Path

import pygit2


def _kernel_cache() -> str:
    return os.environ.get("POLICYBOT_KERNEL_CACHE") or str(Path.home() / ".cache" / "policybot-kernels")


KERNEL_CACHE = _kernel_cache()  # read on import, before conftest's autouse fixture moves HOME

# conftest's session fixtures that run scripts/kernel-trees or scripts/kernel-binaries (which fetch,
# build or read KERNEL_CACHE), and those built on them. Only a test marked realtree may use one.
REAL_TREE_FIXTURES = frozenset({"kernel_repo", "binaries", "real_inventories", "extracted", "schedulers",
                                "sched_ext_7_3"})


def unmarked_real_tree_use(item) -> str | None:
    """Why the collected test ``item`` may not run, or None: it needs a fixture of REAL_TREE_FIXTURES
    (itself, or through another fixture at any depth) and no realtree mark applies to it (on the
    function, its class or its module). conftest's pytest_runtest_setup fails such a test before any
    fixture is set up, so a unit run (``-m "not realtree"``) never fetches or builds the kernel cache."""
    used = sorted(REAL_TREE_FIXTURES.intersection(getattr(item, "fixturenames", ())))
    if not used or item.get_closest_marker("realtree") is not None:
        return None
    return (f"{item.nodeid} uses {', '.join(used)} (the real kernel trees, {KERNEL_CACHE}) but is not marked "
            "realtree: mark the test where it is defined (@pytest.mark.realtree), so that a unit run "
            "(-m \"not realtree\") neither selects it nor fetches the kernel cache")


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


# -- independent derivation of the kfunc list -----------------------------------------
#
# How the count is derived (no scanner code involved):
#  1. Read every .c file of the tree that mentions "btf_kfunc_id_set" (from the
#     extracted Debian tree when it exists and matches the tag, else from the
#     git blobs of the tag). Comments and string literals are blanked.
#  2. Each "struct btf_kfunc_id_set VAR = { ... .set = &SET ... }" maps VAR to SET.
#  3. A SET is a kfunc set if some VAR naming it is passed to
#     register_btf_kfunc_id_set(<prog type>, &VAR) in the same file. Sets passed
#     only to register_btf_fmodret_id_set(&VAR) are fmod_ret allowlists, not kfuncs
#     (net/mptcp/bpf.c, net/bpf/test_run.c's bpf_test_modify_return_ids), and
#     BTF_SET_START allowlists (LSM hooks, d_path, verifier deny lists) are never
#     passed to either, so they drop out.
#  4. The body between BTF_SET8_START/BTF_KFUNCS_START(SET) and the matching _END
#     is split into logical lines (backslash continuations joined). Preprocessor
#     lines are skipped (so the "#define XDP_METADATA_KFUNC(_, __, name, ___)
#     BTF_ID_FLAGS(func, name, ...)" body in net/core/xdp.c is not an entry), every
#     "BTF_ID_FLAGS(func, NAME" on the other lines is an entry, and a line that is
#     a lone identifier is an X-macro list: its #define is looked up in the
#     file's <...> includes under include/ and each call of a function-like macro
#     #defined inside the set body is expanded by position (that gives the three
#     bpf_xdp_metadata_* kfuncs from include/net/xdp.h's XDP_METADATA_KFUNC_xxx).
#  5. A kfunc is a test kfunc when a set listing it, or its definition, lives in
#     tools/testing/ or net/bpf/test_run.c (the definition is looked up with a
#     regex in those test files).
#  6. "files" = distinct files holding a kfunc set that lists at least one kfunc.
#
# Results (also checked by a plain grep/awk pass, see tests/test_realtree_inventory.py's
# test_kfuncs_md_count_is_naive):
#   v6.1 : 68 kfuncs, 43 without test kfuncs, 11 files
#   v6.12: 260 kfuncs, 201 without test kfuncs, 27 files
# kfuncs.md's "258 (199)" for 6.12 is what a line-based grep gives: it takes the
# macro parameter "name" of the #define at net/core/xdp.c:828 for a kfunc and
# misses the three bpf_xdp_metadata_* kfuncs the X-macro expands to:
# 260 - 3 + 1 = 258, and 201 - 3 + 1 = 199.

TEST_FILE_PREFIXES = ("tools/testing/", "net/bpf/test_run.c")
_COMMENT_OR_STRING = re.compile(r'/\*.*?\*/|//[^\n]*|"(?:\\.|[^"\\\n])*"', re.S)


def _strip(text: str) -> str:
    return _COMMENT_OR_STRING.sub(lambda m: " " if m.group(0)[0] == "/" else '""', text)


def _logical_lines(text: str) -> list[str]:
    out, buf = [], ""
    for ln in text.split("\n"):
        if ln.endswith("\\"):
            buf += ln[:-1] + " "
            continue
        out.append(buf + ln)
        buf = ""
    return out


class _DirTree:
    def __init__(self, root: Path):
        self.root = root

    def c_files(self, needle: bytes):
        for d, dirs, files in os.walk(self.root):
            dirs[:] = [x for x in dirs if x != ".git"]
            for f in files:
                if f.endswith(".c"):
                    p = Path(d) / f
                    data = p.read_bytes()
                    if needle in data:
                        yield str(p.relative_to(self.root)), data.decode("utf-8", "replace")

    def read(self, path: str) -> str | None:
        p = self.root / path
        return p.read_text("utf-8", "replace") if p.is_file() else None


class _GitTree:
    def __init__(self, repo: pygit2.Repository, rev: str):
        self.repo = repo
        self.tree = repo.revparse_single(rev).peel(pygit2.Commit).tree

    def c_files(self, needle: bytes):
        stack = [(self.tree, "")]
        while stack:
            tree, prefix = stack.pop()
            for e in tree:
                if e.type == pygit2.enums.ObjectType.TREE:
                    stack.append((self.repo[e.id], prefix + e.name + "/"))
                elif e.name.endswith(".c"):
                    data = self.repo.odb.read(e.id)[1]
                    if needle in data:
                        yield prefix + e.name, data.decode("utf-8", "replace")

    def read(self, path: str) -> str | None:
        try:
            entry = self.tree[path]
        except KeyError:
            return None
        return self.repo[entry.id].data.decode("utf-8", "replace")


def source_tree(kernel_repo: str, rev: str):
    """The extracted tree next to the repository if it holds the same release, else git."""
    repo = pygit2.Repository(kernel_repo)
    git = _GitTree(repo, rev)
    extracted = Path(kernel_repo).parent / "src" / f"linux-source-{rev[1:]}"
    if extracted.is_dir():
        d = _DirTree(extracted)
        if all(d.read(p) == git.read(p) for p in ("Makefile", "kernel/bpf/btf.c", "net/core/xdp.c")):
            return d
    return git


def _is_test_file(path: str) -> bool:
    return path.startswith(TEST_FILE_PREFIXES)


def independent_count(tree) -> dict[str, dict]:
    """kfunc name -> {"sets": files of the kfunc sets listing it, "test": bool}
    (see the comment above)."""
    files = dict(tree.c_files(b"btf_kfunc_id_set"))
    kfuncs: dict[str, set[str]] = {}
    for path, text in files.items():
        code = _strip(text)
        structs = {}
        for m in re.finditer(r"struct\s+btf_kfunc_id_set\s+(\w+)\s*=\s*\{([^}]*)\}", code):
            s = re.search(r"\.set\s*=\s*&\s*(\w+)", m.group(2))
            if s:
                structs[m.group(1)] = s.group(1)
        registered = {structs[v] for v in re.findall(
            r"register_btf_kfunc_id_set\s*\(\s*\w+\s*,\s*&\s*(\w+)\s*\)", code) if v in structs}
        for set_name in registered:
            m = re.search(r"BTF_(?:SET8|KFUNCS)_START\(\s*%s\s*\)(.*?)BTF_(?:SET8|KFUNCS)_END\(\s*%s\s*\)"
                          % (set_name, set_name), code, re.S)
            assert m, (path, set_name)
            inner_macros: dict[str, tuple[list[str], str]] = {}
            names = []
            for ln in _logical_lines(m.group(1)):
                st = ln.strip()
                dm = re.match(r"#\s*define\s+(\w+)\(([^)]*)\)\s*(.*)", st)
                if dm:
                    inner_macros[dm.group(1)] = ([p.strip() for p in dm.group(2).split(",")], dm.group(3))
                    continue
                if st.startswith("#"):
                    continue
                names += re.findall(r"BTF_ID_FLAGS\s*\(\s*func\s*,\s*(\w+)", st)
                lone = re.fullmatch(r"(\w+)", st)
                if lone and lone.group(1) != "BTF_ID_UNUSED":
                    body = None
                    for inc in re.findall(r"#\s*include\s*<([^>]+)>", text):
                        htext = tree.read("include/" + inc)
                        for hl in _logical_lines(_strip(htext or "")):
                            hm = re.match(r"\s*#\s*define\s+%s\s+(.*)" % lone.group(1), hl)
                            if hm:
                                body = hm.group(1)
                    assert body, (path, st)
                    for macro, (params, rep) in inner_macros.items():
                        for call in re.finditer(r"\b%s\s*\(([^()]*)\)" % macro, body):
                            args = dict(zip(params, (a.strip() for a in call.group(1).split(","))))
                            expanded = re.sub(r"\b\w+\b", lambda t: args.get(t.group(0), t.group(0)), rep)
                            names += re.findall(r"BTF_ID_FLAGS\s*\(\s*func\s*,\s*(\w+)", expanded)
            for n in names:
                kfuncs.setdefault(n, set()).add(path)
    # definitions in test files make a kfunc listed elsewhere a test kfunc (step 5)
    test_code = [_strip(t) for p, t in files.items() if _is_test_file(p)]
    out = {}
    for name, paths in kfuncs.items():
        test = any(_is_test_file(p) for p in paths) or any(
            re.search(r"(?m)^\w[^;{}()]*\b%s\s*\([^;{}]*\)\s*\{" % name, code) for code in test_code)
        out[name] = {"sets": paths, "test": test}
    return out


# -- the JITs that can call kfuncs ----------------------------------------------------------------


def _git(repo, *args):
    return subprocess.run(["git", "-C", repo, *args], capture_output=True, text=True, check=True).stdout


def jit_returns_by_grep(kernel_repo: str, tag: str) -> dict[str, set[str]]:
    """arch -> what its JITs' bpf_jit_supports_kfunc_call() return (never "false"), read with git grep."""
    files = _git(kernel_repo, "grep", "-l", "bpf_jit_supports_kfunc_call", tag, "--", "arch/*/net/*.c").split()
    arches: dict[str, set[str]] = {}
    for f in files:  # "tag:arch/<arch>/net/<file>.c"
        m = re.search(r"bool bpf_jit_supports_kfunc_call\(void\)\s*\{\s*return\s+([^;]+);\s*\}",
                      _git(kernel_repo, "show", f))
        assert m, f  # a one-statement body in every JIT of these trees
        if m.group(1) != "false":
            arches.setdefault(f.split("/")[1], set()).add(m.group(1))
    return arches


def debian_packages(where, *packages: str, suite: str = "sid") -> dict:
    """{package name: .deb}: ``packages`` downloaded into ``where`` in the run by scripts/debian-apt
    (apt's own cache under KERNEL_CACHE), each named by what dpkg-deb reads in it."""
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    subprocess.run([str(root / "scripts" / "debian-apt"), str(KERNEL_CACHE), suite, "--", "download", *packages],
                   cwd=where, check=True, capture_output=True)
    found = {}
    for deb in Path(where).glob("*.deb"):
        name = subprocess.run(["dpkg-deb", "-f", str(deb), "Package"], capture_output=True, text=True,
                              check=True).stdout.strip()
        found[name] = deb
    assert set(found) == set(packages), found
    return found


def patch_mail(repo: str, rev: str, edits: dict[str, tuple[str, str]], subject: str,
               author: str = "Jane Developer <jane@example.com>", msgid: str = "real-1@example.com") -> str:
    """A ``git format-patch``-shaped mail changing ``rev``'s files: ``edits`` maps a path to
    (the text of the one line to change, its replacement lines); the diff is made with difflib
    from ``git show`` (no policybot code)."""
    import difflib
    diff, stat = "", ""
    for path, (line, new) in edits.items():
        old = list(_lines(repo, rev, path))
        i = _only(repo, rev, path, line) - 1
        head = old[:i] + new.split("\n") + old[i + 1:]
        body = "".join(f"{ln}\n" for ln in difflib.unified_diff(old, head, f"a/{path}", f"b/{path}", n=3,
                                                                  lineterm=""))
        diff += f"diff --git a/{path} b/{path}\nindex 1111111..2222222 100644\n{body}"
        stat += f" {path} | 1 +\n"
    return (f"From 0123456789abcdef0123456789abcdef01234567 Mon Sep 17 00:00:00 2001\nFrom: {author}\n"
            f"Date: Sun, 2 Mar 2025 10:00:00 +0000\nSubject: [PATCH bpf-next] {subject}\nMessage-Id: <{msgid}>\n"
            f"To: bpf@vger.kernel.org\n\nThe change.\n\nSigned-off-by: {author}\n---\n{stat}\n{diff}-- \n2.39.5\n")


# -- scripts/get_maintainer.pl of a real tree ---------------------------------------------

TIE_SORT = "\tforeach my $line (sort {$hash{$b} <=> $hash{$a}} keys %hash) {"
TIE_SORT_STABLE = "\tforeach my $line (sort {$hash{$b} <=> $hash{$a} || $a <=> $b} keys %hash) {"


def maintainers_checkout(repo, tree, root: Path, files) -> None:
    """What scripts/get_maintainer.pl of ``tree`` (a pygit2 tree of ``repo``) reads, written under
    ``root``: MAINTAINERS, .mailmap, the script, ``files``, and every directory (it tests F:
    patterns with -d, so directories must exist for it to see them). Beside the script,
    get_maintainer_stable.pl breaks ties of equally deep sections by MAINTAINERS order, as
    policybot does (the script leaves them in Perl hash order, which changes from run to run)."""
    def walk(t, prefix):
        for e in t:
            if e.type_str == "tree":
                os.makedirs(root / prefix / e.name, exist_ok=True)
                walk(repo[e.id], f"{prefix}{e.name}/")
    walk(tree, "")
    for path in ["MAINTAINERS", ".mailmap", "scripts/get_maintainer.pl", *files]:
        (root / path).write_bytes(repo[tree[path].id].data)
    script = (root / "scripts/get_maintainer.pl").read_text(encoding="utf-8")
    assert script.count(TIE_SORT) == 1, "get_maintainer.pl changed: revisit the tie-order patch"
    (root / "scripts/get_maintainer_stable.pl").write_text(
        script.replace(TIE_SORT, TIE_SORT_STABLE), encoding="utf-8")


def get_maintainer(root: Path, *args: str, stable: bool = True) -> list[str]:
    """The lines scripts/get_maintainer.pl (its tie-stable copy unless ``stable`` is False) prints
    for ``args`` in a maintainers_checkout at ``root``."""
    script = "get_maintainer_stable.pl" if stable else "get_maintainer.pl"
    return subprocess.run(["perl", f"scripts/{script}", *args], cwd=root, capture_output=True, check=True,
                          encoding="utf-8").stdout.splitlines()
