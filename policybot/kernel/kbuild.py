"""The Kconfig conditions under which kbuild compiles a file at all.

A file's ``#if`` guards say only what is inside it. Whether it is built is
said elsewhere:

- ``obj-$(CONFIG_X) += f.o`` (or ``lib-``) in its directory's Kbuild file
  (``Kbuild`` if the directory has one, else ``Makefile``: kbuild's rule);
- ``comp-$(CONFIG_Y) += f.o`` / ``comp-y`` / ``comp-objs``: f.o is part of the
  composite object comp.o, itself placed by another line;
- ``ifeq ($(CONFIG_Z),y)`` ... ``endif`` around any of those lines;
- ``obj-$(CONFIG_D) += dir/`` in each parent that descends into the
  directory, up to the top-level ``Kbuild`` (``arch/$(SRCARCH)/`` matches
  ``arch/<name>/`` under that architecture's own option);
- a file no Kbuild file names is compiled by being ``#include``d from a
  sibling or parent ``.c`` file (``kernel/sched/build_policy.c`` includes
  ``ext.c`` under ``#ifdef CONFIG_SCHED_CLASS_EXT``): the ``#if`` guards of
  that ``#include`` line, plus the including file's own conditions.

A file placed by several lines (the ``=m`` and ``=y`` branches of
netfilter's ``ifeq``) needs only the conditions common to all of them.
Options every kernel that can call a kfunc has (``BASELINE``) are left out.
Kconfig files of the directories involved say which options are tristate.

Kbuild files and Kconfig files are few and small; their parses are cached
by blob id (``cache``, shared across trees by the scanner), so a second
revision re-reads only the ones that changed.
"""

from __future__ import annotations

import json
import posixpath
import re
from dataclasses import dataclass

import pygit2

from .csource import normalise_condition, parse_csource
from .gitrepo import TreePaths
from ..model.inventory import BuildGuard, Location

# A BPF program can call a kfunc only on a kernel with BTF, the bpf() syscall
# and a JIT (the interpreter cannot call kfuncs): these hold everywhere a
# kfunc exists, so they are summarised once instead of repeated on each kfunc.
BASELINE = ("CONFIG_BPF", "CONFIG_BPF_SYSCALL", "CONFIG_BPF_JIT", "CONFIG_DEBUG_INFO_BTF",
            "CONFIG_DEBUG_INFO_BTF_MODULES")
KBUILD_FILES = ("Kbuild", "Makefile")
# the option each arch/<name>/ is built under, where it is not CONFIG_<NAME>
ARCH_OPTIONS = {"powerpc": "CONFIG_PPC", "sh": "CONFIG_SUPERH", "um": "CONFIG_UML"}
_ROOT_DESCENT = ("core", "drivers", "libs", "net", "virt", "init")  # pre-Kbuild top-level Makefiles

# a variable name may hold $(...) references, with spaces and one level of nesting inside
_ASSIGN = re.compile(r"^((?:[^\s=:+?#$]|\$\((?:[^()]|\([^()]*\))*\)|\$\{[^}]*\})+)\s*(\+=|::=|:=|\?=|=)\s*(.*)$",
                     re.S)
_VAR = re.compile(r"^(.*?)-(y|m|objs|\$.*)$")
_CONFIG_REF = re.compile(r"\$[({](CONFIG_\w+)[)}]")
_CONFIG_NAME = re.compile(r"\bCONFIG_\w+")
_CONDITIONAL = re.compile(r"^(ifeq|ifneq|ifdef|ifndef)\b\s*(.*)$", re.S)
_KCONFIG_ENTRY = re.compile(r"^\s*(?:menu)?config\s+(\w+)", re.M)
_KCONFIG_TYPE = re.compile(r"^\s*(bool|tristate|def_bool|def_tristate|int|hex|string)\b", re.M)
_OBJECT_TOKEN = re.compile(r"(?<!\S)\S+(?:\.o|/)(?!\S)")
_RULE = re.compile(r"^[^=#\t]*[^:=+?]:(?![=])")  # "target: prerequisites"
_INCLUDE_C = re.compile(r'^[ \t]*#[ \t]*include[ \t]*"([^"]+\.c)"', re.M)


