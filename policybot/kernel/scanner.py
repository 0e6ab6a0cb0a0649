"""From a git tree to its kfunc inventory.

Reading is the cost (a 6.12 tree has ~35,000 .c blobs, ~680 MB), so:

- every directory's *summary* (which .c files below it matter) is cached by
  tree id: a subtree that did not change between two revisions is not even
  walked again;
- every file that matters has its facts cached by blob id;
- with an empty cache, ``git grep`` (git's threaded C, run while the trees
  are walked here) names the .c files holding "kfunc"/"KFUNC": only those
  are read here, every other regular .c blob is known irrelevant unread;
- otherwise a read of many new blobs is split over two processes (blob
  reads hold the GIL, threads do not help).

A file *matters* when it defines or registers kfunc sets ("P", parsed in
full) or defines ``__bpf_kfunc`` functions ("D", parsed only when a kfunc
listed elsewhere needs its definition).
"""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
import re
from dataclasses import dataclass

from typing import TYPE_CHECKING

import pygit2

from ..progress import Progress
from .semantics import FILES as SEMANTICS_FILES, Semantics, semantics_of
from .facts import FACTS_VERSION, FileFacts, entries_from_text, extract_facts
from .flags import FLAGS, LEGACY_SET_FLAGS, parse_flags
from .gitrepo import TreePaths, resolve
from .ctype import type_shape
from .grep import KFUNC_WORDS, BlobGrep, GrepCandidates, take_prefetched
from .csource import Macro, expand_macros, parse_csource
from .kbuild import BASELINE, BuildReader
if TYPE_CHECKING:
    from ..cache import Cache
from ..model.inventory import (Definition, Diagnostic, Inventory, Kfunc, Location, Membership, Param,
                    Signature, kernel_doc)

_PRIMARY = (b"BTF_SET_START", b"BTF_SET8_START", b"BTF_KFUNCS_START", b"btf_kfunc_id_set",
            b"check_kfunc_call", b"KFUNC_BTF_ID_SET")
PARALLEL_THRESHOLD = 3000  # blobs; below this a second process costs more than it saves
COLD_THRESHOLD = 500  # with an empty cache: a tree this big is read whole (by git grep), start early
BLOB_GREP_MIN = 200  # with a cache: this many new blobs are read by git grep (of them alone), fewer here
UNION_EARLY = 5000  # of several trees: git grep starts on this many new blobs while the rest is walked
TEST_PATHS = ("tools/testing/", "net/bpf/test_run.c", "lib/test_")
TREE_KEY = "tree:"
BLOB_KEY = "class:"  # a blob's class; its facts (class P) are stored under the bare oid


_KFUNC, _KFUNC_UPPER = KFUNC_WORDS


def _new_stats() -> dict[str, int]:
    """What one scan (an inventory, a read-ahead) counts: Scanner.stats, Inventory.stats."""
    return {"blobs_read": 0, "trees_walked": 0, "files_parsed": 0}


def classify(data: bytes) -> str:
    """'P' parse now, 'D' holds marked definitions, '' irrelevant."""
    # Sets are registered through a btf_kfunc_id_set or a check_kfunc_call in
    # their own file, so a file without "kfunc"/"KFUNC" holds no kfunc set
    # (BTF_SET allowlists such as bpf_lsm.c's are rightly dropped). These two
    # scans reject ~99.9% of files; a third, for "BTF_", would cost half as
    # much again as all of them (measured on 6.12).
    if _KFUNC not in data and _KFUNC_UPPER not in data:
        return ""
    if any(m in data for m in _PRIMARY):
        return "P"
    return "D" if b"__bpf_kfunc" in data else ""


def is_test_path(path: str) -> bool:
    return any(path.startswith(p) for p in TEST_PATHS)


@dataclass
class _Relevant:
    path: str
    oid: str
    cls: str


# -- worker processes ----------------------------------------------------------

_worker_repo: pygit2.Repository | None = None


def _worker_init(repo_path: str, verify: bool) -> None:
    global _worker_repo
    pygit2.settings.enable_strict_hash_verification(verify)
    _worker_repo = pygit2.Repository(repo_path)


def _classify_chunk(chunk: list[tuple[str, str]]) -> list[tuple[str, str, str, None]]:
    return [(oid, cls, facts.json_text() if facts else "", None)
            for oid, cls, facts in _classify(_worker_repo, chunk)]


def _classify(repo: pygit2.Repository, chunk) -> list[tuple[str, str, FileFacts | None]]:
    """[(path, oid)] -> [(oid, cls, facts or None)] for the blobs that matter."""
    odb = repo.odb
    out = []
    for path, oid in chunk:
        data = odb.read(oid)[1]
        cls = classify(data)
        if cls == "P":
            out.append((oid, cls, extract_facts(path, data)))
        elif cls == "D":
            out.append((oid, cls, None))
    return out


def _in_process(chunk) -> list[tuple[str, str, str, FileFacts | None]]:
    """_classify here: the facts stay objects (and their JSON is written once, for the cache)."""
    return [(oid, cls, facts.json_text() if facts else "", facts) for oid, cls, facts in chunk]


