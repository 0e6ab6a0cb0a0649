"""One fixture per rule of policy/rules.toml, as cargo-semver-checks keeps one test crate per lint.

Each ``test_rule_<id>`` builds a minimal base/head pair (tests/kit/trees.py)
and states the exact finding: rule, kfunc, verdict, location and message.
It runs once per level the kfunc is declared at on the base (the six
columns of rules.toml), with the expected verdict written here, literally:
a changed cell, detector or message fails the rule's own test. Cells the
audit cannot reach (say which, and why) are pinned literally too, so that a
change to them is a reviewed change of this file.

The history: v6.8 (2024-01-07) is the base, v6.9 (2024-03-10) the head; a
change is judged on the head's commit date, 2024-03-10.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import tomllib
from pathlib import Path
from types import SimpleNamespace

import pytest

from policybot.cli import main
from policybot.gitbuild import HistoryBuilder
from policybot.kernel.scanner import Scanner
from policybot.policy.audit import Auditor
from policybot.policy.config import Policy
from policybot.policy.rules import catalogue
from policybot.app.series import judge_diff_text
from kit.bpf import SOURCES, call_site, compile_bpf
from kit.bpf import line_of as bpf_line_of
from kit.trees import (BTF_H, DECLARED, FOO, HEAD_DAY, HELPERS, MANIFEST, RESOLVED, check_findings, findings, kernel,
                       manifest_for, pair, target)

ROOT = Path(__file__).resolve().parent.parent
RULES_TOML = ROOT / "policybot" / "policy" / "rules.toml"
LEVELS = tuple(DECLARED)  # the six columns of rules.toml, in order


def line_of(text: str, needle: str, nth: int = 1) -> int:
    """1-based line of the nth line of ``text`` containing ``needle`` (read from the fixture)."""
    hits = [i for i, ln in enumerate(text.split("\n"), 1) if needle in ln]
    assert len(hits) >= nth, (needle, text)
    return hits[nth - 1]


def entry_line(src: str, name: str) -> int:
    return line_of(src, f"BTF_ID_FLAGS(func, {name}")


def def_line(src: str, name: str) -> int:
    return line_of(src, f" {name}(")


def expect(rule: str, verdict: str, location: str, message: str, kfunc: str = "bpf_foo") -> list[tuple]:
    return [] if verdict == "none" else [(rule, kfunc, verdict, location, message)]


def levels(**verdicts):
    """The parametrisation of one rule's test: its verdict per level, in rules.toml's column order."""
    assert tuple(verdicts) == LEVELS
    return pytest.mark.parametrize("level, verdict", list(verdicts.items()))


def pinned(rule: str, level: str, verdict: str) -> None:
    """A cell the audit cannot reach: pinned, so that changing it is a reviewed change here."""
    assert catalogue()[rule].verdict[level] == verdict


# -- the catalogue itself --------------------------------------------------------------------

def test_every_rule_has_its_fixture_test():
    ids = set(tomllib.loads(RULES_TOML.read_text()))
    tests = {name.removeprefix("test_rule_").upper() for name in globals() if name.startswith("test_rule_")}
    assert tests == ids, f"rules without a fixture test: {sorted(ids - tests)}; tests without a rule: " \
                         f"{sorted(tests - ids)}"
    for rid in ids:
        test = globals()[f"test_rule_{rid.lower()}"]
        marks = [m for m in getattr(test, "pytestmark", []) if m.name == "parametrize"]
        assert marks and [lvl for lvl, _ in marks[0].args[1]] == list(LEVELS), f"{rid}: not run at every level"


def test_catalogue_ids_and_columns():
    rules = catalogue()
    assert sorted(rules) == sorted(tomllib.loads(RULES_TOML.read_text()))
    for r in rules.values():
        assert tuple(r.verdict) == LEVELS, r.id
        assert r.summary and r.hint and r.reference and r.compares, r.id


# -- removals and renames ----------------------------------------------------------------------

@levels(unstable="info", stable="violation", expired="warning", deprecating="violation",
        deprecated="violation", deprecated_due="info")
def test_rule_kfunc_removed(tmp_path, level, verdict):
    src = kernel({"bpf_foo": FOO, "bpf_bar": FOO})
    b = pair(tmp_path, {HELPERS: src}, {HELPERS: kernel({"bpf_bar": FOO})}, level)
    got = findings(b)
    if level == "deprecated":
        # inside its notice period a removal is DEPRECATED_REMOVED_EARLY (its own test); this
        # cell is what a review says of a patch that does not apply and drops the set entry
        assert [g[0] for g in got] == ["DEPRECATED_REMOVED_EARLY"]
        got = removed_in_unappliable_patch(b)
        assert got == expect("KFUNC_REMOVED", verdict, f"{HELPERS}:{entry_line(src, 'bpf_foo')}",
                             "is removed from its kfunc set (judged from the diff text: the patch does not apply)")
        return
    assert got == expect("KFUNC_REMOVED", verdict, f"{HELPERS}:{entry_line(src, 'bpf_foo')}",
                         "is no longer in any registered kfunc set")


def removed_in_unappliable_patch(b: HistoryBuilder) -> list[tuple]:
    auditor = Auditor(b.repo, Scanner(b.repo), Policy(), dt.date.fromisoformat(HEAD_DAY))
    commit = b.repo.revparse_single("v6.8").peel(None)
    inv = auditor.scanner.inventory_of_commit(commit, "v6.8")
    promises = auditor.promises_at(inv, commit, dt.date.fromisoformat(HEAD_DAY))
    patch = SimpleNamespace(diff=f"--- a/{HELPERS}\n+++ b/{HELPERS}\n@@ -99,3 +99,2 @@\n"
                                 " BTF_KFUNCS_START(generic_btf_ids)\n-BTF_ID_FLAGS(func, bpf_foo)\n")
    return sorted((f.rule, f.kfunc, f.verdict, str(f.location), f.message)
                  for f in judge_diff_text(auditor, patch, inv, promises))


@levels(unstable="info", stable="violation", expired="warning", deprecating="violation",
        deprecated="violation", deprecated_due="info")
def test_rule_kfunc_renamed(tmp_path, level, verdict):
    head = kernel({"bpf_foo2": FOO})
    b = pair(tmp_path, {HELPERS: kernel({"bpf_foo": FOO})}, {HELPERS: head}, level)
    assert findings(b) == expect("KFUNC_RENAMED", verdict, f"{HELPERS}:{entry_line(head, 'bpf_foo2')}",
                                 "renamed to bpf_foo2 (same BPF-visible signature, same set)")


# -- signatures ---------------------------------------------------------------------------------

def signature_change(tmp_path, level, new_sig):
    head = kernel({"bpf_foo": new_sig})
    b = pair(tmp_path, {HELPERS: kernel({"bpf_foo": FOO})}, {HELPERS: head}, level)
    return findings(b), f"{HELPERS}:{def_line(head, 'bpf_foo')}"


@levels(unstable="info", stable="violation", expired="warning", deprecating="violation",
        deprecated="violation", deprecated_due="info")
def test_rule_kfunc_param_added(tmp_path, level, verdict):
    got, loc = signature_change(tmp_path, level, "int|struct task_struct *p, u32 flags, u64 more")
    assert got == expect("KFUNC_PARAM_ADDED", verdict, loc, "takes 3 parameters instead of 2: "
                         "(struct task_struct *p, u32 flags) became (struct task_struct *p, u32 flags, u64 more)")


@levels(unstable="info", stable="violation", expired="warning", deprecating="violation",
        deprecated="violation", deprecated_due="info")
def test_rule_kfunc_param_removed(tmp_path, level, verdict):
    got, loc = signature_change(tmp_path, level, "int|struct task_struct *p")
    assert got == expect("KFUNC_PARAM_REMOVED", verdict, loc, "takes 1 parameter instead of 2: "
                         "(struct task_struct *p, u32 flags) became (struct task_struct *p)")


@levels(unstable="info", stable="violation", expired="warning", deprecating="violation",
        deprecated="violation", deprecated_due="info")
def test_rule_kfunc_param_type_changed(tmp_path, level, verdict):
    got, loc = signature_change(tmp_path, level, "int|struct cgroup *p, u32 flags")
    assert got == expect("KFUNC_PARAM_TYPE_CHANGED", verdict, loc,
                         "parameter 1 (p) is 'struct cgroup *' instead of 'struct task_struct *'")


@levels(unstable="info", stable="violation", expired="warning", deprecating="violation",
        deprecated="violation", deprecated_due="info")
def test_rule_kfunc_return_type_changed(tmp_path, level, verdict):
    got, loc = signature_change(tmp_path, level, "void *|struct task_struct *p, u32 flags")
    assert got == expect("KFUNC_RETURN_TYPE_CHANGED", verdict, loc, "returns 'void *' instead of 'int'")


@levels(unstable="info", stable="violation", expired="warning", deprecating="violation",
        deprecated="violation", deprecated_due="info")
def test_rule_kfunc_param_annotation_tightened(tmp_path, level, verdict):
    got, loc = signature_change(tmp_path, level, "int|struct task_struct *p, u32 flags__k")
    assert got == expect("KFUNC_PARAM_ANNOTATION_TIGHTENED", verdict, loc,
                         "parameter 2 'flags' became 'flags__k': the verifier now requires a known constant")


@levels(unstable="info", stable="notice", expired="notice", deprecating="notice",
        deprecated="notice", deprecated_due="info")
def test_rule_kfunc_needs_review(tmp_path, level, verdict):
    got, loc = signature_change(tmp_path, level, "int|struct task_struct *p, u64 flags")
    assert got == expect("KFUNC_NEEDS_REVIEW", verdict, loc,
                         "parameter 2 (flags) changed from 'u32' to 'u64' (integer width)")
    # the other detector of this rule: a flag policybot does not know
    head = kernel({"bpf_foo": (FOO, "KF_NEW_THING")})
    b = pair(tmp_path / "flag", {HELPERS: kernel({"bpf_foo": FOO})}, {HELPERS: head}, level)
    assert findings(b) == expect("KFUNC_NEEDS_REVIEW", verdict, f"{HELPERS}:{entry_line(head, 'bpf_foo')}",
                                 "flags +KF_NEW_THING: policybot does not know what the verifier does with "
                                 "this flag")


# -- flags, program types, guards, files ------------------------------------------------------------

@levels(unstable="info", stable="violation", expired="warning", deprecating="violation",
        deprecated="violation", deprecated_due="info")
def test_rule_kfunc_flags_tightened(tmp_path, level, verdict):
    head = kernel({"bpf_foo": (FOO, "KF_SLEEPABLE")})
    b = pair(tmp_path, {HELPERS: kernel({"bpf_foo": FOO})}, {HELPERS: head}, level)
    assert findings(b) == expect("KFUNC_FLAGS_TIGHTENED", verdict, f"{HELPERS}:{entry_line(head, 'bpf_foo')}",
                                 "flags +KF_SLEEPABLE: programs that verified before may be rejected")


@levels(unstable="info", stable="info", expired="info", deprecating="info", deprecated="info",
        deprecated_due="info")
def test_rule_kfunc_flags_relaxed(tmp_path, level, verdict):
    head = kernel({"bpf_foo": FOO})
    b = pair(tmp_path, {HELPERS: kernel({"bpf_foo": (FOO, "KF_SLEEPABLE")})}, {HELPERS: head}, level)
    assert findings(b) == expect("KFUNC_FLAGS_RELAXED", verdict, f"{HELPERS}:{entry_line(head, 'bpf_foo')}",
                                 "flags -KF_SLEEPABLE: compatible")


@levels(unstable="info", stable="violation", expired="warning", deprecating="violation",
        deprecated="violation", deprecated_due="info")
def test_rule_kfunc_prog_type_dropped(tmp_path, level, verdict):
    head = kernel({"bpf_foo": FOO}, progs=("TRACING",))
    b = pair(tmp_path, {HELPERS: kernel({"bpf_foo": FOO}, progs=("TRACING", "XDP", "SCHED_CLS"))},
             {HELPERS: head}, level)
    assert findings(b) == expect("KFUNC_PROG_TYPE_DROPPED", verdict, f"{HELPERS}:{entry_line(head, 'bpf_foo')}",
                                 "no longer registered for SCHED_CLS, XDP")


@levels(unstable="info", stable="violation", expired="warning", deprecating="violation",
        deprecated="violation", deprecated_due="info")
def test_rule_kfunc_config_guard_added(tmp_path, level, verdict):
    head = kernel({"bpf_foo": (FOO, None, "CONFIG_BPF_EXTRA")})
    b = pair(tmp_path, {HELPERS: kernel({"bpf_foo": FOO})}, {HELPERS: head}, level)
    assert findings(b) == expect("KFUNC_CONFIG_GUARD_ADDED", verdict, f"{HELPERS}:{entry_line(head, 'bpf_foo')}",
                                 "now exists only with CONFIG_BPF_EXTRA")


@levels(unstable="info", stable="info", expired="info", deprecating="info", deprecated="info",
        deprecated_due="info")
def test_rule_kfunc_moved(tmp_path, level, verdict):
    src = kernel({"bpf_foo": FOO})
    b = pair(tmp_path, {HELPERS: src}, {HELPERS: None, "kernel/bpf/generic.c": src}, level)
    assert findings(b) == expect("KFUNC_MOVED", verdict, f"kernel/bpf/generic.c:{entry_line(src, 'bpf_foo')}",
                                 "registered in kernel/bpf/generic.c instead of kernel/bpf/helpers.c")


# -- lifecycle --------------------------------------------------------------------------------------

@levels(unstable="none", stable="violation", expired="notice", deprecating="violation",
        deprecated="violation", deprecated_due="notice")
def test_rule_stability_demoted(tmp_path, level, verdict):
    if level == "unstable":
        # an unstable kfunc cannot be lowered: the detector never asks this cell
        pinned("STABILITY_DEMOTED", level, verdict)
        return
    was = DECLARED[level][0]
    b = pair(tmp_path, {HELPERS: kernel({"bpf_foo": FOO})}, {MANIFEST: manifest_for(bpf_foo=("unstable", None))},
             level)
    assert findings(b) == expect("STABILITY_DEMOTED", verdict, f"{MANIFEST}:2", f"declared unstable, was {was}")
    if was == "stable":
        # a stable declaration removed: the same rule, unstable by default
        b = pair(tmp_path / "gone", {HELPERS: kernel({"bpf_foo": FOO})}, {MANIFEST: "kfuncs: {}\n"}, level)
        src = kernel({"bpf_foo": FOO})
        assert findings(b) == expect("STABILITY_DEMOTED", verdict, f"{HELPERS}:{entry_line(src, 'bpf_foo')}",
                                     "declaration removed: now unstable by default")


@levels(unstable="notice", stable="notice", expired="notice", deprecating="notice", deprecated="notice",
        deprecated_due="notice")
def test_rule_deprecation_started(tmp_path, level, verdict):
    # deprecated becomes deprecating when the base already says deprecated
    new = "deprecating" if DECLARED[level] and DECLARED[level][0] == "deprecated" else "deprecated"
    head_manifest = f"kfuncs:\n  bpf_foo:\n    stability: {new}\n    replacement: bpf_foo2\n"
    b = pair(tmp_path, {HELPERS: kernel({"bpf_foo": FOO})}, {MANIFEST: head_manifest}, level)
    # 12 months from the head's day, or the live stable window's end (2029-01-07) when later
    removal = "2029-01-07" if level == "stable" else "2025-03-10"
    assert findings(b) == expect("DEPRECATION_STARTED", verdict, f"{MANIFEST}:2",
                                 f"declared {new} (manifest); replacement: bpf_foo2; earliest removal {removal}")


@levels(unstable="none", stable="violation", expired="violation", deprecating="violation",
        deprecated="violation", deprecated_due="none")
def test_rule_deprecated_removed_early(tmp_path, level, verdict):
    if level != "deprecated":
        # only a removal inside the notice period becomes this rule (audit.judge); the other
        # levels are KFUNC_REMOVED (test_rule_kfunc_removed)
        pinned("DEPRECATED_REMOVED_EARLY", level, verdict)
        return
    src = kernel({"bpf_foo": FOO, "bpf_bar": FOO})
    b = pair(tmp_path, {HELPERS: src}, {HELPERS: kernel({"bpf_bar": FOO})}, level)
    assert findings(b) == expect("DEPRECATED_REMOVED_EARLY", verdict, f"{HELPERS}:{entry_line(src, 'bpf_foo')}",
                                 "is no longer in any registered kfunc set")


# the day each level's promise ends (see DECLARED), and a day 37 days before it
EXPIRY_DAYS = {"stable": "2029-01-07", "expired": "2020-01-01", "deprecated": "2025-01-07",
               "deprecated_due": "2021-01-01"}


@levels(unstable="none", stable="notice", expired="none", deprecating="notice", deprecated="notice",
        deprecated_due="none")
def test_rule_promise_expiring(tmp_path, level, verdict):
    src = kernel({"bpf_foo": FOO})
    b = pair(tmp_path, {HELPERS: src}, {"README": "x"}, level)
    loc = f"{HELPERS}:{entry_line(src, 'bpf_foo')}"
    if level in ("unstable", "deprecating"):
        # no end date, so nothing can be ending: the current-state audit never asks these cells
        assert findings(b, None, dt.date(2028, 12, 1)) == []
        pinned("PROMISE_EXPIRING", level, verdict)
        return
    ends = dt.date.fromisoformat(EXPIRY_DAYS[level])
    what = "stable window" if level in ("stable", "expired") else "notice period"
    if level in ("expired", "deprecated_due"):
        # on the day a promise ends it is over (expired, deprecated_due): this cell decides
        assert findings(b, None, ends) == expect("PROMISE_EXPIRING", verdict, loc, f"{what} ends {ends} (0 days)")
        return
    assert findings(b, None, ends - dt.timedelta(days=37)) == expect(
        "PROMISE_EXPIRING", verdict, loc, f"{what} ends {ends} (37 days)")


# -- the ledger of the tree's own dated promises ------------------------------------------------------
# v6.8 then v6.9 (the release audited: its tag, the fixture tree has no Makefile). The note sits
# above bpf_foo's definition, which it dates; the verdict is the same in every column.

LEDGER_ALL = dict(unstable="notice", stable="notice", expired="notice", deprecating="notice", deprecated="notice",
                  deprecated_due="notice")


def noted(version: str) -> tuple[str, int]:
    """helpers.c with bpf_foo, under a sched_ext-style COMPAT note naming ``version``; the note's line."""
    src = kernel({"bpf_foo": FOO}).replace("__bpf_kfunc int bpf_foo(",
                                           f"/*\n * COMPAT: Will be removed in {version}.\n */\n"
                                           "__bpf_kfunc int bpf_foo(", 1)
    return src, src.split("\n").index(f" * COMPAT: Will be removed in {version}.") + 1