# -- Kbuild files -------------------------------------------------------------------

@dataclass(frozen=True)
class Placement:
    """One line of a Kbuild file: ``base-suffix op tokens`` and the conditions it sits under."""
    line: int
    base: str  # "obj", "lib", or a composite object's name
    conditions: tuple[str, ...]  # the suffix's and the enclosing ifeq/ifdef's
    suffix_conditions: int  # how many of ``conditions`` come from the suffix (they come first)
    tokens: tuple[str, ...]


def negate(cond: str) -> str:
    """The opposite of one condition: CONFIG_X <-> !CONFIG_X, CONFIG_X=m <-> CONFIG_X!=m."""
    if cond.startswith("!") and "(" not in cond:
        return cond[1:]
    if re.fullmatch(r"CONFIG_\w+", cond):
        return "!" + cond
    m = re.fullmatch(r"(CONFIG_\w+)(!?=)([ym])", cond)
    if m:
        return f"{m.group(1)}{'=' if m.group(2) == '!=' else '!='}{m.group(3)}"
    return f"!({cond})"


def _negate_all(conds: list[str]) -> list[str]:
    if not conds:
        return []  # a branch on something that is not a Kconfig option: nothing known
    return [negate(conds[0])] if len(conds) == 1 else [f"!({' && '.join(conds)})"]


def _split_args(text: str) -> tuple[str, str] | None:
    """``(a,b)`` or ``"a" "b"`` of an ifeq/ifneq."""
    text = text.strip()
    if text.startswith("("):
        depth = 0
        for i, c in enumerate(text):
            if c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
                if depth == 0:
                    text = text[1:i]
                    break
        depth = 0
        for i, c in enumerate(text):
            if c in "({":
                depth += 1
            elif c in ")}":
                depth -= 1
            elif c == "," and depth == 0:
                return text[:i].strip(), text[i + 1:].strip()
        return None
    m = re.match(r"""(["'])(.*?)\1\s+(["'])(.*?)\3""", text)
    return (m.group(2), m.group(4)) if m else None


def _comparison(args: str, equal: bool) -> list[str]:
    """The Kconfig conditions an ``ifeq``/``ifneq`` tests ([] when it tests none)."""
    pair = _split_args(args)
    if pair is None:
        return [normalise_condition(args)] if "CONFIG_" in args else []
    a, b = pair
    if not _CONFIG_REF.search(a) and _CONFIG_REF.search(b):
        a, b = b, a
    refs = _CONFIG_REF.findall(a)
    if not refs or _CONFIG_REF.sub("", a).strip() or "$" in b:
        word = "ifeq" if equal else "ifneq"
        return [f"{word} ({a},{b})"] if "CONFIG_" in a + b else []
    if b == "":
        if equal:
            return ["!" + r for r in refs]
        return [refs[0]] if len(refs) == 1 else [" || ".join(refs)]
    if len(b) == len(refs) and set(b) <= set("ymn"):
        atoms = [("!" + r) if v == "n" else f"{r}={v}" for r, v in zip(refs, b)]
        return atoms if equal else _negate_all(atoms)
    return [f"{'ifeq' if equal else 'ifneq'} ({a},{b})"]


def _logical_lines(text: str):
    """(first line number, text) with continuations joined and comments dropped."""
    buf, start, recipe = "", 0, False
    for i, raw in enumerate(text.split("\n"), 1):
        if not buf:
            start = i
            if raw.startswith("\t") and recipe:
                continue  # a rule's command (a tab-indented assignment inside ifeq is not)
            if raw.strip() and not raw.startswith("\t"):
                recipe = bool(_RULE.match(raw))
        line = raw
        hash_at = line.find("#")
        while hash_at > 0 and line[hash_at - 1] == "\\":
            hash_at = line.find("#", hash_at + 1)
        if hash_at >= 0:
            line = line[:hash_at]
        if line.endswith("\\") and hash_at < 0:
            buf += line[:-1] + " "
            continue
        yield start, (buf + line).strip()
        buf = ""
    if buf:
        yield start, buf.strip()


