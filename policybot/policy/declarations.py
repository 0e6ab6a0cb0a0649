"""Stability declarations, from the four sources docs/maintainers.md (Declarations) lists, in precedence order.

1. the in-tree manifest (YAML; a malformed one is a finding, not a crash),
2. ``Stability:`` / ``Deprecated:`` lines of the kfunc's kernel-doc,
3. ``KF_DEPRECATED`` in its ``BTF_ID_FLAGS``,
4. the operator's overlay (same schema, plus name and path globs; a
   malformed overlay is the operator's error: exit 2 with file:line).
"""

from __future__ import annotations

import fnmatch
import functools
import re

import yaml

from .. import bounded
from ..errors import ConfigError
from ..model.inventory import Inventory, Kfunc, Location
from ..model.promises import Declaration, Problem, Resolved
from ..model.vocabulary import LEVELS, Level, Source
from .rules import render_message

SOURCES = tuple(Source)  # precedence order
FIELDS = {"stability", "version", "since", "replacement", "note"}
# A declaration file is a few levels deep and never needs an alias: refusing both
# keeps a hostile manifest (a 1,000-deep list, an alias bomb) a finding, not a crash.
MAX_YAML_DEPTH = 16


class _DeclarationLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases and nesting deeper than MAX_YAML_DEPTH."""

    _depth = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, _invalid("yaml_alias"), event.start_mark)
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise yaml.composer.ComposerError(None, None, _invalid("yaml_depth", depth=MAX_YAML_DEPTH),
                                                  self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _invalid(variant: str, **fields) -> str:
    """A DECLARATION_INVALID message (rules.toml), also the overlay's error text."""
    return render_message("DECLARATION_INVALID", variant, **fields)


def parse_declaration_yaml(text: str, path: str, *, overlay: bool) -> tuple[list, list[Problem]]:
    """Entries [(pattern, kind, Declaration-without-name fields, line)] and problems."""
    entries, problems = _parse_cached(text, path, overlay)
    return list(entries), list(problems)


@functools.lru_cache(maxsize=32)
def _parse_cached(text: str, path: str, overlay: bool) -> tuple[tuple, tuple]:
    # one overlay is read for every inventory of a series or a history: parse it once
    entries, problems = _parse(text, path, overlay=overlay)
    return tuple(entries), tuple(problems)