@levels(**LEDGER_ALL)
def test_rule_ledger_due(tmp_path, level, verdict):
    src, line = noted("v6.9")
    b = pair(tmp_path, {HELPERS: kernel({"bpf_foo": FOO})}, {HELPERS: src}, level)
    assert findings(b) == expect("LEDGER_DUE", verdict, f"{HELPERS}:{line}",
                                 'the tree says "COMPAT: Will be removed in v6.9.": v6.9 is the release audited')


@levels(**LEDGER_ALL)
def test_rule_ledger_overdue(tmp_path, level, verdict):
    src, line = noted("v6.8")
    b = pair(tmp_path, {HELPERS: kernel({"bpf_foo": FOO})}, {HELPERS: src}, level)
    assert findings(b) == expect("LEDGER_OVERDUE", verdict, f"{HELPERS}:{line}",
                                 'the tree says "COMPAT: Will be removed in v6.8.": v6.8 is out, and v6.9 is audited')
    # a range where the note was overdue at the base already says nothing again
    was_overdue, _ = noted("v6.7")
    b = pair(tmp_path / "again", {HELPERS: was_overdue}, {"README": "x"}, level)
    assert findings(b) == []
    # while the audit of the tree as it is lists it
    assert [f[0] for f in findings(b, None)] == ["LEDGER_OVERDUE"]