def parse_kbuild(text: str) -> list[Placement]:
    """Every assignment of a Kbuild file to an ``x-y``/``x-$(CONFIG_..)``/``x-objs`` variable."""
    out: list[Placement] = []
    stack: list[tuple[list[list[str]], list[str]]] = []  # (conditions of earlier branches, current)
    for line, text in _logical_lines(text):
        if not text:
            continue
        cm = _CONDITIONAL.match(text)
        if cm:
            stack.append(([], []))
            word, rest = cm.group(1), cm.group(2).strip()
            cond = _conditional(word, rest)
            stack[-1] = ([cond], cond)
            continue
        if text == "endif" or text.startswith("endif "):
            if stack:
                stack.pop()
            continue
        if text == "else" or text.startswith("else ") or text.startswith("else\t"):
            if not stack:
                continue
            prior, _ = stack[-1]
            negated = [c for p in prior for c in _negate_all(p)]
            rest = text[4:].strip()
            cm = _CONDITIONAL.match(rest)
            if cm:
                cond = _conditional(cm.group(1), cm.group(2).strip())
                stack[-1] = (prior + [cond], negated + cond)
            else:
                stack[-1] = (prior, negated)
            continue
        if ".o" not in text and "/" not in text:
            continue  # names no object or directory (flags, targets, ...): most lines
        am = _ASSIGN.match(text)
        if not am:
            continue
        vm = _VAR.match(am.group(1))
        if not vm or not vm.group(1):
            continue
        suffix = vm.group(2)
        own = list(dict.fromkeys(_CONFIG_REF.findall(suffix) or _CONFIG_NAME.findall(suffix))) \
            if suffix.startswith("$") else []
        if suffix.startswith("$") and not own:
            continue  # obj-$(SOMETHING) that is not a Kconfig option: not followed
        enclosing = [c for _, current in stack for c in current]
        conds = tuple(dict.fromkeys(own + enclosing))
        tokens = tuple(_OBJECT_TOKEN.findall(am.group(3)))
        if tokens:
            out.append(Placement(line, vm.group(1), conds, len(own), tokens))
    return out


def _conditional(word: str, rest: str) -> list[str]:
    if word in ("ifdef", "ifndef"):
        name = rest.split()[0] if rest.split() else ""
        if not name.startswith("CONFIG_"):
            return []
        return [name] if word == "ifdef" else ["!" + name]
    return _comparison(rest, word == "ifeq")


def parse_kconfig_types(text: str) -> dict[str, str]:
    """CONFIG_X -> "tristate", "bool", ... from one Kconfig file."""
    out: dict[str, str] = {}
    entries = list(_KCONFIG_ENTRY.finditer(text))
    for i, m in enumerate(entries):
        end = entries[i + 1].start() if i + 1 < len(entries) else len(text)
        t = _KCONFIG_TYPE.search(text, m.end(), end)
        if t:
            kind = {"def_bool": "bool", "def_tristate": "tristate"}.get(t.group(1), t.group(1))
            out["CONFIG_" + m.group(1)] = kind
    return out


# -- one tree -----------------------------------------------------------------------

Conj = list[tuple[str, Location, str]]  # (condition, where it is written, what writes it)


def _reduce(alternatives: list[Conj]) -> Conj:
    """The conditions common to every alternative (the first alternative's locations)."""
    common = set.intersection(*({c for c, _, _ in alt} for alt in alternatives))
    seen, out = set(), []
    for c, loc, what in alternatives[0]:
        if c in common and c not in seen:
            seen.add(c)
            out.append((c, loc, what))
    return out