def _parse(text: str, path: str, *, overlay: bool) -> tuple[list, list[Problem]]:
    problems: list[Problem] = []

    def problem(line: int, variant: str, about: str = "", /, **fields) -> None:
        msg = _invalid(variant, **fields)
        if overlay:
            raise ConfigError(f"{path}:{line}: {msg}")
        problems.append(Problem("DECLARATION_INVALID", about, Location(path, line), msg))

    limit = bounded.limits().max_declaration_bytes
    if len(text) > limit:  # PyYAML composes 3.5 MB in 14 s and 270 MB: a tree's file is hostile
        problem(1, "too_large", size=len(text), limit=limit)
        return [], problems
    try:
        root = yaml.compose(text, Loader=_DeclarationLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        line = mark.line + 1 if mark else 1
        problem(line, "yaml", problem=getattr(e, 'problem', None) or e)
        return [], problems
    if root is None:
        return [], problems
    if not isinstance(root, yaml.MappingNode):
        problem(root.start_mark.line + 1, "not_mapping")
        return [], problems
    entries = []
    allowed_top = {"kfuncs", "paths"} if overlay else {"kfuncs"}
    for knode, vnode in root.value:
        line = knode.start_mark.line + 1
        if not isinstance(knode, yaml.ScalarNode):
            problem(line, "key_not_plain")
            continue
        if knode.value not in allowed_top:
            problem(line, "unknown_key", key=knode.value, expected=", ".join(sorted(allowed_top)))
            continue
        if not isinstance(vnode, yaml.MappingNode):
            problem(line, "section_not_mapping", key=knode.value)
            continue
        for name_node, decl_node in vnode.value:
            line = name_node.start_mark.line + 1
            if not isinstance(name_node, yaml.ScalarNode):
                problem(line, "name_not_plain")
                continue
            name = str(name_node.value)
            if not isinstance(decl_node, yaml.MappingNode):
                problem(line, "entry_not_mapping", name, kfunc=name)
                continue
            fields = {}
            for fk, fv in decl_node.value:
                if not isinstance(fk, yaml.ScalarNode) or not isinstance(fv, yaml.ScalarNode):
                    if isinstance(fk, yaml.ScalarNode):
                        problem(fk.start_mark.line + 1, "field_not_plain", name, kfunc=name, field=fk.value)
                    else:
                        problem(fk.start_mark.line + 1, "field_key_not_plain", name, kfunc=name)
                    continue
                if fk.value not in FIELDS:
                    problem(fk.start_mark.line + 1, "unknown_field", name, kfunc=name, field=fk.value,
                            known=", ".join(sorted(FIELDS)))
                    continue
                fields[fk.value] = (fv.value, fk.start_mark.line + 1)
            level = fields.get("stability", (None, line))
            if level[0] not in LEVELS:
                problem(level[1], "bad_level", name, kfunc=name, levels=", ".join(LEVELS), got=repr(level[0]))
                continue
            version = fields.get("version", (None,))[0]
            if version is not None:
                try:
                    version = int(version)
                except ValueError:
                    problem(fields["version"][1], "bad_version", name, kfunc=name)
                    continue
            entries.append((name, knode.value, {
                "level": Level(level[0]), "version": version,
                "since": _str(fields.get("since", (None,))[0]),
                "replacement": _str(fields.get("replacement", (None,))[0]),
                "note": _str(fields.get("note", (None,))[0]),
            }, line))
    return entries, problems


def _str(v):
    return None if v is None else str(v)


def collect(inv: Inventory, manifest: tuple[str, str] | None, overlay: tuple[str, str] | None,
            include_tests: bool = False) -> tuple[dict[str, Resolved], list[Problem]]:
    """Declarations per kfunc. ``manifest``/``overlay`` are (path, text) or None."""
    problems: list[Problem] = []
    by_kfunc: dict[str, list[Declaration]] = {}

    def add(d: Declaration) -> None:
        by_kfunc.setdefault(d.kfunc, []).append(d)

    kfuncs = {k.name: k for k in inv.selected(include_tests=True)}
    if manifest:
        path, text = manifest
        entries, probs = parse_declaration_yaml(text, path, overlay=False)
        problems += probs
        for name, _, f, line in entries:
            if name not in kfuncs:
                problems.append(Problem("DECLARATION_UNKNOWN_KFUNC", name, Location(path, line),
                                        render_message("DECLARATION_UNKNOWN_KFUNC", level=f["level"])))
                continue
            add(Declaration(name, source=Source.MANIFEST, location=Location(path, line), **f))
    for k in kfuncs.values():
        doc = k.definition.doc if k.definition else None
        if doc and (doc.stability or doc.deprecated):
            loc = Location(k.definition.location.path, doc.stability_line or doc.deprecated_line or doc.line)
            level = doc.stability or "deprecated"
            if level not in LEVELS:
                problems.append(Problem("DECLARATION_INVALID", k.name, loc,
                                        _invalid("kernel_doc_level", level=level, levels=", ".join(LEVELS))))
            else:
                add(Declaration(k.name, Level(level), Source.KERNEL_DOC, loc, replacement=doc.replacement or None,
                                note=doc.deprecated or None))
        if "KF_DEPRECATED" in k.flags:
            m = next(m for m in k.memberships if "KF_DEPRECATED" in m.flags)
            add(Declaration(k.name, Level.DEPRECATED, Source.KF_FLAG, m.location))
    if overlay:
        path, text = overlay
        entries, _ = parse_declaration_yaml(text, path, overlay=True)
        # most specific first: exact names, then name globs, then paths (first match wins below)
        entries.sort(key=lambda e: (e[1] == "paths", any(c in e[0] for c in "*?["), e[3]))
        for pattern, kind, f, line in entries:
            matched = _overlay_matched(kfuncs, pattern, kind)
            if not matched and kind == "kfuncs" and not any(c in pattern for c in "*?["):
                problems.append(Problem("DECLARATION_UNKNOWN_KFUNC", pattern, Location(path, line),
                                        render_message("DECLARATION_UNKNOWN_KFUNC", level=f["level"])))
            for k in matched:
                add(Declaration(k.name, source=Source.OVERLAY, location=Location(path, line), **f))
    resolved = {}
    for name, decls in by_kfunc.items():
        decls.sort(key=lambda d: SOURCES.index(d.source))
        # an overlay glob may match one kfunc through several entries: the first (most specific) wins
        seen, unique = set(), []
        for d in decls:
            if d.source == Source.OVERLAY and Source.OVERLAY in seen:
                continue
            seen.add(d.source)
            unique.append(d)
        eff = unique[0]
        for other in unique[1:]:
            if other.level != eff.level:
                problems.append(Problem(
                    "DECLARATION_CONFLICT", name, other.location,
                    render_message("DECLARATION_CONFLICT", source=other.source, level=other.level,
                                   winner=eff.source, winner_location=eff.location, winner_level=eff.level)))
        if name in kfuncs and (include_tests or not kfuncs[name].test):
            resolved[name] = Resolved(eff, unique)
    return resolved, problems


def _overlay_matched(kfuncs: dict[str, Kfunc], pattern: str, kind: str) -> list[Kfunc]:
    """The kfuncs an overlay entry names, in ``kfuncs``' order (fnmatch rules, case-sensitive)."""
    if kind == "kfuncs" and not any(c in pattern for c in "*?["):
        return [kfuncs[pattern]] if pattern in kfuncs else []  # an exact name: an index lookup
    match = re.compile(fnmatch.translate(pattern)).match  # compiled once, not once per kfunc
    if kind == "kfuncs":
        return [k for name, k in kfuncs.items() if match(name)]
    below = pattern.rstrip("/") + "/"
    return [k for k in kfuncs.values() if any(match(p) or p.startswith(below) for p in k.files)]
