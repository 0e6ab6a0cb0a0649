"""The policy file (config/policy.toml): windows, sources, allowlist. Errors name key and line."""

from __future__ import annotations

import datetime as dt
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .. import bounded
from ..errors import ConfigError, InputError
from ..model.vocabulary import VERDICTS, Verdict
from .rules import catalogue

_DURATION = re.compile(r"^\s*(\d+)\s*(y|m|w|d)\s*$")
_RELEASES = re.compile(r"^\s*(\d+)\s*releases?\s*$")


@dataclass(frozen=True)
class Window:
    """A support window: a duration, a number of releases, or both (the longer wins)."""
    months: int = 0
    days: int = 0
    releases: int = 0

    def __str__(self) -> str:
        parts = []
        if self.months:
            parts.append(f"{self.months // 12}y" if self.months % 12 == 0 else f"{self.months}m")
        if self.days:
            parts.append(f"{self.days}d")
        if self.releases:
            parts.append(f"{self.releases} releases")
        return " or ".join(parts) + (", whichever is longer" if len(parts) > 1 else "") if parts else "0d"


@dataclass(frozen=True)
class AllowEntry:
    kfunc: str
    rule: str
    reason: str
    expires: dt.date
    line: int


@dataclass
class Policy:
    path: str = "<defaults>"
    stable_window: Window = Window(months=60)
    notice_period: Window = Window(months=12)
    date_from: str = "release"  # or "commit"
    include_tests: bool = False
    expiring_horizon_days: int = 90
    manifest: str = "Documentation/bpf/kfunc-stability.yaml"
    overlay: str | None = None  # path of the operator's overlay YAML
    allow: list[AllowEntry] = field(default_factory=list)
    verdict_overrides: dict[str, Verdict] = field(default_factory=dict)
    # where dated notes are read besides the files that define or register kfuncs
    ledger_paths: tuple[str, ...] = ("tools/sched_ext/", "tools/lib/bpf/")
    # `policybot propose`: a kfunc is a candidate for stable with this many independent
    # out-of-tree users and unchanged (prototype, flags, program types) for this many releases
    propose_min_users: int = 2
    propose_min_unchanged_releases: int = 4
    propose_write: str = "manifest"  # or "kernel-doc": how the series declares (the tree's own way)
    # `policybot compat`: kfunc -> the C body its wrapper runs when no variant it can bridge exists
    compat_fallbacks: dict[str, str] = field(default_factory=dict)
    # [semantics]: the operator's answer for a KF_* flag or argument suffix policybot does not
    # know: "tightening", "relaxing" or "neutral" (kernel/flags.py ANSWERS)
    semantics: dict[str, str] = field(default_factory=dict)


def parse_window(text, where: str) -> Window:
    months = days = releases = 0
    items = text if isinstance(text, list) else [text]
    for item in items:
        if not isinstance(item, str):
            raise ConfigError(f"{where}: expected a window like \"5y\", \"18m\" or \"6 releases\", got {item!r}")
        for part in re.split(r"\s+or\s+|,", item):
            m, r = _DURATION.match(part), _RELEASES.match(part)
            if m:
                n, unit = int(m.group(1)), m.group(2)
                months += {"y": 12 * n, "m": n}.get(unit, 0)
                days += {"w": 7 * n, "d": n}.get(unit, 0)
            elif r:
                releases = int(r.group(1))
            else:
                raise ConfigError(f"{where}: expected a window like \"5y\", \"18m\" or \"6 releases\", got {part.strip()!r}")
    return Window(months, days, releases)


def line_of(text: str, key: str, table: str | None = None, nth: int = 0) -> int:
    """Line of `key =` (inside [table] if given): tomllib reports no positions for values."""
    lines = text.splitlines()
    in_table = table is None
    seen = 0
    for i, ln in enumerate(lines, 1):
        s = ln.strip()
        if s.startswith("["):
            name = s.strip("[]").strip()
            in_table = table is None or name == table
            if in_table and table and s.startswith("[[") and seen < nth:
                seen += 1
                in_table = False
            continue
        if in_table and re.match(rf"{re.escape(key)}\s*=", s):
            return i
    return 1


def read_toml(path: str | os.PathLike) -> tuple[dict, str]:
    """A TOML file's data and text (the text locates keys for error messages)."""
    path = Path(path)
    try:
        data = bounded.read_input(path)
    except InputError as e:
        raise ConfigError(str(e)) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 text (byte {e.start}); TOML files are UTF-8") from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: {e}") from None
    except RecursionError:  # tomllib recurses once per level of nesting
        raise ConfigError(f"{path}:{_nested_too_deeply(text) or 1}: arrays or tables nested more than "
                          f"{MAX_TOML_DEPTH} deep") from None