@levels(unstable="info", stable="info", expired="info", deprecating="info", deprecated="info", deprecated_due="info")
def test_rule_ledger_future(tmp_path, level, verdict):
    # 6.19 was the last 6.x: "v6.21" is 7.1
    src, line = noted("v6.21")
    b = pair(tmp_path, {HELPERS: kernel({"bpf_foo": FOO})}, {HELPERS: src}, level)
    assert findings(b) == expect("LEDGER_FUTURE", verdict, f"{HELPERS}:{line}",
                                 'the tree says "COMPAT: Will be removed in v6.21.": v6.21 is v7.1')


@levels(**LEDGER_ALL)
def test_rule_ledger_withdrawn(tmp_path, level, verdict):
    src, line = noted("v6.21")
    b = pair(tmp_path, {HELPERS: src}, {HELPERS: kernel({"bpf_foo": FOO})}, level)
    assert findings(b) == expect("LEDGER_WITHDRAWN", verdict, f"{HELPERS}:{line}",
                                 'the note "COMPAT: Will be removed in v6.21." (v6.21, that is v7.1) is gone, '
                                 "and what it dated is still here: bpf_foo")
    # the promise kept: the note and bpf_foo gone together is no finding of the ledger
    b = pair(tmp_path / "kept", {HELPERS: src}, {HELPERS: kernel({})}, level)
    assert not [f for f in findings(b) if f[0].startswith("LEDGER_")]


