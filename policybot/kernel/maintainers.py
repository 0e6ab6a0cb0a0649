"""Who to mail about a file: the kernel's MAINTAINERS, read the way
``scripts/get_maintainer.pl --nogit --nogit-fallback --norolestats -f FILE``
reads it (behaviour learned from the 6.12 script; no code taken from it).

What get_maintainer.pl does, and so what this does:

- A *section* is a run of ``X:`` type/value lines; blank and ``#`` lines do
  not end it, any other line (the subsystem name) does.
- ``F:``/``X:`` are globs matched as a prefix of the path: ``*`` is any text
  (slashes too), ``?`` one character, ``[ch]`` a class. A pattern ending in
  ``/`` matches everything below it. Otherwise the path must have exactly as
  many ``/`` as the pattern, so ``drivers/net/*`` stops at that depth, unless
  the pattern names a directory in the tree, which then matches everything
  below it.
- A matching ``X:`` drops the whole section for that path. ``N:`` is an
  unanchored (Perl ``/x``) regex on the path. ``K:`` regexes match patch or
  file *content*; a lookup by file name never uses them (since 6.12 the
  script only does with --keywords-in-file), so they are ignored here.
- Matching sections are ordered by the depth of the pattern that matched,
  deepest first: number of ``/``, plus one when the pattern does not end in
  ``/``; ``N:`` counts 0; a pattern starting with ``*`` (THE REST's ``*``
  and ``*/``) counts -1, so THE REST comes last. When a section matches by
  several lines, the *last* one in the section sets its depth.
- ``M:`` and ``R:`` people are kept in section order (maintainers and
  reviewers interleaved), then the lists. A person is dropped when their
  name or their address (case-insensitive) was already taken; a list when its
  address was. Lists marked ``subscribers-only`` are skipped; moderated lists
  are kept. ``S:`` status changes nothing here (it only steers the git
  fallback, which is off).
- ``.mailmap`` rewrites addresses; the chief penguin (Linus, THE REST's
  ``M:``) is never added.

Given a *patch* (``get_maintainer.pl --nogit --nogit-fallback PATCH``, what a
contributor runs before sending), ``for_patch`` does what the script does:

- the files are every path its ``diff --git a/X b/Y``, ``--- a/X``,
  ``+++ b/Y``, ``rename from/to`` and ``mode change`` lines name (the first
  directory of a ---/+++ path dropped, so ``/dev/null`` is ``dev/null``),
  sorted, each once, and looked up as above;
- then ``K:`` keywords (Perl ``/x`` regexes): before the first ---/+++ line
  (mail headers, commit message, diffstat) any line that is not a file line
  may match, after it only changed (``+``/``-``) lines; the sections of the
  matching ``K:`` lines are added after the files' in the script's order (the
  ``K:`` lines' indices sorted as strings, as Perl's default ``sort`` does).
- Not done: ``Fixes:`` commits' signers (the script needs a git checkout for
  them) and the addresses a ``.yaml`` binding writes in itself.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Callable

import pygit2

from ..errors import InputError

_FIELD = re.compile(r"([A-Z]):\s*(.*)")  # compiled once: MAINTAINERS has ~20,000 lines
_WILDCARD = re.compile(r"[*?\[]")
_NOT_PLAIN = re.compile(r"[.*?\[]")  # what get_maintainer.pl's directory test cannot name

IsDir = Callable[[str], bool]
# get_maintainer.pl only mails Linus with --git-chief-penguins
_CHIEF_PENGUINS = ("Linus Torvalds <torvalds@linux-foundation.org>",)


# -- addresses ---------------------------------------------------------------------

def _parse_email(text: str) -> tuple[str, str]:
    """``Name <addr>``, ``<addr>`` or ``addr ...`` to (name, address)."""
    name = address = ""
    if m := re.match(r"([^<]+)<(.+@.*)>.*$", text):
        name, address = m.groups()
    elif m := re.match(r"\s*<(.+@\S*)>.*$", text):
        address = m.group(1)
    elif m := re.match(r"(.+@\S*).*$", text):
        address = m.group(1)
    return re.sub(r'^"|"$', "", name.strip()), address.strip()


def format_email(name: str, address: str) -> str:
    """``Name <addr>``; a name with anything but ASCII letters, digits, ``_``,
    space or ``-`` is quoted, as get_maintainer.pl prints it (and RFC 5322
    wants it: ``"Paul E. McKenney" <...>``)."""
    name = re.sub(r'^"|"$', "", name.strip())
    if re.search(r"[^\w \-]", name, re.ASCII):
        name = '"' + re.sub(r'(?<!\\)"', r'\\"', name) + '"'
    address = address.strip()
    return f"{name} <{address}>" if name else address


@dataclass
class Mailmap:
    """The ``.mailmap`` lookups get_maintainer.pl makes (exact, case-sensitive keys:
    an address, or a formatted ``Name <addr>`` for the name-and-address form)."""
    names: dict[str, str] = field(default_factory=dict)
    addresses: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Mailmap:
        mm = cls()
        for line in text.split("\n"):
            line = re.sub(r"#.*$", "", line).strip()
            if m := re.match(r"([^<]+)<([^>]+)>$", line):          # Name <addr>
                name, addr = _parse_email(f"{m[1].rstrip()} <{m[2]}>")
                mm.names[addr] = name
            elif m := re.match(r"<([^>]+)>\s*<([^>]+)>$", line):   # <addr> <old>
                mm.addresses[m[2]] = m[1]
            elif m := re.match(r"(.+)<([^>]+)>\s*<([^>]+)>$", line):  # Name <addr> <old>
                name, addr = _parse_email(f"{m[1].rstrip()} <{m[2]}>")
                mm.names[m[3]], mm.addresses[m[3]] = name, addr
            elif m := re.match(r"(.+)<([^>]+)>\s*(.+)\s*<([^>]+)>$", line):  # ... Old <old>
                name, addr = _parse_email(f"{m[1].rstrip()} <{m[2]}>")
                key = format_email(*_parse_email(f"{m[3].rstrip()} <{m[4]}>"))
                mm.names[key], mm.addresses[key] = name, addr
        return mm

    def apply(self, name: str, address: str) -> tuple[str, str]:
        key = format_email(name, address)
        if key not in self.names and key not in self.addresses:
            key = address
        return self.names.get(key, name), self.addresses.get(key, address)


# -- patterns ----------------------------------------------------------------------

def _glob_regex(pattern: str) -> str:
    """F:/X: glob to a regex: ``*`` and ``?`` and ``[...]`` are special, nothing else
    (get_maintainer.pl leaves other regex characters live; MAINTAINERS has none)."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[" and (end := pattern.find("]", i + 2)) > 0:
            out.append(pattern[i:end + 1])
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


