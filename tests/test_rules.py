"""One fixture per rule of policy/rules.toml, as cargo-semver-checks keeps one test crate per lint.

Each ``test_rule_<id>`` builds a minimal base/head pair (tests/treekit.py)
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
import re
import tomllib
from pathlib import Path
from types import SimpleNamespace

import pytest

from policybot.gitbuild import HistoryBuilder
from policybot.kernel.scanner import Scanner
from policybot.policy.audit import Auditor
from policybot.policy.config import Policy
from policybot.policy.rules import catalogue
from policybot.review import judge_diff_text
from treekit import BTF_H, FOO, MANIFEST, kernel

ROOT = Path(__file__).resolve().parent.parent
RULES_TOML = ROOT / "policybot" / "policy" / "rules.toml"
HELPERS = "kernel/bpf/helpers.c"
BASE_DAY, HEAD_DAY = "2024-01-07", "2024-03-10"

# The manifest entry (stability, since) that puts bpf_foo at each level on HEAD_DAY:
DECLARED = {
    "unstable": None,  # no declaration at all: unstable by default
    "stable": ("stable", None),  # since v6.8, 2024-01-07: the 5-year window runs to 2029-01-07
    "expired": ("stable", "2015-01-01"),  # window ended 2020-01-01
    "deprecating": ("deprecating", None),
    "deprecated": ("deprecated", None),  # since v6.8: the 12-month notice period runs to 2025-01-07
    "deprecated_due": ("deprecated", "2020-01-01"),  # notice period ended 2021-01-01
}
LEVELS = tuple(DECLARED)


def manifest_for(**decls) -> str:
    out = "kfuncs:\n" if any(decls.values()) else "kfuncs: {}\n"
    for name, decl in decls.items():
        if decl is None:
            continue
        level, since = decl
        out += f"  {name}:\n    stability: {level}\n" + (f"    since: {since}\n" if since else "")
    return out


def line_of(text: str, needle: str, nth: int = 1) -> int:
    """1-based line of the nth line of ``text`` containing ``needle`` (read from the fixture)."""
    hits = [i for i, ln in enumerate(text.split("\n"), 1) if needle in ln]
    assert len(hits) >= nth, (needle, text)
    return hits[nth - 1]


def entry_line(src: str, name: str) -> int:
    return line_of(src, f"BTF_ID_FLAGS(func, {name}")


def def_line(src: str, name: str) -> int:
    return line_of(src, f" {name}(")


def pair(tmp_path, base_files: dict, head_files: dict, level: str | None = None) -> HistoryBuilder:
    """v6.8 with ``base_files`` (and bpf_foo declared at ``level``), then v6.9 changing ``head_files``."""
    files = {"include/linux/btf.h": BTF_H, **base_files}
    if level is not None and DECLARED[level] and MANIFEST not in files:
        files[MANIFEST] = manifest_for(bpf_foo=DECLARED[level])
    b = HistoryBuilder(tmp_path / "repo")
    b.commit(files, "base", BASE_DAY + "T12:00:00")
    b.tag("v6.8")
    b.commit(head_files, "change", HEAD_DAY + "T12:00:00")
    b.tag("v6.9")
    return b


def findings(b: HistoryBuilder, base: str | None = "v6.8", today: dt.date | None = None) -> list[tuple]:
    result = Auditor(b.repo, Scanner(b.repo), Policy(), today).audit("v6.9", base)
    return sorted((f.rule, f.kfunc, f.verdict, str(f.location), f.message) for f in result.findings)


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


@levels(unstable="info", stable="warning", expired="warning", deprecating="warning",
        deprecated="warning", deprecated_due="info")
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


# -- registration filters -----------------------------------------------------------------------------

def with_filter(src: str, name: str) -> str:
    """``src`` (treekit.kernel) with its set registered through the .filter callback ``name``."""
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