# -- declarations -----------------------------------------------------------------------------------
# A declaration problem is judged in the "unstable" column (audit._problem): the other cells are
# never asked, and are pinned.

def declaration_problem_cells(rule: str, level: str, verdict: str) -> bool:
    if level != "unstable":
        pinned(rule, level, verdict)
        return False
    return True


@levels(unstable="warning", stable="warning", expired="warning", deprecating="warning",
        deprecated="warning", deprecated_due="warning")
def test_rule_declaration_unknown_kfunc(tmp_path, level, verdict):
    if not declaration_problem_cells("DECLARATION_UNKNOWN_KFUNC", level, verdict):
        return
    head_manifest = manifest_for(bpf_foo=("stable", None), bpf_nope=("stable", None))
    b = pair(tmp_path, {HELPERS: kernel({"bpf_foo": FOO})}, {MANIFEST: head_manifest}, "stable")
    msg = "is declared stable but no such kfunc exists"
    assert findings(b) == expect("DECLARATION_UNKNOWN_KFUNC", verdict, f"{MANIFEST}:4", msg, "bpf_nope")
    assert findings(b, None) == expect("DECLARATION_UNKNOWN_KFUNC", verdict, f"{MANIFEST}:4", msg, "bpf_nope")


@levels(unstable="warning", stable="warning", expired="warning", deprecating="warning",
        deprecated="warning", deprecated_due="warning")