@dataclass
class _Glob:
    raw: str
    slashes: int
    # get_maintainer.pl asks "is this a directory?" of the pattern after turning
    # it into a regex, so only a plain path (no '.', '*', '?', '[') can qualify
    plain: bool
    _regex: re.Pattern | None = None
    prefix: str = ""  # the literal text before the first wildcard: other paths never match

    def __post_init__(self):
        self.prefix = _WILDCARD.split(self.raw, maxsplit=1)[0]

    @property
    def regex(self) -> re.Pattern:
        # compiled on first use: MAINTAINERS has ~8,000 patterns and a lookup needs a few
        if self._regex is None:
            self._regex = re.compile(_glob_regex(self.raw))
        return self._regex

    @property
    def depth(self) -> int:
        if self.raw.startswith("*"):
            return -1
        return self.slashes + (0 if self.raw.endswith("/") else 1)

    def matches(self, path: str, is_dir: IsDir) -> bool:
        if not path.startswith(self.prefix) or not self.regex.match(path):
            return False
        if self.raw.endswith("/"):
            return True
        if self.plain and path[len(self.raw):].startswith("/"):
            return is_dir(self.raw)          # "kernel/bpf" naming a directory
        # same depth only; a directory pattern would have needed the "/" above
        return path.count("/") == self.slashes and not (self.plain and is_dir(self.raw))