# Parses kept in the cache by blob id; bump the number when a parse above changes.
PARSE_KINDS = {
    "kbuild1": (lambda data: parse_kbuild(data.decode("utf-8", "replace")),
                lambda ps: [[p.line, p.base, list(p.conditions), p.suffix_conditions, list(p.tokens)]
                            for p in ps],
                lambda rows: [Placement(r[0], r[1], tuple(r[2]), r[3], tuple(r[4])) for r in rows]),
    "kconfig1": (lambda data: parse_kconfig_types(data.decode("utf-8", "replace")), dict, dict),
    "incl1": (lambda data: _c_includes_of(data), list, lambda rows: [tuple(r) for r in rows]),
}


def _c_includes_of(data: bytes) -> list[tuple[str, int]]:
    """("x.c", line) of each ``#include "x.c"`` of a file."""
    if b'.c"' not in data:
        return []
    text = data.decode("utf-8", "replace")
    return [(m.group(1), text.count("\n", 0, m.start()) + 1) for m in _INCLUDE_C.finditer(text)]


class BuildReader:
    """The build conditions of files of one tree. ``cache`` (a dict) may be shared across
    trees; with a ``store`` (policybot/cache.py), parses also persist there by blob id (``prefetch``, ``save``)."""

    def __init__(self, repo: pygit2.Repository, tree: pygit2.Tree, cache: dict | None = None,
                 store=None, version: int = 0, paths: TreePaths | None = None):
        self.repo = repo
        self.tree = tree
        self.paths = paths or TreePaths(repo)
        self.cache = cache if cache is not None else {}
        self.store = store
        self.version = version  # the cache version the rows are stored under
        self._new: dict[str, str] = {}
        self._files: dict[str, Conj | None] = {}
        self._dirs: dict[str, Conj | None] = {}
        self._kconfig: dict[str, dict[str, str]] = {}
        self._guards: dict[str, tuple[BuildGuard, ...]] = {}
        self._prefetched: set[str] = set()  # directories prefetch() has looked at

    # -- reading, cached by blob id --------------------------------------------------

    def _entry(self, path: str):
        return self.paths.entry(self.tree, path)

    def _parsed(self, kind: str, oid) -> object:
        key = f"{kind}:{oid}"
        if key not in self.cache:
            parse, encode, _ = PARSE_KINDS[kind]
            self.cache[key] = parse(self.repo.odb.read(oid)[1])
            if self.store is not None:
                self._new[key] = json.dumps(encode(self.cache[key]))
        return self.cache[key]

    def _load(self, keys) -> None:
        missing = [k for k in dict.fromkeys(keys) if k not in self.cache]
        if self.store is None or not missing:
            return
        for key, data in self.store.load_facts(self.version, missing).items():
            self.cache[key] = PARSE_KINDS[key.split(":", 1)[0]][2](json.loads(data))

    def prefetch(self, paths) -> None:
        """One cache query for the Kbuild and Kconfig files of the directories above ``paths``."""
        if self.store is None:
            return
        keys = []
        for directory in dict.fromkeys(d for p in paths for d in _ancestors(posixpath.dirname(p))):
            if directory in self._prefetched:
                continue  # a reader kept for the next tree of a series has these already
            self._prefetched.add(directory)
            d = self._entry(directory)
            if d is None or d.type != pygit2.enums.ObjectType.TREE:
                continue
            for e in d:
                if e.type == pygit2.enums.ObjectType.BLOB and e.name in KBUILD_FILES:
                    keys.append(f"kbuild1:{e.id}")
                elif e.type == pygit2.enums.ObjectType.BLOB and e.name.startswith("Kconfig"):
                    keys.append(f"kconfig1:{e.id}")
        self._load(keys)

    def save(self) -> None:
        """Store the parses made since the last save."""
        if self.store is not None and self._new:
            self.store.store_facts(self.version, self._new)
            self._new = {}

    def _kbuild(self, directory: str) -> list[tuple[str, list[Placement]]]:
        """(path, placements) of the directory's Kbuild file, else its Makefile; at the top
        level both (before 5.x the top-level Makefile's core-y named the directories)."""
        out = []
        for name in KBUILD_FILES:
            path = posixpath.join(directory, name) if directory else name
            e = self._entry(path)
            if e is None or e.type != pygit2.enums.ObjectType.BLOB:
                continue
            out.append((path, self._parsed("kbuild1", e.id)))
            if directory:
                break  # kbuild reads a directory's Kbuild and ignores its Makefile
        return out

    def _c_includes(self, directory: str) -> list[tuple[str, str, list[tuple[str, int]]]]:
        """(path, oid, [("x.c", line)]) of the directory's .c files that #include a .c file."""
        d = self._entry(directory)
        if d is None or d.type != pygit2.enums.ObjectType.TREE:
            return []
        files = [e for e in d
                 if e.type == pygit2.enums.ObjectType.BLOB and e.name.endswith(".c")]
        self._load(f"incl1:{e.id}" for e in files)
        out = []
        for e in files:
            found = self._parsed("incl1", e.id)
            if found:
                out.append((posixpath.join(directory, e.name) if directory else e.name, str(e.id), found))
        return out

    def _guards_at(self, path: str, oid: str, line: int) -> list[str]:
        key = "cguards:" + oid  # an including file: one or two per tree, not worth storing
        if key not in self.cache:
            self.cache[key] = parse_csource(path, self.repo.odb.read(oid)[1]).guards_by_line
        return list(self.cache[key][line])

    def kconfig_types(self, directory: str) -> dict[str, str]:
        """Option types from the Kconfig* files of a directory."""
        if directory not in self._kconfig:
            types: dict[str, str] = {}
            d = self._entry(directory)
            if d is not None and d.type == pygit2.enums.ObjectType.TREE:
                for e in d:
                    if e.type != pygit2.enums.ObjectType.BLOB or not e.name.startswith("Kconfig"):
                        continue
                    for opt, kind in self._parsed("kconfig1", e.id).items():
                        if types.get(opt) != "tristate":
                            types[opt] = kind
            self._kconfig[directory] = types
        return self._kconfig[directory]

    # -- conditions -------------------------------------------------------------------

    def _placed(self, directory: str, name: str, seen: frozenset) -> list[Conj]:
        """Alternatives under which the Kbuild files of ``directory`` and its parents build
        ``name`` (an object such as "f.o" relative to ``directory``)."""
        alternatives: list[Conj] = []
        here, rel = directory, name
        while True:
            for path, placements in self._kbuild(here):
                found = self._placed_in(here, path, placements, rel, seen)
                alternatives.extend(found)
            if alternatives or not here:
                return alternatives
            rel = posixpath.basename(here) + "/" + rel
            here = posixpath.dirname(here)

    def _placed_in(self, here: str, path: str, placements: list[Placement], rel: str,
                   seen: frozenset) -> list[Conj]:
        out: list[Conj] = []
        key = (here, rel)
        if key in seen:
            return out
        seen = seen | {key}
        for p in placements:
            if rel not in p.tokens:
                continue
            loc = Location(path, p.line)
            own: Conj = [(c, loc, "object" if i < p.suffix_conditions and p.base in ("obj", "lib")
                          else "composite" if i < p.suffix_conditions else "ifeq")
                         for i, c in enumerate(p.conditions)]
            if p.base in ("obj", "lib"):
                above = self._directory(here)
                if above is None:
                    continue
                out.append(own + above)
            else:  # part of the composite object p.base.o, placed by another line
                for alt in self._placed_in(here, path, placements, p.base + ".o", seen):
                    out.append(own + alt)
        return out

    def _directory(self, directory: str) -> Conj | None:
        """What it takes for kbuild to descend into ``directory`` (None: nothing does)."""
        if directory in self._dirs:
            return self._dirs[directory]
        self._dirs[directory] = None  # cycles
        result: Conj | None = [] if directory == "" else None
        here, rel = posixpath.dirname(directory), posixpath.basename(directory) + "/"
        while directory:
            alternatives: list[Conj] = []
            for path, placements in self._kbuild(here):
                for p in placements:
                    bases = ("obj", "lib") + (_ROOT_DESCENT if here == "" else ())
                    if p.base not in bases:
                        continue
                    arch = re.fullmatch(r"arch/([^/]+)/", rel)
                    if rel in p.tokens:
                        extra: Conj = []
                    elif arch and "arch/$(SRCARCH)/" in p.tokens:
                        extra = [(arch_option(arch.group(1)), Location(path, p.line), "directory")]
                    else:
                        continue
                    above = self._directory(here)
                    if above is None:
                        continue
                    loc = Location(path, p.line)
                    alternatives.append([(c, loc, "directory" if i < p.suffix_conditions else "ifeq")
                                         for i, c in enumerate(p.conditions)] + extra + above)
                if alternatives:
                    break
            if alternatives:
                result = _reduce(alternatives)
                break
            if not here:
                break
            rel = posixpath.basename(here) + "/" + rel
            here = posixpath.dirname(here)
        self._dirs[directory] = result
        return result

    def _file(self, path: str, seen: frozenset = frozenset()) -> Conj | None:
        if path in self._files:
            return self._files[path]
        if path in seen:
            return None
        seen = seen | {path}
        directory, base = posixpath.split(path)
        alternatives = self._placed(directory, base[:-2] + ".o", frozenset())
        if not alternatives:
            # not an object of its own: compiled where a sibling or parent file #includes it
            parent_dir = posixpath.dirname(directory)
            for d in dict.fromkeys([directory, parent_dir] if directory else [directory]):
                if self._directory(d) is None:
                    continue  # nothing there is built (tools/, samples/ without the option ...)
                for ppath, oid, includes in self._c_includes(d):
                    for name, line in includes:
                        if posixpath.normpath(posixpath.join(d, name)) != path or ppath == path:
                            continue
                        above = self._file(ppath, seen)
                        if above is None:
                            continue
                        loc = Location(ppath, line)
                        alternatives.append([(g, loc, "include") for g in self._guards_at(ppath, oid, line)]
                                            + above)
                if alternatives:
                    break  # the parent directory is read only when the file's own has no includer
        result = _reduce(alternatives) if alternatives else None
        self._files[path] = result
        return result

    def guards_of(self, path: str) -> tuple[BuildGuard, ...]:
        """The build conditions of ``path`` beyond ``BASELINE`` (() when kbuild never builds it)."""
        if path in self._guards:
            return self._guards[path]
        conj = self._file(path) or []
        dirs = _ancestors(posixpath.dirname(path))
        out = []
        for cond, loc, what in conj:
            option = (_CONFIG_NAME.findall(cond) or [""])[0]
            kinds = (self.kconfig_types(d).get(option)
                     for d in dict.fromkeys(_ancestors(posixpath.dirname(loc.path)) + dirs))
            tristate = next((k for k in kinds if k), None) == "tristate"
            if not tristate:  # a bool (or unknown) option is never m: =y is plain enabled
                cond = re.sub(r"^(CONFIG_\w+)=y$", r"\1", cond)
                cond = re.sub(r"^(CONFIG_\w+)!=y$", r"!\1", cond)
            if cond in BASELINE or re.sub(r"=y$", "", cond) in BASELINE:
                continue
            if any(g.condition == cond for g in out):
                continue
            out.append(BuildGuard(cond, loc, what, tristate))
        self._guards[path] = tuple(out)
        return self._guards[path]


def arch_option(arch: str) -> str:
    """The option a kernel for ``arch/<arch>/`` has (CONFIG_X86, CONFIG_PPC, ...)."""
    return ARCH_OPTIONS.get(arch, "CONFIG_" + arch.upper())


def _ancestors(directory: str) -> list[str]:
    out = []
    while directory:
        out.append(directory)
        directory = posixpath.dirname(directory)
    return out + [""]