def test_rule_declaration_conflict(tmp_path, level, verdict):
    if not declaration_problem_cells("DECLARATION_CONFLICT", level, verdict):
        return
    doc = "/**\n * bpf_foo - Foo.\n *\n * Stability: unstable\n */\n"
    src = kernel({"bpf_foo": FOO}).replace("__bpf_kfunc int bpf_foo", doc + "__bpf_kfunc int bpf_foo")
    b = pair(tmp_path, {HELPERS: kernel({"bpf_foo": FOO})}, {HELPERS: src}, "stable")
    assert findings(b) == expect("DECLARATION_CONFLICT", verdict, f"{HELPERS}:{line_of(src, 'Stability:')}",
                                 f"kernel-doc says unstable, manifest at {MANIFEST}:2 says stable; manifest wins")


@levels(unstable="warning", stable="warning", expired="warning", deprecating="warning",
        deprecated="warning", deprecated_due="warning")
def test_rule_declaration_invalid(tmp_path, level, verdict):
    if not declaration_problem_cells("DECLARATION_INVALID", level, verdict):
        return
    b = pair(tmp_path, {HELPERS: kernel({"bpf_foo": FOO})},
             {MANIFEST: "kfuncs:\n  bpf_foo:\n    stability: stabel\n"}, "unstable")
    assert findings(b) == expect("DECLARATION_INVALID", verdict, f"{MANIFEST}:3",
                                 "stability must be one of unstable, stable, deprecating, deprecated, got 'stabel'")
    # the manifest's other failure: YAML that does not parse, at its line
    b = pair(tmp_path / "yaml", {HELPERS: kernel({"bpf_foo": FOO})},
             {MANIFEST: "kfuncs:\n  bpf_foo: [unclosed\n"}, "unstable")
    got = findings(b)
    assert [(g[0], g[1], g[2], g[3]) for g in got] == [("DECLARATION_INVALID", "", verdict, f"{MANIFEST}:3")]
    assert re.match(r"invalid YAML: ", got[0][4]), got


# -- the tree's own semantics: a flag or suffix the verifier reads differently ----------------------
# As tests/test_semantics.py does: a btf.h (kit.trees') and a verifier.c, btf.c in the fixture tree.

VERIFIER_C, BTF_C = "kernel/bpf/verifier.c", "kernel/bpf/btf.c"


def verifier_matching(*suffixes: str, padding: int = 0) -> str:
    """A verifier.c matching ``suffixes`` (one is_kfunc_arg_* each), ``padding`` lines further down."""
    return "\n" * padding + "".join(
        f"static bool is_kfunc_arg_{s.strip('_')}(const struct btf *btf, const struct btf_param *arg)\n"
        f"{{\n\treturn btf_param_match_suffix(btf, arg, \"{s}\");\n}}\n\n" for s in suffixes)


def semantics_findings(b: HistoryBuilder) -> list[tuple]:
    """findings(), and the kfuncs each grouped finding lists."""
    result = Auditor(b.repo, Scanner(b.repo), Policy(), None).audit("v6.9", "v6.8")
    return sorted((f.rule, f.kfunc, f.verdict, str(f.location), f.message, f.members) for f in result.findings)


@levels(unstable="info", stable="warning", expired="warning", deprecating="warning",
        deprecated="warning", deprecated_due="info")