@dataclass
class Section:
    name: str                     # the subsystem line above the entries ("" if none)
    line: int
    entries: list[tuple[str, str]] = field(default_factory=list)  # (type letter, value)
    files: list[tuple[str, object]] = field(default_factory=list)  # ("F", _Glob) / ("N", regex)
    excludes: list[_Glob] = field(default_factory=list)
    keywords: list[tuple[int, str]] = field(default_factory=list)  # (index of the K: line in the script, regex)

    def depth_for(self, path: str, is_dir: IsDir) -> int | None:
        """The depth this section matches ``path`` at, or None."""
        if any(x.matches(path, is_dir) for x in self.excludes):
            return None
        depth = None
        for kind, pat in self.files:  # the last matching line wins, as in the script
            if kind == "F" and pat.matches(path, is_dir):
                depth = pat.depth
            elif kind == "N" and pat.search(path):
                depth = 0
        return depth


# -- lookup ------------------------------------------------------------------------

@dataclass
class Recipients:
    maintainers: list[str] = field(default_factory=list)
    reviewers: list[str] = field(default_factory=list)
    lists: list[str] = field(default_factory=list)
    people: list[str] = field(default_factory=list)  # M: and R: in get_maintainer.pl's order

    def all(self) -> list[str]:
        """Every address in get_maintainer.pl's output order: people, then lists."""
        return self.people + self.lists