class Scanner:
    def __init__(self, repo: pygit2.Repository, cache: Cache | None = None,
                 progress: Progress | None = None, jobs: int | None = None,
                 verify_objects: bool = False):
        self.repo = repo
        self.cache = cache
        self.progress = progress or Progress(enabled=False)
        self.jobs = jobs if jobs is not None else min(2, os.cpu_count() or 1)
        self.verify_objects = verify_objects
        # libgit2 re-hashes every object it reads unless told not to; process-wide
        pygit2.settings.enable_strict_hash_verification(verify_objects)
        self._facts_mem: dict[str, FileFacts] = {}
        self.kbuild_cache: dict = {}  # Kbuild/Kconfig parses by blob id, for every revision
        self.paths = TreePaths(repo)  # lookups by path in every tree this scanner links
        # linking the next tree reuses what the last one derived from the same content (a series)
        self._build: BuildReader | None = None
        self._definitions: dict = {}  # (id(facts' def), path) -> (def, semantics, reader, Definition)
        self._members: dict = {}  # (id(facts), set name) -> what _Linker._set_members derived
        self._expanded: dict = {}  # id(facts) -> (facts, its headers' ids, diagnostics)
        self._records: dict = {}  # kfunc name -> (its parts, Kfunc): an unchanged kfunc is the same object
        self._headers: dict[tuple[str, str], tuple[bytes, dict | None]] = {}  # (oid, path) -> data, macros
        self._texts: dict[str, bytes] = {}  # blobs searched for a definition elsewhere, by oid
        self._plain_c: dict = {}  # blob id -> whether a .c blob includes no other .c file (_same_build)
        self._relevant_paths: dict[str, frozenset[str]] = {}  # tree id -> relevant_paths
        self.stats = _new_stats()

    # -- public -----------------------------------------------------------------

    def inventory(self, rev: str) -> Inventory:
        commit = resolve(self.repo, rev)
        return self.inventory_of_commit(commit, rev)

    def inventory_of_commit(self, commit: pygit2.Commit, rev: str | None = None) -> Inventory:
        return self.inventory_of_tree(commit.tree, str(commit.id), rev or str(commit.id))

    def inventory_of_tree(self, tree: pygit2.Tree, commit_id: str, rev: str) -> Inventory:
        self.stats = _new_stats()
        relevant = self._relevant_files(tree, rev)
        linker = _Linker(self, tree, relevant)
        inv = linker.link()
        inv.commit, inv.rev = commit_id, rev
        inv.stats = dict(self.stats)
        return inv

    def relevant_paths(self, tree: pygit2.Tree) -> frozenset[str]:
        """The .c files of ``tree`` the inventory reads (those its first test keeps: they say
        kfunc or KFUNC), remembered by tree for this scanner's life."""
        key = str(tree.id)
        if key not in self._relevant_paths:
            self._relevant_paths[key] = frozenset(r.path for r in self._relevant_files(tree, key))
        return self._relevant_paths[key]

    def build_reader(self, tree: pygit2.Tree) -> BuildReader:
        """The build conditions of ``tree``: the last tree's reader, memos and all, when the
        two differ only in .c files kbuild does not read."""
        last = self._build
        if last is not None and _same_build(last.tree, tree, self._plain_c):
            last.tree = tree
            return last
        self._build = BuildReader(self.repo, tree, self.kbuild_cache, self.cache, FACTS_VERSION, self.paths)
        return self._build

    def semantics_at(self, tree: pygit2.Tree) -> Semantics:
        """What ``tree``'s btf.h, verifier and bpf_types.h define (cached by their blob ids)."""
        ids = {}
        for path in SEMANTICS_FILES:
            entry = self.paths.entry(tree, path)
            if entry is not None and entry.type == _BLOB:
                ids[path] = str(entry.id)
        cache = self.cache
        if cache is None:
            return semantics_of(ids, self.read)
        return semantics_of(ids, self.read, lambda k: cache.load_facts(FACTS_VERSION, [k]).get(k),
                            lambda k, v: cache.store_facts(FACTS_VERSION, {k: v}))

    # -- reading ------------------------------------------------------------------

    def read(self, oid) -> bytes:
        self.stats["blobs_read"] += 1
        return self.repo.odb.read(oid)[1]

    def facts_for(self, files: list[tuple[str, str]]) -> list[FileFacts]:
        """Facts of many files, the cached ones in one query."""
        missing = [o for _, o in files if o not in self._facts_mem]
        if self.cache and missing:
            for oid, data in self.cache.load_facts(FACTS_VERSION, missing).items():
                if data:
                    self._facts_mem[oid] = FileFacts.from_json(json.loads(data))
        return [self.facts_of(p, o) for p, o in files]

    def facts_of(self, path: str, oid: str, *, all_defs: bool = False) -> FileFacts:
        key = oid + ("+all" if all_defs else "")
        facts = self._facts_mem.get(key) or (None if all_defs else self._facts_mem.get(oid + "+all"))
        if facts is not None:
            return facts if facts.path == path else _repath(facts, path)
        cached = self.cache.load_facts(FACTS_VERSION, [key]).get(key) if self.cache else None
        if cached:
            facts = FileFacts.from_json(json.loads(cached))
        else:
            facts = extract_facts(path, self.read(oid), all_defs=all_defs)
            self.stats["files_parsed"] += 1
            if self.cache:
                self.cache.store_facts(FACTS_VERSION, {key: facts.json_text()})
        self._facts_mem[key] = facts
        return facts if facts.path == path else _repath(facts, path)

    def read_ahead(self, trees: list[pygit2.Tree], label: str) -> None:
        """Classify the .c blobs of several trees before their inventories are taken one by one
        (a history's releases): the blobs new to the cache, of all of them, in one git grep.

        In path order each file's versions are read one after another, and git's delta-base
        cache rebuilds each from the last (v6.1..v7.3: 5.6 s against 7.6 s for a grep per
        release). Their summaries are cached, so each inventory then walks nothing. Without a
        cache there is nothing to keep; with one core, each inventory reads its own.
        """
        if self.cache is None or self.jobs < 2 or self.verify_objects or len(trees) < 2:
            return
        self.stats = _new_stats()
        reader = _Reader(self, label, self.cache.has_facts(FACTS_VERSION))
        reader.root, reader.union, reader.roots = trees[0], True, trees
        with reader, self.cache.batch():
            self._walk(trees, reader)

    def _relevant_files(self, root: pygit2.Tree, rev: str) -> list[_Relevant]:
        """(path, blob, class) of every .c file that matters, walking only uncached trees.

        Blobs are read while the walk goes on: each batch of new blobs goes to
        the reader (two processes once enough are waiting) as soon as found.
        """
        lookups = self.cache is not None and self.cache.has_facts(FACTS_VERSION)
        reader = _Reader(self, rev, lookups)
        if self.jobs < 2 or self.verify_objects:
            return self._walk([root], reader)[0]
        reader.root = root  # git grep may read this tree (started now if the CLI did)
        if not lookups:
            reader.grep = take_prefetched(root.id, KFUNC_WORDS)
        # its early guesses and their corrections, all or nothing
        with reader, self.cache.batch() if self.cache is not None else contextlib.nullcontext():
            return self._walk([root], reader)[0]

    def _walk(self, roots: list[pygit2.Tree], reader: _Reader) -> list[list[_Relevant]]:
        """_relevant_files of each root, their blobs read by one reader."""
        summaries: dict[str, list | None] = {}
        lookups = reader.lookups
        # per walked tree, its subtrees and .c blobs in tree order: (name, id, is a tree)
        entries: dict[str, list[tuple[str, str, bool]]] = {}
        level = [(root, "", str(root.id)) for root in roots]
        while level:
            cached = self.cache.load_facts(FACTS_VERSION, [TREE_KEY + k for _, _, k in level]) if lookups else {}
            nxt, blobs = [], []
            for tree, prefix, key in level:
                if key in summaries:
                    continue
                hit = cached.get(TREE_KEY + key)
                if hit is not None:
                    summaries[key] = json.loads(hit)
                    continue
                summaries[key] = None  # computed below
                self.stats["trees_walked"] += 1
                own = entries[key] = []
                for e in tree:
                    kind = e.type
                    if kind == _TREE:
                        oid = str(e.id)
                        nxt.append((e, prefix + e.name + "/", oid))
                        own.append((e.name + "/", oid, True))
                    elif kind == _BLOB and e.name.endswith(".c"):
                        oid = str(e.id)
                        blobs.append((prefix + e.name, oid))
                        own.append((e.name, oid, False))
                        if e.filemode not in _REGULAR:  # git grep reads regular files only
                            reader.not_grepped.add(prefix + e.name)
            reader.add(blobs)
            level = nxt
        results = reader.finish()
        # summaries bottom-up (post-order: the same subtree may sit at several depths)
        new_rows = {}

        def summarise(key: str) -> list:
            if summaries[key] is not None:
                return summaries[key]
            summary = []
            for name, oid, is_tree in entries[key]:
                if is_tree:
                    summary.extend([name + r[0], r[1], r[2]] for r in summarise(oid))
                elif oid in results:
                    summary.append([name, oid, results[oid]])
            summaries[key] = summary
            new_rows[TREE_KEY + key] = json.dumps(summary)
            return summary

        for root in roots:
            summarise(str(root.id))
        if self.cache and new_rows:
            self.cache.store_facts(FACTS_VERSION, new_rows)
        return [[_Relevant(p, o, c) for p, o, c in summaries[str(root.id)]] for root in roots]