def test_rule_kfunc_default_changed(tmp_path, level, verdict):
    define = "#define KF_TRUSTED_ARGS (1 << 4)\n"
    head_btf = BTF_H.replace(define, "")
    assert head_btf != BTF_H  # kit.trees' btf.h defines it
    # bpf_foo takes a struct pointer and no flag: the new default reaches it. bpf_scalar takes no
    # pointer and bpf_rcu opts out with KF_RCU: both undeclared, so listing them by mistake would not
    # change the verdict; the listed kfuncs are checked too
    # bpf_opts takes a struct of scalars its file defines (memory the program fills: not reached);
    # bpf_obj's struct holds a pointer (an object: reached)
    structs = ("struct bpf_foo_opts {\n\tu32 flags;\n\t__be16 port;\n\tu8 mac[6];\n\tenum bpf_mode mode;\n};\n"
               "struct bpf_foo_obj {\n\tstruct sock *sk;\n\tu32 x;\n};\n")
    src = structs + kernel({"bpf_foo": FOO, "bpf_scalar": "int|u32 x", "bpf_rcu": (FOO, "KF_RCU"),
                            "bpf_opts": "int|struct bpf_foo_opts *opts", "bpf_obj": "int|struct bpf_foo_obj *o"})
    b = pair(tmp_path, {HELPERS: src, VERIFIER_C: verifier_matching("__k"), BTF_C: "int btf_c;\n"},
             {"include/linux/btf.h": head_btf}, level)
    loc = f"include/linux/btf.h:{line_of(BTF_H, define.strip())}"
    msg = (f"KF_TRUSTED_ARGS ({loc} (v6.8)) is no longer defined in include/linux/btf.h at v6.9: its behaviour "
           "(pointer arguments must be trusted) is now the default of every kfunc; kfuncs without it (or "
           "KF_RELEASE, KF_RCU) that take pointers to kernel objects are now checked that way")
    assert semantics_findings(b) == [("KFUNC_DEFAULT_CHANGED", "bpf_foo", verdict, loc, msg, ("bpf_foo", "bpf_obj"))]


@levels(unstable="info", stable="info", expired="info", deprecating="info", deprecated="info",
        deprecated_due="info")
def test_rule_kfunc_suffix_renamed(tmp_path, level, verdict):
    base_verifier = verifier_matching("__k", "__opt")
    head_verifier = verifier_matching("__nullable", "__k", padding=3)  # __opt is gone, __nullable elsewhere
    b = pair(tmp_path, {HELPERS: kernel({"bpf_foo": "int|void *buf__opt, u32 flags"}), VERIFIER_C: base_verifier,
                        BTF_C: "int btf_c;\n"},
             {HELPERS: kernel({"bpf_foo": "int|void *buf__nullable, u32 flags"}), VERIFIER_C: head_verifier}, level)
    opt, nullable = '"__opt"', '"__nullable"'
    loc = f"{VERIFIER_C}:{line_of(base_verifier, opt)}"
    to = f"{VERIFIER_C}:{line_of(head_verifier, nullable)}"
    msg = (f"the verifier no longer matches __opt ({loc} (v6.8): \"return btf_param_match_suffix(btf, arg, "
           f"\"__opt\");\"); __nullable ({to}) means the same "
           "and the parameters were renamed to it")
    # located at the head's definition of the suffix that replaced it
    assert semantics_findings(b) == [("KFUNC_SUFFIX_RENAMED", "bpf_foo", verdict, to, msg, ("bpf_foo",))]


# -- policybot check: a compiled BPF object against a target ----------------------------------------
# The objects are tests/bpf/*.bpf.c (as tests/test_check.py uses them), compiled in the test run
# (tests/kit/bpf.py). The level is the one the kfunc an extern names is declared at on the target,
# v6.9, on HEAD_DAY. The target resolves every object's kfuncs (RESOLVED, target and check_findings
# are tests/kit/trees.py's).


@pytest.fixture(scope="module")
def bpf_objects(tmp_path_factory):
    out = tmp_path_factory.mktemp("objs")
    return {n: compile_bpf(SOURCES / f"{n}.bpf.c", out / f"{n}.bpf.o")
            for n in ("kfunc_user", "needs_gone", "guarded", "undescribed")}


@levels(unstable="violation", stable="violation", expired="violation", deprecating="violation",
        deprecated="violation", deprecated_due="violation")
def test_rule_extern_missing(tmp_path, capsys, bpf_objects, level, verdict):
    if level != "unstable":
        # a kfunc the target lacks is declared at no level there (check.check: UNDECLARED), so
        # only the unstable cell is asked
        pinned("EXTERN_MISSING", level, verdict)
        return
    gone = {n: s for n, s in RESOLVED.items() if n != "bpf_gone"}
    b = target(tmp_path, gone, "bpf_foo", "stable")
    assert check_findings(capsys, b, bpf_objects["needs_gone"]) == expect(
        "EXTERN_MISSING", verdict, call_site("needs_gone", "bpf_gone();"),
        "bpf_gone: bpf_gone is not a kfunc of v6.9: the object does not load", "bpf_gone")


@levels(unstable="violation", stable="violation", expired="violation", deprecating="violation",
        deprecated="violation", deprecated_due="violation")
def test_rule_extern_incompatible(tmp_path, capsys, bpf_objects, level, verdict):
    # kfunc_user.bpf.c declares the strong extern bpf_changed(__u64); v6.9 makes it take a pointer
    b = target(tmp_path, {**RESOLVED, "bpf_changed": "int|struct task_struct *p"}, "bpf_changed", level)
    assert check_findings(capsys, b, bpf_objects["kfunc_user"]) == expect(
        "EXTERN_INCOMPATIBLE", verdict, call_site("kfunc_user", "r += bpf_changed(7);"),
        "bpf_changed: prototype incompatible with v6.9's int bpf_changed(struct task_struct *p) (parameter 1: "
        "unsigned long long in the program, pointer to struct task_struct in the kernel): the object does not "
        "load", "bpf_changed")


@levels(unstable="info", stable="info", expired="info", deprecating="info", deprecated="info",
        deprecated_due="info")