@dataclass
class Maintainers:
    sections: list[Section]
    mailmap: Mailmap = field(default_factory=Mailmap)
    is_dir: IsDir | None = None   # the tree's "is this a directory?", for F: without '/'
    # section indices by the first directory of their F: prefixes (built on the first lookup)
    _by_top: dict[str, set[int]] | None = field(default=None, repr=False)
    _anywhere: set[int] = field(default_factory=set, repr=False)

    def subsystem_of(self, path: str, is_dir: IsDir | None = None) -> str:
        """The name of the deepest section that covers ``path`` ("" when none does)."""
        is_dir = is_dir or self.is_dir or (lambda _p: False)
        path = _canonical(path, is_dir)
        hits = [(d, i) for i in self._candidates(path) if (d := self.sections[i].depth_for(path, is_dir)) is not None]
        return self.sections[min(hits, key=lambda h: (-h[0], h[1]))[1]].name if hits else ""

    def for_files(self, paths: list[str], is_dir: IsDir | None = None) -> Recipients:
        return self._recipients(self._file_sections(paths, is_dir))

    def for_patch(self, text: str, is_dir: IsDir | None = None) -> Recipients:
        """What ``get_maintainer.pl --nogit --nogit-fallback`` gives for a patch file's ``text``
        (the module's docstring: its files, then its keywords)."""
        return self.for_patches([text], is_dir=is_dir)

    def for_patches(self, texts: list[str], paths: list[str] = (), is_dir: IsDir | None = None) -> Recipients:
        """What the script gives for several patch files and ``paths`` in one run: every file
        they name, sorted, then the sections whose keywords any of their lines match."""
        files, lines = list(paths), []
        for text in texts:
            named, intro, changed = patch_lines(text)
            files += named
            lines += intro + changed
        order = self._file_sections(sorted(set(files)), is_dir)
        # a keyword is first looked for in all the lines at once (a line's match is a match there,
        # ^ and $ at each line), and only then line by line: a 5 MB patch costs 66 searches, not 7 million
        joined = "\n".join(lines)
        hits = []
        for i, section in enumerate(self.sections):
            for tvi, pattern in section.keywords:
                regex = _keyword_regex(pattern)
                if regex is not None and _keyword_regex(pattern, re.MULTILINE).search(joined) and \
                        any(regex.search(ln) for ln in lines):
                    hits.append((str(tvi), i))
        return self._recipients(order + [i for _, i in sorted(hits)])

    def _file_sections(self, paths: list[str], is_dir: IsDir | None) -> list[int]:
        """The sections each path matches, deepest first, path after path (repeats kept)."""
        is_dir = is_dir or self.is_dir or (lambda _p: False)
        order: list[int] = []
        for path in paths:
            path = _canonical(path, is_dir)
            hits = [(d, i) for i in self._candidates(path)
                    if (d := self.sections[i].depth_for(path, is_dir)) is not None]
            # deepest first; the script leaves ties in Perl hash order (random per
            # run), here they keep MAINTAINERS order
            order += [i for _depth, i in sorted(hits, key=lambda h: (-h[0], h[1]))]
        return order

    def _recipients(self, order: list[int]) -> Recipients:
        people: list[tuple[str, str, str]] = []   # (M/R/L, name, address)
        lists: list[tuple[str, str, str]] = []
        names: set[str] = set()
        addresses: set[str] = set()
        list_addresses: set[str] = set()
        for i in order:
            for kind, value in self.sections[i].entries:
                if kind == "L":
                    address, extra = (value.split(None, 1) + ["", ""])[:2]
                    if "<" in value:  # "L: Team <addr>": the script would take "Team"
                        address = _parse_email(value)[1] or address
                    if (not address or "subscribers-only" in extra
                            or address.lower() in list_addresses):
                        continue
                    list_addresses.add(address.lower())
                    lists.append(("L", "", address))
                elif kind in "MR":
                    name, address = _parse_email(value)
                    if not address or name.lower() in names or address.lower() in addresses:
                        continue
                    if name:
                        names.add(name.lower())
                    addresses.add(address.lower())
                    people.append((kind, name, address))
        return self._finish(people, lists)

    def _candidates(self, path: str) -> list[int]:
        """The sections that may match ``path``, in MAINTAINERS order: those with an F: pattern
        whose literal prefix starts with the path's first directory, and those that cannot be
        told by it (N: regexes, prefixes without a '/', THE REST's '*')."""
        if self._by_top is None:
            by_top: dict[str, set[int]] = {}
            anywhere: set[int] = set()
            for i, section in enumerate(self.sections):
                for kind, pat in section.files:
                    if kind == "F" and "/" in pat.prefix:
                        by_top.setdefault(pat.prefix.split("/", 1)[0], set()).add(i)
                    else:
                        anywhere.add(i)
            self._by_top, self._anywhere = by_top, anywhere
        return sorted(self._by_top.get(path.split("/", 1)[0], set()) | self._anywhere)

    def _finish(self, people, lists) -> Recipients:
        # After .mailmap two entries may turn out to be one person: the later one
        # takes the earlier one's spelling and then drops out as a duplicate.
        by_name: dict[str, tuple[str, str]] = {}
        by_address: dict[str, tuple[str, str]] = {}
        out, seen = Recipients(), set()
        for kind, name, address in people + lists:
            name, address = self.mailmap.apply(name, address)
            if name and name.lower() in by_name:
                name, address = by_name[name.lower()]
            elif address.lower() in by_address:
                name, address = by_address[address.lower()]
            else:
                by_name[name.lower()] = by_address[address.lower()] = (name, address)
            text = format_email(*self.mailmap.apply(name, address))
            if text in seen or (kind != "L" and any(c in text for c in _CHIEF_PENGUINS)):
                continue
            seen.add(text)
            {"M": out.maintainers, "R": out.reviewers, "L": out.lists}[kind].append(text)
            if kind != "L":
                out.people.append(text)
        return out


_PATCH_FILE = (re.compile(r"^ mode change [0-7]+ => [0-7]+ (\S+)\s*$"), re.compile(r"^rename (?:from|to) (\S+)\s*$"),
               re.compile(r"^diff --git a/(\S+) b/(\S+)\s*$"))
_FIXES = re.compile(r"^Fixes:\s+[0-9a-fA-F]{6,40}")
_OLD_NEW = re.compile(r"^(?:\+\+\+|---)\s+(\S+)")
_RANGE = re.compile(r"^@@ -\d+,\d+")


def patch_lines(text: str) -> tuple[list[str], list[str], list[str]]:
    """A patch file read as get_maintainer.pl reads it: the files it names (sorted, once each),
    the lines before its first ---/+++ line that keywords may match (all but file lines), and
    the changed lines after it."""
    files: list[str] = []
    intro: list[str] = []
    changed: list[str] = []
    in_patch = False
    for line in text.split("\n"):
        if m := next((m for r in _PATCH_FILE if (m := r.match(line))), None):
            files += [g for g in m.groups()]
        elif _FIXES.match(line):
            continue  # the script asks git for the signers of the commit it fixes; not here
        elif m := _OLD_NEW.match(line):
            files.append(re.sub(r"^[^/]*/", "", m.group(1)))
            in_patch = True
        elif _RANGE.match(line):
            continue
        elif not in_patch:
            intro.append(line)
        elif line[:1] in "+-" and line:
            changed.append(line[1:])
    return sorted(set(files)), intro, changed