CHUNK = 1000  # blobs per task: large enough to keep delta bases warm in a worker
_REGULAR = (pygit2.enums.FileMode.BLOB, pygit2.enums.FileMode.BLOB_EXECUTABLE)
_TREE, _BLOB = int(pygit2.enums.ObjectType.TREE), int(pygit2.enums.ObjectType.BLOB)


class _Reader:
    """Classifies blobs as the walk finds them: known blobs from the cache, the rest read."""

    def __init__(self, scanner: Scanner, rev: str, lookups: bool = True):
        self.s = scanner
        self.rev = rev
        self.lookups = lookups  # False: the cache is empty, every blob is new
        self.root: pygit2.Tree | None = None  # the tree git grep may read; its link is prepared meanwhile
        self.union = False  # the blobs of several trees (read_ahead): new ones in a blob grep per level
        self.roots: list[pygit2.Tree] = []  # those trees (the first is self.root)
        self.early: list[tuple[BlobGrep, dict[str, str]]] = []  # started during the walk
        self.guessed: set[str] = set()  # blobs stored as '' before git grep said which are not
        self.grep: GrepCandidates | None = None  # names the candidates: the blobs wait for it
        self.not_grepped: set[str] = set()  # paths git grep does not read (symlinks)
        self.waiting: list[tuple[str, str]] = []
        self.seen: set[str] = set()
        self.known: dict[str, str] = {}
        self.read: list[str] = []  # oids read, in order
        self.pool = None
        self.tasks: list = []
        self.out: list[tuple[str, str, str, FileFacts | None]] = []

    def __enter__(self) -> _Reader:
        return self

    def __exit__(self, kind, *_) -> None:
        """A walk that failed stops the git greps and worker processes it started."""
        if kind is None:
            return
        for grep in [self.grep] + [g for g, _ in self.early]:
            if grep is not None:
                grep.cancel()
        if self.pool is not None:
            self.pool.terminate()

    def add(self, blobs: list[tuple[str, str]]) -> None:
        # each blob once, also where one level holds it twice (the same file in several trees)
        blobs = [(p, o) for p, o in blobs if o not in self.seen and not self.seen.add(o)]
        if self.lookups and blobs:
            cached = self.s.cache.load_facts(FACTS_VERSION, [BLOB_KEY + o for _, o in blobs])
            self.known.update({k[len(BLOB_KEY):]: v for k, v in cached.items()})
            blobs = [(p, o) for p, o in blobs if o not in self.known]
        self.waiting.extend(blobs)
        if self.root is not None and (self.lookups or self.union):
            # git grep reads the new blobs alone when the walk is done (finish); of several
            # trees, a grep starts on each level's blobs as soon as the level is walked (a
            # file's versions in every tree sit at one depth: they are read together)
            if self.union and len(self.waiting) >= UNION_EARLY:
                self.early.append(self._start_blob_grep())
            return
        # a cold cache means a whole tree to read: git grep reads it at C speed, started early
        big = len(self.waiting) >= (COLD_THRESHOLD if not self.lookups else PARALLEL_THRESHOLD)
        if self.grep is None and self.root is not None and big and self.pool is None:
            self.grep = GrepCandidates(self.s.repo.path, str(self.root.id), KFUNC_WORDS, self.s.jobs)
        if self.pool is None and self.grep is None and self.s.jobs > 1 and big:
            import multiprocessing  # only a cold scan needs it
            ctx = multiprocessing.get_context("fork")
            self.pool = ctx.Pool(self.s.jobs, _worker_init, (self.s.repo.path, self.s.verify_objects))
            self.s.progress.start(f"scanning {self.rev}", 0, "files")
        if self.pool is not None:
            # small first tasks get both workers reading while the walk goes on
            size = CHUNK if len(self.tasks) >= 4 else CHUNK // 4
            while len(self.waiting) >= size:
                self._submit(self.waiting[:size])
                del self.waiting[:size]
                size = CHUNK if len(self.tasks) >= 4 else CHUNK // 4

    def _submit(self, chunk) -> None:
        self.read.extend(o for _, o in chunk)
        self.tasks.append((len(chunk), self.pool.apply_async(_classify_chunk, (chunk,))))

    def _take_grep(self) -> None:
        """The candidates git grep lists, read and parsed as it lists them; the rest is ''."""
        grep, self.grep = self.grep, None
        pending = dict(self.waiting)
        # work that would follow git grep, done while it still reads: time here is shared with
        # its two threads, time after it runs on one core alone. Every blob is stored as ''
        # now (in the scan's one transaction) and the candidates corrected at the end.
        self._guess_irrelevant(o for p, o in pending.items() if p not in self.not_grepped)
        build = self._meanwhile()
        for path in grep.listed():
            oid = pending.get(path)
            if oid is not None and path not in self.not_grepped:
                del pending[path]
                self._read_listed(path, oid, build)
        if grep.complete:  # what git grep read and did not list is '' unread
            self.read.extend(o for p, o in pending.items() if p not in self.not_grepped)
            pending = {p: o for p, o in pending.items() if p in self.not_grepped}
        self.waiting = list(pending.items())

    def _guess_irrelevant(self, oids) -> None:
        """Store these blobs as '' while git grep reads them (in the scan's one transaction);
        finish() corrects the ones it lists."""
        if self.s.cache is not None:
            guess = set(oids) - self.guessed
            self.guessed |= guess
            self.s.cache.store_facts(FACTS_VERSION, {BLOB_KEY + o: "" for o in guess})

    def _meanwhile(self) -> BuildReader:
        """What linking self.root needs, prepared while git grep reads: its build reader and
        semantics (and the semantics of every tree read ahead)."""
        build = self.s.build_reader(self.root)
        for tree in self.roots or [self.root]:
            self.s.semantics_at(tree)
        return build

    def _read_listed(self, path: str, oid: str, build: BuildReader | None) -> None:
        """A blob git grep listed: read and parsed here, the build conditions of a candidate
        prepared (unless it may be another tree's: ``build`` None)."""
        self.read.append(oid)
        found = _in_process(_classify(self.s.repo, [(path, oid)]))
        self.out.extend(found)
        if found and build is not None:
            build.guards_of(path)

    def _start_blob_grep(self) -> tuple[BlobGrep, dict[str, str]]:
        """git grep of the waiting blobs (symlinks aside), in path order: (grep, {oid: path})."""
        pending = {o: p for p, o in sorted(self.waiting) if p not in self.not_grepped}
        self.waiting = [(p, o) for p, o in self.waiting if p in self.not_grepped]
        parent = str(self.s.cache.state_dir / "scratch") if self.s.cache is not None else None
        return BlobGrep(self.s.repo.path, list(pending), KFUNC_WORDS, self.s.jobs, parent), pending

    def _take_blob_grep(self, grep: BlobGrep, pending: dict[str, str], build: BuildReader | None) -> None:
        """The blobs a blob grep reads (only they are inflated, and finish() has guessed them
        irrelevant already); the ones it lists read here."""
        for oid in grep.listed():
            path = pending.pop(oid, None)
            if path is not None:
                self._read_listed(path, oid, build)
        if grep.complete:  # what git grep read and did not list is '' unread
            self.read.extend(pending)
        else:
            self.waiting.extend((p, o) for o, p in pending.items())

    def finish(self) -> dict[str, str]:
        """oid -> class of every blob added, for the ones that matter."""
        if self.grep is not None:
            self._take_grep()
        elif self.root is not None and (self.lookups or self.union):
            greps = self.early  # started during the walk
            if len(self.waiting) >= BLOB_GREP_MIN:
                greps.append(self._start_blob_grep())
            build = None
            if greps:
                self._guess_irrelevant(o for _, pending in greps for o in pending)  # one store, in key order
                build = self._meanwhile()
            for grep, pending in greps:
                # a listed path may be another tree's: only a single tree's build is prepared
                self._take_blob_grep(grep, pending, None if self.union else build)
        try:
            if self.pool is not None:
                if self.waiting:
                    self._submit(self.waiting)
                total, done = len(self.read), 0
                self.s.progress.start(f"scanning {self.rev}", total, "files")
                for n, task in self.tasks:
                    self.out.extend(task.get())
                    done += n
                    self.s.progress.update(done)
            elif self.waiting:
                self.read.extend(o for _, o in self.waiting)
                self.s.progress.start(f"scanning {self.rev}", len(self.waiting), "files")
                for i in range(0, len(self.waiting), CHUNK):
                    self.out.extend(_in_process(_classify(self.s.repo, self.waiting[i:i + CHUNK])))
                    self.s.progress.update(min(i + CHUNK, len(self.waiting)))
        finally:
            if self.pool is not None:
                self.pool.close()
                self.pool.join()
            self.s.progress.done()
        self.s.stats["blobs_read"] += len(self.read)
        classes = {o: "" for o in self.read}
        rows = {}
        for oid, cls, facts_json, facts in self.out:
            classes[oid] = cls
            if cls == "P":
                rows[oid] = facts_json
                self.s.stats["files_parsed"] += 1
                self.s._facts_mem[oid] = facts or FileFacts.from_json(json.loads(facts_json))
        if self.s.cache:
            rows.update({BLOB_KEY + o: c for o, c in classes.items() if c or o not in self.guessed})
            self.s.cache.store_facts(FACTS_VERSION, rows)
        classes.update(self.known)
        return {o: c for o, c in classes.items() if c}