def test_rule_extern_unresolved(tmp_path, capsys, bpf_objects, level, verdict):
    # guarded.bpf.c: the weak bpf_gone___compat(void); v6.9's bpf_gone takes a u64
    b = target(tmp_path, {**RESOLVED, "bpf_gone": "int|u64 x"}, "bpf_gone", level)
    where = call_site("guarded", "bpf_gone___compat();")
    assert check_findings(capsys, b, bpf_objects["guarded"]) == expect(
        "EXTERN_UNRESOLVED", verdict, where, "bpf_gone___compat (kfunc bpf_gone): 0 parameters in the program, "
        "1 in the kernel; weak, so left unresolved (bpf_ksym_exists() is false)", "bpf_gone___compat")
    if level == "unstable":
        # the other detector: the kfunc is missing (declared nowhere, so only this cell)
        gone = {n: s for n, s in RESOLVED.items() if n != "bpf_gone"}
        b = target(tmp_path / "gone", gone, "bpf_foo", "stable")
        assert check_findings(capsys, b, bpf_objects["guarded"]) == expect(
            "EXTERN_UNRESOLVED", verdict, where, "bpf_gone___compat (kfunc bpf_gone): bpf_gone is not a kfunc of "
            "v6.9; weak, so left unresolved (bpf_ksym_exists() is false)", "bpf_gone___compat")


@levels(unstable="warning", stable="warning", expired="warning", deprecating="warning", deprecated="warning",
        deprecated_due="warning")
def test_rule_extern_dead_fallback(tmp_path, capsys, bpf_objects, level, verdict):
    if level != "unstable":
        # an extern that resolves nowhere names no kfunc with a level on any target: judged unstable
        pinned("EXTERN_DEAD_FALLBACK", level, verdict)
        return
    # guarded.bpf.c: the weak bpf_gone___compat(void); v6.8's bpf_gone takes a u64, v6.9 has none
    b = pair(tmp_path, {HELPERS: kernel({**RESOLVED, "bpf_gone": "int|u64 x"})},
             {HELPERS: kernel({n: s for n, s in RESOLVED.items() if n != "bpf_gone"})})
    argv = ["check", str(bpf_objects["guarded"]), "--repo", b.repo.workdir, "--rev", "v6.8", "--rev", "v6.9",
            "--today", HEAD_DAY, "--format", "sarif", "--fail-on", "never"]
    assert main(argv) == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    got = [(r["ruleId"], r["level"], r["message"]["text"],
            "{}:{}".format(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].rsplit("/", 1)[-1],
                           r["locations"][0]["physicalLocation"]["region"]["startLine"]))
           for run in runs for r in run["results"]]
    src = SOURCES / "guarded.bpf.c"
    # at the extern's declaration (DWARF), not at its call
    assert got == [("EXTERN_DEAD_FALLBACK", verdict, "bpf_gone___compat (kfunc bpf_gone): weak, and resolves on none "
                    "of the 2 targets (incompatible on v6.8; missing on v6.9): the code it guards never runs there "
                    "[v6.8, v6.9]", f"guarded.bpf.c:{bpf_line_of(src, 'bpf_gone___compat(void)')}")]


# the earliest removal `policybot check` states at each deprecated level (see DECLARED)
REMOVAL = {"deprecating": "", "deprecated": "; removal not before 2025-01-07",
           "deprecated_due": "; removal not before 2021-01-01"}


@levels(unstable="none", stable="none", expired="none", deprecating="warning", deprecated="warning",
        deprecated_due="warning")
def test_rule_extern_deprecated(tmp_path, capsys, bpf_objects, level, verdict):
    manifest = manifest_for(bpf_foo=DECLARED[level])
    if level in REMOVAL:
        manifest += "    replacement: bpf_foo2\n"
    b = target(tmp_path, {**RESOLVED, "bpf_foo2": FOO}, "bpf_foo", level, manifest)
    got = check_findings(capsys, b, bpf_objects["guarded"])
    if level not in REMOVAL:
        # a kfunc that is not deprecating or deprecated is never judged by this rule (check.check):
        # nothing is reported, and the cells are pinned
        assert got == []
        pinned("EXTERN_DEPRECATED", level, verdict)
        return
    was = "deprecating" if level == "deprecating" else "deprecated"
    assert got == expect("EXTERN_DEPRECATED", verdict, call_site("guarded", "return bpf_foo(ctx, 2);"),
                         f"bpf_foo is {was} on v6.9; use bpf_foo2{REMOVAL[level]}")


@levels(unstable="violation", stable="violation", expired="violation", deprecating="violation",
        deprecated="violation", deprecated_due="violation")
def test_rule_extern_without_btf(tmp_path, capsys, bpf_objects, level, verdict):
    if level != "unstable":
        # an object libbpf cannot open resolves no extern: judged in the unstable column (check.check)
        pinned("EXTERN_WITHOUT_BTF", level, verdict)
        return
    # undescribed.bpf.c calls bpf_gone from inline assembly: a call relocation with no BTF
    b = target(tmp_path, RESOLVED, "bpf_gone", "stable")
    obj = bpf_objects["undescribed"]
    assert check_findings(capsys, b, obj) == expect(
        "EXTERN_WITHOUT_BTF", verdict, str(obj), "bpf_gone is called but has no BTF in the object: libbpf cannot "
        "open it (\"failed to find BTF for extern\")", "bpf_gone")


# -- registration filters -----------------------------------------------------------------------------