@functools.lru_cache(maxsize=None)
def _keyword_regex(pattern: str, flags: int = 0) -> re.Pattern | None:
    """A K: value as Python reads a Perl /x regex; None when Python cannot read it. Perl's
    ``(?i)`` inside a pattern runs to its end: a scoped group here."""
    if pattern.startswith("(?i)"):
        pattern = f"(?i:{pattern[4:]})"
    try:
        return re.compile(pattern, re.VERBOSE | flags)
    except re.error:
        return None


def _canonical(path: str, is_dir: IsDir) -> str:
    path = re.sub(r"/+", "/", path)
    while path.startswith("./"):
        path = path[2:]
    path = path.replace("/./", "/")
    if not path.endswith("/") and is_dir(path):
        path += "/"   # a directory is asked about as "dir/", like the script does
    return path


# -- reading -----------------------------------------------------------------------

def parse_maintainers(text: str, path: str = "MAINTAINERS", mailmap: str = "") -> Maintainers:
    """MAINTAINERS text (and optionally ``.mailmap`` text) to a lookup table.

    Tolerant like get_maintainer.pl: unknown letters and stray lines are kept
    or ignored; only a regex that cannot compile is an error."""
    sections: list[Section] = []
    header, header_line, current = "", 0, None
    tvi = 0  # the index get_maintainer.pl gives the line (its @typevalue): it orders keyword matches
    for lineno, line in enumerate(text.split("\n"), 1):
        m = _FIELD.match(line)
        if not m:
            if line.strip() and not line.lstrip().startswith("#"):
                header, header_line, current = line.strip(), lineno, None
                tvi += 1
            continue
        kind, value = m.groups()
        tvi += 1
        if current is None:
            current = Section(header, header_line or lineno)
            sections.append(current)
        current.entries.append((kind, value))
        if kind == "K":
            current.keywords.append((tvi - 1, value))
        try:
            if kind in "FX":
                glob = _Glob(value, value.count("/"), not _NOT_PLAIN.search(value))
                if kind == "F":
                    current.files.append(("F", glob))
                else:
                    current.excludes.append(glob)
            elif kind == "N" and value.strip():
                current.files.append(("N", re.compile(value, re.VERBOSE)))
        except re.error as e:
            raise InputError(f"{path}:{lineno}: bad {kind}: pattern '{value}': {e}") from None
    return Maintainers(sections, Mailmap.parse(mailmap))


def load_maintainers(repo: pygit2.Repository, tree: pygit2.Tree) -> Maintainers:
    """MAINTAINERS and .mailmap of a git tree, with directories looked up in it."""
    def text(name: str) -> str | None:
        try:
            obj = tree[name]
        except KeyError:
            return None
        return repo[obj.id].data.decode("utf-8", errors="replace")

    maintainers_text = text("MAINTAINERS")
    if maintainers_text is None:
        raise InputError(f"{tree.id}: no MAINTAINERS file in this tree")
    result = parse_maintainers(maintainers_text, "MAINTAINERS", text(".mailmap") or "")
    dirs: dict[str, bool] = {}

    def is_dir(path: str) -> bool:
        path = path.rstrip("/")
        if path not in dirs:
            try:
                dirs[path] = bool(path) and tree[path].type == pygit2.enums.ObjectType.TREE
            except KeyError:
                dirs[path] = False
        return dirs[path]

    result.is_dir = is_dir
    return result


def maintainers_at(repo: pygit2.Repository, tree: pygit2.Tree) -> Maintainers | None:
    """The tree's MAINTAINERS, or None when it has none (a fixture, a subsystem tree)."""
    try:
        tree["MAINTAINERS"]
    except KeyError:
        return None
    return load_maintainers(repo, tree)