def read_overlay(policy: Policy) -> tuple[str, str] | None:
    """The policy's overlay file (path, text), or None when it names none."""
    if not policy.overlay:
        return None
    try:
        return policy.overlay, bounded.read_text(policy.overlay)
    except InputError as e:
        raise ConfigError(str(e)) from None


MAX_TOML_DEPTH = 32  # where the line of a too deep nesting is said; configurations are a few levels deep
_OPEN, _CLOSE = frozenset("[{"), frozenset("]}")


def _nested_too_deeply(text: str) -> int:
    """The line where brackets outside strings and comments nest past MAX_TOML_DEPTH, or 0."""
    depth, line, quote = 0, 1, ""
    for i, c in enumerate(text):
        if c == "\n":
            line += 1
        if quote:
            if c == quote and (quote == "'" or text[i - 1] != "\\"):
                quote = ""
        elif c in "\"'":
            quote = c
        elif c == "#":
            end = text.find("\n", i)
            quote = "\n" if end >= 0 else ""  # the comment ends with its line
        elif c in _OPEN:
            depth += 1
            if depth > MAX_TOML_DEPTH:
                return line
        elif c in _CLOSE:
            depth = max(depth - 1, 0)
    return 0


def load_policy(path: str | os.PathLike | None) -> Policy:
    if path is None:
        return Policy()
    data, text = read_toml(path)
    return policy_from_dict(data, str(path), text)


def _read_propose_and_ledger(p: Policy, data: dict, path, text: str) -> None:
    """[propose] (the criteria of `policybot propose`) and [ledger] (where dated notes are read)."""
    for key, value in data.get("propose", {}).items():
        where = f"{path}:{line_of(text, key, 'propose')}: propose.{key}"
        if key == "write":
            if value not in ("manifest", "kernel-doc"):
                raise ConfigError(f"{where}: must be \"manifest\" or \"kernel-doc\", got {value!r}")
            p.propose_write = value
            continue
        if key not in ("min_users", "min_unchanged_releases"):
            raise ConfigError(f"{where}: unknown key (known: min_users, min_unchanged_releases, write)")
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{where}: must be a whole number, 0 or more")
        setattr(p, f"propose_{key}", value)
    for key, value in data.get("ledger", {}).items():
        where = f"{path}:{line_of(text, key, 'ledger')}: ledger.{key}"
        if key != "paths":
            raise ConfigError(f"{where}: unknown key (known: paths)")
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: must be a list of paths in the tree")
        p.ledger_paths = tuple(value)


def _read_compat(p: Policy, data: dict, path, text: str) -> None:
    """[compat."KFUNC"] fallback = "C statements": the body of KFUNC's wrapper where the kernel
    has no variant the wrapper can call as it is (`policybot compat`)."""
    compat = data.get("compat", {})
    if not isinstance(compat, dict):
        raise ConfigError(f"{path}:{line_of(text, 'compat')}: 'compat' must be a table of kfuncs")
    for name, table in compat.items():
        header = f'compat."{name}"'
        where = f"{path}:{line_of(text, 'fallback', header)}: compat.{name}"
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: must be a table ([{header}] fallback = \"...\")")
        for key, value in table.items():
            if key != "fallback":
                raise ConfigError(f"{path}:{line_of(text, key, header)}: compat.{name}.{key}: "
                                  "unknown key (known: fallback)")
            p.compat_fallbacks[name] = _string(value, f"{where}.fallback")

def _read_semantics(p: Policy, data: dict, path, text: str) -> None:
    """[semantics]: ``KF_X = "tightening"`` (or ``"__suffix" = ...``), the operator's answer to
    policybot's question about a flag or suffix it does not know."""
    from ..kernel.flags import ANSWERS
    table = data.get("semantics", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}:{line_of(text, 'semantics')}: 'semantics' must be a table ([semantics])")
    for name, answer in table.items():
        where = f"{path}:{line_of(text, name, 'semantics')}: semantics.{name}"
        if not re.fullmatch(r"KF_[A-Z0-9_]+|__[a-z0-9_]+", name):
            raise ConfigError(f"{where}: not a KF_* flag nor an argument suffix (__name)")
        if answer not in ANSWERS:
            raise ConfigError(f"{where}: must be {', '.join(repr(a) for a in ANSWERS)}, got {answer!r}")
        p.semantics[name] = answer