def _same_build(old: pygit2.Tree, new: pygit2.Tree, known: dict) -> bool:
    """Whether kbuild.BuildReader reads the same in both trees: every change is to a .c file
    that does not ``#include "x.c"`` (the only .c files it reads), before and after.

    Walks only the subtrees that differ, and stops at the first other change
    (two releases differ at the top: that costs one directory listing).
    """
    tree, blob = pygit2.enums.ObjectType.TREE, pygit2.enums.ObjectType.BLOB

    def plain_c(e) -> bool:  # ``known`` by blob id: a series' next tree asks of the last one's blob
        if e.type != blob or not e.name.endswith(".c"):
            return False
        if e.id not in known:
            known[e.id] = b'.c"' not in e.data
        return known[e.id]

    stack = [(old, new)]
    while stack:
        o, n = stack.pop()
        if o.id == n.id:
            continue
        before = {e.name: e for e in o}
        for e in n:
            b = before.pop(e.name, None)
            if b is not None and b.id == e.id:
                continue
            if b is not None and b.type == tree and e.type == tree:
                stack.append((b, e))
            elif not plain_c(e) or (b is not None and not plain_c(b)):
                return False
        if not all(plain_c(b) for b in before.values()):  # removed entries
            return False
    return True


def _repath(facts: FileFacts, path: str) -> FileFacts:
    """The same blob at another path (a copied or moved file)."""
    d = facts.to_json()
    d["path"] = path
    return FileFacts.from_json(d)