def with_filter(src: str, name: str) -> str:
    """``src`` (kit.trees.kernel) with its set registered through the .filter callback ``name``."""
    callback = (f"static int {name}(const struct bpf_prog *prog, u32 kfunc_id)\n{{\n\treturn 0;\n}}\n\n"
                "static const struct btf_kfunc_id_set generic_kfunc_set")
    return src.replace("static const struct btf_kfunc_id_set generic_kfunc_set", callback) \
              .replace("\t.set = &generic_btf_ids,\n", f"\t.set = &generic_btf_ids,\n\t.filter = {name},\n")


@levels(unstable="info", stable="warning", expired="warning", deprecating="warning", deprecated="warning",
        deprecated_due="info")
def test_rule_kfunc_filter_added(tmp_path, level, verdict):
    head = with_filter(kernel({"bpf_foo": FOO}), "bpf_foo_filter")
    assert "\t.filter = bpf_foo_filter,\n" in head
    b = pair(tmp_path, {HELPERS: kernel({"bpf_foo": FOO})}, {HELPERS: head}, level)
    assert findings(b) == expect("KFUNC_FILTER_ADDED", verdict, f"{HELPERS}:{entry_line(head, 'bpf_foo')}",
                                 f"now registered through a set with .filter = bpf_foo_filter ({HELPERS}): the "
                                 "verifier asks that callback about each call and may refuse calls it accepted "
                                 "before")
    # another filter in its place is a new filter too, and says which one it replaced
    b = pair(tmp_path / "swap", {HELPERS: with_filter(kernel({"bpf_foo": FOO}), "bpf_old_filter")},
             {HELPERS: head}, level)
    assert findings(b) == expect("KFUNC_FILTER_ADDED", verdict, f"{HELPERS}:{entry_line(head, 'bpf_foo')}",
                                 f"now registered through a set with .filter = bpf_foo_filter ({HELPERS}) instead of "
                                 "bpf_old_filter: the verifier asks that callback about each call and may refuse "
                                 "calls it accepted before")
    # a filter removed only lets more programs call it
    b = pair(tmp_path / "gone", {HELPERS: head}, {HELPERS: kernel({"bpf_foo": FOO})}, level)
    assert findings(b) == []
    # the filter on a registration for a program type the kfunc had no registration for refuses
    # nothing a program did before (it is the hook's, btf.c __btf_kfunc_is_allowed)
    other = with_filter(kernel({"bpf_foo": FOO}, progs=("STRUCT_OPS",)), "bpf_foo_filter") \
        .replace("generic_", "ops_").replace("kfunc_init", "ops_init")
    b = pair(tmp_path / "new-type", {HELPERS: kernel({"bpf_foo": FOO})}, {"kernel/bpf/ops.c": other}, level)
    assert findings(b) == []


def test_a_filter_on_many_kfuncs_is_one_finding(tmp_path):
    names = {"bpf_foo": FOO, "bpf_bar": FOO, "bpf_baz": FOO}
    head = with_filter(kernel(names), "bpf_foo_filter")
    b = pair(tmp_path, {HELPERS: kernel(names)}, {HELPERS: head}, "stable")
    result = Auditor(b.repo, Scanner(b.repo), Policy()).audit("v6.9", "v6.8")
    (f,) = result.findings
    assert (f.rule, f.verdict, f.kfuncs) == ("KFUNC_FILTER_ADDED", "warning", ("bpf_bar", "bpf_baz", "bpf_foo"))


def test_a_registration_gained_in_another_file_is_not_a_move(tmp_path):
    src = kernel({"bpf_foo": FOO})
    other = kernel({"bpf_foo": FOO}, progs=("STRUCT_OPS",)).replace("generic_", "ops_") \
        .replace("kfunc_init", "ops_init").replace("__bpf_kfunc int bpf_foo(struct task_struct *p, u32 flags)\n{\n}\n", "")
    assert "bpf_foo(" not in other.split("BTF_KFUNCS_START")[0]  # only the registration, not the definition
    b = pair(tmp_path, {HELPERS: src}, {"kernel/bpf/ops.c": other}, "stable")
    assert findings(b) == []
    # losing the first file is a move, whatever else it is registered in
    b = pair(tmp_path / "moved", {HELPERS: src}, {HELPERS: None, "kernel/bpf/ops.c": other,
                                                  "kernel/bpf/generic.c": src}, "stable")
    assert [(g[0], g[4]) for g in findings(b)] == [
        ("KFUNC_MOVED", "registered in kernel/bpf/generic.c, kernel/bpf/ops.c instead of kernel/bpf/helpers.c")]


# -- integer signedness ---------------------------------------------------------------------------------

@levels(unstable="info", stable="info", expired="info", deprecating="info", deprecated="info",
        deprecated_due="info")
def test_rule_kfunc_signedness_changed(tmp_path, level, verdict):
    got, loc = signature_change(tmp_path, level, "int|struct task_struct *p, s32 flags")
    assert got == expect("KFUNC_SIGNEDNESS_CHANGED", verdict, loc,
                         "parameter 2 (flags) changed from 'u32' to 's32' (signedness only, same width: neither "
                         "libbpf nor the verifier tells them apart)")
    # the return type too; and another spelling of the same integer is no change at all
    got, loc = signature_change(tmp_path / "ret", level, "unsigned int|struct task_struct *p, __u32 flags")
    assert got == expect("KFUNC_SIGNEDNESS_CHANGED", verdict, loc, "return type 'int' became 'unsigned int' "
                         "(signedness only, same width: neither libbpf nor the verifier tells them apart)")