def policy_from_dict(data: dict, path: str, text: str = "") -> Policy:
    p = Policy(path=path)
    known = {"windows", "declarations", "audit", "allow", "verdicts", "ledger", "propose", "compat", "semantics"}
    for key in data:
        if key not in known:
            raise ConfigError(f"{path}:{line_of(text, key)}: unknown "
                              f"section or key '{key}' (known: {', '.join(sorted(known))})")
    windows = data.get("windows", {})
    for key, value in windows.items():
        where = f"{path}:{line_of(text, key, 'windows')}: windows.{key}"
        if key == "stable":
            p.stable_window = parse_window(value, where)
        elif key == "deprecated":
            p.notice_period = parse_window(value, where)
        else:
            raise ConfigError(f"{where}: unknown window (known: stable, deprecated)")
    decl = data.get("declarations", {})
    for key, value in decl.items():
        where = f"{path}:{line_of(text, key, 'declarations')}: declarations.{key}"
        if key == "manifest":
            p.manifest = _string(value, where)
        elif key == "overlay":
            ov = Path(_string(value, where))
            p.overlay = str(ov if ov.is_absolute() else Path(path).parent / ov)
        elif key == "date_from":
            if value not in ("release", "commit"):
                raise ConfigError(f"{where}: must be \"release\" or \"commit\", got {value!r}")
            p.date_from = value
        else:
            raise ConfigError(f"{where}: unknown key (known: manifest, overlay, date_from)")
    audit = data.get("audit", {})
    for key, value in audit.items():
        where = f"{path}:{line_of(text, key, 'audit')}: audit.{key}"
        if key == "include_tests":
            if not isinstance(value, bool):
                raise ConfigError(f"{where}: must be true or false")
            p.include_tests = value
        elif key == "expiring_horizon":
            w = parse_window(value, where)
            if w.releases:
                raise ConfigError(f"{where}: a horizon is a duration (\"90d\", \"3m\"), not a release count")
            p.expiring_horizon_days = w.months * 30 + w.days
        else:
            raise ConfigError(f"{where}: unknown key (known: include_tests, expiring_horizon)")
    _read_propose_and_ledger(p, data, path, text)
    _read_compat(p, data, path, text)
    _read_semantics(p, data, path, text)
    for rule, verdict in data.get("verdicts", {}).items():
        where = f"{path}:{line_of(text, rule, 'verdicts')}: verdicts.{rule}"
        if rule not in catalogue():
            raise ConfigError(f"{where}: unknown rule (see `policybot rules`)")
        if verdict not in VERDICTS + ("none",):
            raise ConfigError(f"{where}: unknown verdict {verdict!r} (one of {', '.join(VERDICTS)}, none)")
        p.verdict_overrides[rule] = Verdict(verdict)
    allow = data.get("allow", [])
    if not isinstance(allow, list):
        raise ConfigError(f"{path}:{line_of(text, 'allow')}: 'allow' must be an array of tables ([[allow]])")
    allow_lines = table_lines(text, "allow")
    for i, entry in enumerate(allow):
        line = allow_lines[i] if i < len(allow_lines) else 1
        where = f"{path}:{line}: allow[{i}]"
        missing = [k for k in ("kfunc", "rule", "reason", "expires") if k not in entry]
        if missing:
            raise ConfigError(f"{where}: missing {', '.join(missing)}")
        if entry["rule"] not in catalogue():
            raise ConfigError(f"{where}: unknown rule {entry['rule']!r} (see `policybot rules`)")
        expires = entry["expires"]
        if isinstance(expires, str):
            try:
                expires = dt.date.fromisoformat(expires)
            except ValueError:
                raise ConfigError(f"{where}: expires must be a date (YYYY-MM-DD)") from None
        if not isinstance(expires, dt.date):
            raise ConfigError(f"{where}: expires must be a date (YYYY-MM-DD)")
        p.allow.append(AllowEntry(entry["kfunc"], entry["rule"], entry["reason"], expires, line))
    return p


def table_lines(text: str, name: str) -> list[int]:
    """The line of each ``[[name]]`` header, in order: found in one pass, so that locating the
    i-th entry of 16,000 stays linear."""
    header = f"[[{name}]]"
    return [i for i, ln in enumerate(text.splitlines(), 1) if ln.strip() == header]


def _string(value, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: must be a non-empty string")
    return value