# -- linking ----------------------------------------------------------------------

_PROG_TYPE = re.compile(r"^BPF_PROG_TYPE_(\w+)$")
_BPF_TYPES = re.compile(r"BPF_PROG_TYPE\s*\(\s*BPF_PROG_TYPE_(\w+)\s*,\s*(\w+)\s*,")


@dataclass
class _SetRef:
    facts: FileFacts
    idset: object  # facts.IdSet


class _Linker:
    """Joins per-file facts into kfuncs: set -> struct -> registration, entry -> definition."""

    def __init__(self, scanner: Scanner, tree: pygit2.Tree, relevant: list[_Relevant]):
        self.s = scanner
        self.tree = tree
        self.relevant = relevant
        self.primary = scanner.facts_for([(r.path, r.oid) for r in relevant if r.cls == "P"])
        self.diagnostics: list[Diagnostic] = []
        self.build = scanner.build_reader(tree)
        self.build.prefetch(r.path for r in relevant)

    def diag(self, path: str, line: int, code: str, message: str) -> None:
        self.diagnostics.append(Diagnostic(Location(path, line), code, message))

    def blob_at(self, path: str) -> bytes | None:
        entry = self.s.paths.entry(self.tree, path)
        return self.s.read(entry.id) if entry is not None and entry.type == _BLOB else None

    def link(self) -> Inventory:
        semantics = self.semantics = self._semantics()
        tree_flags = semantics.flag_names
        self._expand_pending()
        sets = self._set_index()
        structs = {}  # (path, var) -> KsetStruct
        for f in self.primary:
            for st in f.structs:
                structs[(f.path, st.var)] = (f, st)
        # kfunc-set registrations: (facts, set) -> [(prog type, filter, guards)]
        registered: dict[tuple[str, str], list] = {}
        fmodret: set[tuple[str, str]] = set()
        reached_structs = set()
        dtors = []
        for f in self.primary:
            for call in f.calls:
                if call.func == "register_btf_kfunc_id_set" and len(call.args) == 2:
                    target = self._struct(structs, f, call.args[1])
                    if target is None:
                        self.diag(f.path, call.line, "struct-not-found",
                                  f"registration names {call.args[1]}, which the scanner cannot find")
                        continue
                    reached_structs.add((target[0].path, target[1].var))
                    pt = _PROG_TYPE.match(call.args[0])
                    prog = pt.group(1) if pt else call.args[0]
                    if not pt:
                        self.diag(f.path, call.line, "prog-type-variable",
                                  f"program type given as '{call.args[0]}': recorded verbatim")
                    self._register_struct(sets, target, prog, call.guards, registered)
                elif call.func == "register_btf_fmodret_id_set" and call.args:
                    target = self._struct(structs, f, call.args[0])
                    if target:
                        reached_structs.add((target[0].path, target[1].var))
                        s = target[1].fields.get("set", "").lstrip("&").strip()
                        fmodret.add(s)
                elif call.func == "register_btf_id_dtor_kfuncs":
                    pass
            for name, line in f.dtor_funcs:
                dtors.append((name, Location(f.path, line)))
        self._legacy(sets, registered)
        for (path, var), (f, st) in structs.items():
            if (path, var) not in reached_structs:
                self.diag(path, st.line, "set-unregistered",
                          f"kfunc id set {var} is never registered: its entries are not kfuncs")
        for f in self.primary:
            for idset in f.sets:
                if idset.macro == "BTF_KFUNCS" and (f.path, idset.name) not in registered \
                        and idset.name not in fmodret:
                    self.diag(f.path, idset.line, "set-unregistered",
                              f"kfunc set {idset.name} is never registered")
        kfuncs = self._kfuncs(sets, registered, tree_flags)
        self.build.save()
        return Inventory("", "", kfuncs, self.diagnostics, dtors, tree_flags, semantics=semantics,
                         build_baseline=BASELINE)

    # kfunc sets are file-scoped names in practice; a global lookup is the fallback
    def _set_index(self) -> dict:
        index = {}
        for f in self.primary:
            for idset in f.sets:
                index[(f.path, idset.name)] = (f, idset)
                index.setdefault(("", idset.name), (f, idset))
        return index

    def _struct(self, structs, f: FileFacts, arg: str):
        var = arg.lstrip("&").strip()
        hit = structs.get((f.path, var))
        if hit:
            return hit
        found = [v for (p, n), v in structs.items() if n == var]
        return found[0] if len(found) == 1 else None

    def _resolve_set(self, sets, f: FileFacts, ref: str):
        name = ref.lstrip("&").strip()
        return sets.get((f.path, name)) or sets.get(("", name))

    def _register_struct(self, sets, target, prog: str, guards, registered) -> None:
        f, st = target
        filt = st.fields.get("filter", "")
        main = st.fields.get("set") or st.fields.get("check_set")
        if not main:
            self.diag(f.path, st.line, "struct-without-set", f"{st.var} names no .set")
            return
        hit = self._resolve_set(sets, f, main)
        if hit is None:
            self.diag(f.path, st.line, "set-not-found", f"{st.var} names set {main}, not found")
            return
        extra = {}
        for field, flag in LEGACY_SET_FLAGS.items():
            if field in st.fields:
                other = self._resolve_set(sets, f, st.fields[field])
                if other:
                    extra[flag] = {e.name for e in other[1].entries}
        key = (hit[0].path, hit[1].name)
        registered.setdefault(key, []).append(
            (prog, filt, list(st.guards) + [g for g in guards if g not in st.guards], extra, hit))

    def _legacy(self, sets, registered) -> None:
        """5.13-5.17: sets reached from a verifier_ops .check_kfunc_call callback."""
        checks = {}  # function name -> [set or list names]
        ops_of_check = {}
        struct_ops_verifiers = set()
        for f in self.primary:
            for name, fd in f.defs.items():
                if fd.set_checks:
                    checks[name] = (f, fd)
            for op in f.ops:
                if op["check"]:
                    ops_of_check.setdefault(op["check"], []).append((f, op))
                if op["kind"] == "bpf_struct_ops" and op["verifier_ops"]:
                    struct_ops_verifiers.add(op["verifier_ops"])
        if not ops_of_check:
            return
        prog_of_ops = self._bpf_types()
        module_sets = {}  # list name -> [(facts, set name)]
        defined = {}
        for f in self.primary:
            for call in f.calls:
                if call.func == "DEFINE_KFUNC_BTF_ID_SET" and len(call.args) == 2:
                    defined[call.args[1]] = (f, call.args[0].lstrip("&").strip())
        for f in self.primary:
            for call in f.calls:
                if call.func == "register_kfunc_btf_id_set" and len(call.args) == 2:
                    var = call.args[1].lstrip("&").strip()
                    if var in defined:
                        module_sets.setdefault(call.args[0].lstrip("&").strip(), []).append(defined[var])
        for check, ops in ops_of_check.items():
            if check not in checks:
                f, op = ops[0]
                self.diag(f.path, op["line"], "check-not-found",
                          f"check_kfunc_call callback {check} not found")
                continue
            cf, fd = checks[check]
            progs = []
            for f, op in ops:
                if op["var"] in struct_ops_verifiers:
                    progs.append("STRUCT_OPS")
                elif op["var"] in prog_of_ops:
                    progs.extend(prog_of_ops[op["var"]])
                else:
                    progs.append(op["var"])
                    self.diag(f.path, op["line"], "prog-type-unknown",
                              f"verifier ops {op['var']} maps to no program type in bpf_types.h")
            for name in fd.set_checks:
                targets = [(cf, name)] if self._resolve_set(sets, cf, name) else module_sets.get(name, [])
                for tf, sname in targets:
                    hit = self._resolve_set(sets, tf, sname)
                    if hit is None:
                        continue
                    for prog in progs:
                        registered.setdefault((hit[0].path, hit[1].name), []).append(
                            (prog, "", list(hit[1].guards), {}, hit))

    def _bpf_types(self) -> dict[str, list[str]]:
        data = self.blob_at("include/linux/bpf_types.h")
        out: dict[str, list[str]] = {}
        if data:
            for m in _BPF_TYPES.finditer(data.decode("utf-8", "replace")):
                out.setdefault(m.group(2) + "_verifier_ops", []).append(m.group(1))
        return out

    def _semantics(self) -> Semantics:
        return self.s.semantics_at(self.tree)

    def _expand_pending(self) -> None:
        """X-macro lists inside sets whose macros live in included headers."""
        for f in self.primary:
            if not f.pending:
                continue
            # the same file with the same headers expands the same (into the same entries)
            headers = tuple(self._include_ids(f))
            hit = self.s._expanded.get(id(f))
            if hit is not None and hit[0] is f and hit[1] == headers:
                self.diagnostics.extend(hit[2])
                continue
            first_diag = len(self.diagnostics)
            self._expand_file(f, headers)
            self.s._expanded[id(f)] = (f, headers, self.diagnostics[first_diag:])

    def _include_ids(self, f: FileFacts):
        """(path, blob id) of each header ``f`` includes that the tree has."""
        for name, angle in f.includes:
            path = ("include/" + name) if angle else posixpath.normpath(
                posixpath.join(posixpath.dirname(f.path), name))
            entry = self.s.paths.entry(self.tree, path)
            if entry is not None and entry.type == _BLOB:
                yield path, entry.id

    def _expand_file(self, f: FileFacts, headers) -> None:
        """Each pending X-macro invocation of ``f``, expanded through the macros of ``headers``
        ((path, blob id) of what it includes: _include_ids)."""
        for p in f.pending:
            idset = next(s for s in f.sets if s.name == p.set_name)
            header_macros = self._header_macros(headers, re.match(r"\w+", p.text).group(0))
            local = {n: Macro(n, tuple(v[0]) if v[0] is not None else None, v[1], 0)
                     for n, v in p.local_macros.items()}

            def lookup(name, local=local, header_macros=header_macros):
                return local.get(name) or header_macros.get(name)

            if lookup(re.match(r"\w+", p.text).group(0)) is None:
                continue  # not a macro: stray text, e.g. a declaration
            entries = entries_from_text(expand_macros(p.text, lookup), p.line, p.guards,
                                        via=re.match(r"\w+", p.text).group(0))
            if not entries:
                self.diag(f.path, p.line, "macro-unexpanded",
                          f"{p.text[:60]} in set {p.set_name} expands to no entries")
            idset.entries.extend(e for e in entries
                                 if all(e.name != x.name for x in idset.entries))

    def _header_macros(self, headers, wanted: str) -> dict[str, Macro]:
        out: dict[str, Macro] = {}
        for path, oid in headers:
            key = (str(oid), path)
            if key not in self.s._headers:
                self.s._headers[key] = (self.s.read(oid), None)
            data, macros = self.s._headers[key]
            if wanted.encode() not in data:
                continue
            if macros is None:
                macros = {mname: defs[-1] for mname, defs in parse_csource(path, data).macros.items()}
                self.s._headers[key] = (data, macros)
            for mname, macro in macros.items():
                out.setdefault(mname, macro)
        return out

    # -- kfuncs -------------------------------------------------------------------

    def _kfuncs(self, sets, registered, tree_flags) -> dict[str, Kfunc]:
        members: dict[str, list[tuple[Membership, FileFacts]]] = {}
        for key, regs in registered.items():
            f, idset = regs[0][4]
            for name, m in self._set_members(f, idset, regs, tree_flags):
                members.setdefault(name, []).append((m, f))
        kfuncs = {}
        for name, ms in members.items():
            ms.sort(key=lambda x: (x[0].location.path, x[0].location.line))
            definition = self._definition(name, ms[0][1])
            if definition is None:
                self.diag(ms[0][0].location.path, ms[0][0].location.line, "no-definition",
                          f"{name}: no definition found in the tree")
            memberships = tuple(m for m, _ in ms)
            last = self.s._records.get(name)
            if last is not None and last[1] is definition and len(last[0]) == len(memberships) \
                    and all(x is y for x, y in zip(last[0], memberships)):
                kfuncs[name] = last[2]
                continue
            test = (any(is_test_path(m.location.path) for m in memberships)
                    or (definition is not None and is_test_path(definition.location.path))
                    or name.startswith("bpf_kfunc_call_test"))
            kfuncs[name] = Kfunc(name, memberships, definition, test)
            self.s._records[name] = (memberships, definition, kfuncs[name])
        return kfuncs

    def _set_members(self, f: FileFacts, idset, regs, tree_flags) -> list[tuple[str, Membership]]:
        """(kfunc, membership) of each entry of one registered set, and its diagnostics.

        The same parsed set, registrations, build reader and flag definitions as a tree
        linked before give the same records: a series' next tree relinks only what it changed.
        """
        regs_key = tuple((prog, filt, tuple(guards), tuple(sorted((fl, tuple(sorted(names)))
                                                                  for fl, names in extra.items())))
                         for prog, filt, guards, extra, _ in regs)
        memo_key = (id(f), idset.name)
        hit = self.s._members.get(memo_key)
        if hit is not None and hit[0] is f and hit[1] is self.build and hit[2] == tree_flags \
                and hit[3] == (len(idset.entries), regs_key):
            self.diagnostics.extend(hit[5])
            return hit[4]
        progs_seen = []
        for prog in (r[0] for r in regs):
            if prog not in progs_seen:
                progs_seen.append(prog)
        filters = sorted({r[1] for r in regs if r[1]})
        reg_guards = [set(r[2]) for r in regs]
        common = set.intersection(*reg_guards) if reg_guards else set()
        extra_all = {}
        for r in regs:
            for flag, names in r[3].items():
                extra_all.setdefault(flag, set()).update(names)
        out, first_diag = [], len(self.diagnostics)
        for e in idset.entries:
            flags = set(parse_flags(e.flags))
            flags |= {flag for flag, names in extra_all.items() if e.name in names}
            for fl in sorted(flags):
                if fl not in FLAGS and fl not in tree_flags:
                    self.diag(f.path, e.line, "unknown-flag",
                              f"{e.name}: flag {fl} is unknown: recorded verbatim, changes need review")
                elif fl not in FLAGS:
                    self.diag(f.path, e.line, "unknown-flag",
                              f"{e.name}: flag {fl} (defined in include/linux/btf.h) has no "
                              "known semantics: changes need review")
            guards = list(dict.fromkeys(list(common) + list(e.guards)))
            out.append((e.name, Membership(idset.name, idset.macro, Location(f.path, e.line), tuple(sorted(flags)),
                                           e.flags, tuple(progs_seen), ",".join(filters), tuple(sorted(guards)),
                                           e.via_macro, self.build.guards_of(f.path))))
        self.s._members[memo_key] = (f, self.build, tree_flags, (len(idset.entries), regs_key), out,
                                     self.diagnostics[first_diag:])
        return out

    def _definition(self, name: str, set_facts: FileFacts) -> Definition | None:
        home = None  # the facts of the file that defines it
        if name in set_facts.defs:
            home = set_facts
        elif (f := next((f for f in self.primary if name in f.defs), None)) is not None:
            home = f
        else:
            home = next((f for f in self._secondary(set_facts.path, name) if name in f.defs), None)
        if home is None:
            return None
        fd, path = home.defs[name], home.path
        # the same parsed definition, semantics and build reader as a tree linked before: the same result
        hit = self.s._definitions.get((id(fd), path))
        if hit is not None and hit[0] is fd and hit[1] is self.semantics and hit[2] is self.build:
            return hit[3]
        # the suffix this revision's verifier matches (policybot's list where the tree does not say)
        suffixes = [self.semantics.suffix_of(p.name) for p in fd.params]
        sig = Signature(fd.return_type, tuple(Param(p.type, p.name, p.suffix if sfx is None else sfx)
                                              for p, sfx in zip(fd.params, suffixes)), fd.variadic)
        scalar = tuple(sorted({shape[1] for p in fd.params if (shape := type_shape(p.type))[0] == "struct"}
                              & set(home.scalar_structs)))
        d = Definition(Location(path, fd.line), sig, fd.static, fd.marked, tuple(fd.guards),
                       kernel_doc(fd.doc, fd.doc_line), self.build.guards_of(path), scalar)
        self.s._definitions[(id(fd), path)] = (fd, self.semantics, self.build, d)
        return d

    def _secondary(self, set_path: str, name: str):
        """Files that may define a kfunc listed elsewhere, nearest first (one that cannot is skipped)."""
        seen = getattr(self, "_secondary_cache", None)
        if seen is None:
            seen = self._secondary_cache = {}
        # 1. files with __bpf_kfunc definitions
        for r in self.relevant:
            if r.cls == "D":
                f = self._cached_secondary(r.path, r.oid, seen, name)
                if f is not None:
                    yield f
        # 2. the set file's own directory, then its parent
        d = posixpath.dirname(set_path)
        for directory in dict.fromkeys([d, posixpath.dirname(d)]):
            sub = self.s.paths.entry(self.tree, directory)
            if sub is None or sub.type != _TREE:
                continue
            for e in sub:
                if e.type == _BLOB and e.name.endswith(".c"):
                    path = posixpath.join(directory, e.name)
                    f = self._cached_secondary(path, str(e.id), seen, name)
                    if f is not None:
                        yield f

    def _cached_secondary(self, path: str, oid: str, seen: dict, name: str) -> FileFacts | None:
        """The file's facts with every definition; None when its text lacks ``name`` (an ASCII name
        the parser can only have taken from the text itself): most files are never parsed."""
        if path not in seen:
            if name.isascii() and oid + "+all" not in self.s._facts_mem:
                data = self.s._texts.get(oid)
                if data is None:
                    data = self.s._texts[oid] = self.s.read(oid)
                if name.encode() not in data:
                    return None
            seen[path] = self.s.facts_of(path, oid, all_defs=True)
        return seen[path]
