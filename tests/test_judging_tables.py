"""The data tables policybot judges by, each entry checked against a value written here.

KF_* flag directions (kfuncs.md §3 and the verifier), declaration-source
precedence (policy.md), #ifndef negation, the struct alias of the dynptr
argument, the paths of test kfuncs, and the day each window ends. The
expected values are literal: none is read from the table under test, so
changing one entry of a table fails one assertion here.
"""

from __future__ import annotations

import datetime as dt

import re

import pytest

from policybot.gitbuild import HistoryBuilder
from policybot.kernel.flags import FLAGS
from policybot.kernel.scanner import Scanner
from policybot.policy.audit import Auditor
from policybot.policy.config import Policy, parse_window
from kit.trees import BTF_H, FOO, MANIFEST, kernel

HELPERS = "kernel/bpf/helpers.c"


def pair(tmp_path, base_files, head_files, base_day="2024-01-07", head_day="2024-03-10"):
    b = HistoryBuilder(tmp_path / "repo")
    b.commit({"include/linux/btf.h": BTF_H, **base_files}, "base", base_day + "T12:00:00")
    b.tag("v6.8")
    b.commit(head_files, "change", head_day + "T12:00:00")
    b.tag("v6.9")
    return b


def audit(b, policy=None, base="v6.8", today=None):
    return Auditor(b.repo, Scanner(b.repo), policy or Policy(), today).audit("v6.9", base)


def triples(result):
    return sorted((f.rule, f.kfunc, f.verdict) for f in result.findings)


STABLE = "kfuncs:\n  bpf_foo:\n    stability: stable\n"

# -- KF_* flags: what adding and removing each does to programs that loaded before ---------------
# From kfuncs.md §3 (and the verifier): T = fewer programs verify (KFUNC_FLAGS_TIGHTENED),
# R = old programs do not notice (KFUNC_FLAGS_RELAXED), ? = a maintainer must look (KFUNC_NEEDS_REVIEW).
FLAG_DIRECTIONS = {  # flag: (adding, removing)
    "KF_ACQUIRE": ("T", "T"),  # the program must now release / may no longer release
    "KF_RELEASE": ("T", "T"),
    "KF_RET_NULL": ("T", "R"),  # callers must now check for NULL; a check left in is harmless
    "KF_KPTR_GET": ("T", "T"),
    "KF_TRUSTED_ARGS": ("T", "R"),
    "KF_SLEEPABLE": ("T", "R"),  # sleepable programs only; dropping it allows more programs
    "KF_DESTRUCTIVE": ("T", "R"),  # needs CAP_SYS_BOOT
    "KF_RCU": ("R", "T"),  # accepts RCU pointers as well: adding widens, removing narrows
    "KF_ITER_NEW": ("T", "T"),
    "KF_ITER_NEXT": ("T", "T"),
    "KF_ITER_DESTROY": ("T", "T"),
    "KF_RCU_PROTECTED": ("T", "R"),  # must be called inside an RCU read section
    "KF_FASTCALL": ("R", "R"),  # a calling convention the verifier may use; programs do not see it
    "KF_ARENA_RET": ("T", "T"),
    "KF_ARENA_ARG1": ("T", "T"),
    "KF_ARENA_ARG2": ("T", "T"),
    # the flag by itself changes nothing a program sees: the BPF-visible signature (without the
    # parameters the verifier supplies) decides, and is compared on its own (test_semantics.py)
    "KF_IMPLICIT_ARGS": ("R", "R"),
}
MESSAGES = {
    "T": ("KFUNC_FLAGS_TIGHTENED", "violation", "programs that verified before may be rejected"),
    "R": ("KFUNC_FLAGS_RELAXED", "info", "compatible"),
    "?": ("KFUNC_NEEDS_REVIEW", "notice", "policybot does not know what the verifier does with this flag"),
}


def test_every_known_flag_has_a_written_direction():
    # the list of flags comes from the table; the directions never do
    assert set(FLAGS) == set(FLAG_DIRECTIONS) | {"KF_DEPRECATED"}


@pytest.mark.parametrize("flag, direction", [(f, d) for f in FLAG_DIRECTIONS for d in ("add", "remove")])
def test_flag_direction(tmp_path, flag, direction):
    with_flag, without = kernel({"bpf_foo": (FOO, flag)}), kernel({"bpf_foo": FOO})
    base, head = (without, with_flag) if direction == "add" else (with_flag, without)
    b = pair(tmp_path, {HELPERS: base, MANIFEST: STABLE}, {HELPERS: head})
    effect = FLAG_DIRECTIONS[flag][0 if direction == "add" else 1]
    rule, verdict, text = MESSAGES[effect]
    sign = "+" if direction == "add" else "-"
    assert [(f.rule, f.kfunc, f.verdict, f.message) for f in audit(b).findings] == \
        [(rule, "bpf_foo", verdict, f"flags {sign}{flag}: {text}")]


def test_kf_deprecated_is_a_declaration_not_a_flag_change(tmp_path):
    # adding it deprecates (policy.md source 3); it never counts as a flag change
    b = pair(tmp_path, {HELPERS: kernel({"bpf_foo": FOO})}, {HELPERS: kernel({"bpf_foo": (FOO, "KF_DEPRECATED")})})
    assert [(f.rule, f.verdict, f.message) for f in audit(b).findings] == [
        ("DEPRECATION_STARTED", "notice", "declared deprecated (kf-flag); earliest removal 2025-03-10")]
    b = pair(tmp_path / "2", {HELPERS: kernel({"bpf_foo": (FOO, "KF_DEPRECATED")})}, {HELPERS: kernel({"bpf_foo": FOO})})
    assert audit(b).findings == []


def test_trusted_args_default_from_7_0(tmp_path):
    # from 7.0 the flag is gone from btf.h and its behaviour applies to every kfunc: no change
    no_flag_h = re.sub(r"#define KF_TRUSTED_ARGS .*\n", "", BTF_H)
    b = pair(tmp_path, {HELPERS: kernel({"bpf_foo": (FOO, "KF_TRUSTED_ARGS")}), MANIFEST: STABLE},
             {HELPERS: kernel({"bpf_foo": FOO}), "include/linux/btf.h": no_flag_h})
    assert audit(b).findings == []
    # and only that flag: KF_SLEEPABLE dropped the same way is a change of the tree whose meaning
    # policybot does not know (made the default, or gone?): one finding for a person to review
    no_sleep_h = re.sub(r"#define KF_SLEEPABLE .*\n", "", BTF_H)
    b = pair(tmp_path / "2", {HELPERS: kernel({"bpf_foo": (FOO, "KF_SLEEPABLE")}), MANIFEST: STABLE},
             {HELPERS: kernel({"bpf_foo": FOO}), "include/linux/btf.h": no_sleep_h})
    assert triples(audit(b)) == [("KFUNC_NEEDS_REVIEW", "bpf_foo", "notice")]


# -- declaration sources: manifest > kernel-doc > KF_DEPRECATED > overlay (policy.md) ---------------

DOC = "/**\n * bpf_foo - Foo.\n *\n * Stability: {level}\n */\n"


def declared_by(tmp_path, sources: dict[str, str]) -> tuple[str, str, list[str]]:
    """bpf_foo declared by each of ``sources`` (name -> level): (winning source, its level, conflicts)."""
    src = kernel({"bpf_foo": (FOO, "KF_DEPRECATED" if "kf-flag" in sources else None)})
    if "kernel-doc" in sources:
        src = src.replace("__bpf_kfunc int bpf_foo", DOC.format(level=sources["kernel-doc"]) + "__bpf_kfunc int bpf_foo")
    files = {HELPERS: src}
    if "manifest" in sources:
        files[MANIFEST] = f"kfuncs:\n  bpf_foo:\n    stability: {sources['manifest']}\n"
    policy = Policy()
    if "overlay" in sources:
        overlay = tmp_path / "overlay.yaml"
        overlay.write_text(f"kfuncs:\n  bpf_foo:\n    stability: {sources['overlay']}\n")
        policy = Policy(overlay=str(overlay))
    b = pair(tmp_path, files, {"README": "x"})
    result = audit(b, policy, base=None, today=dt.date(2024, 3, 10))
    decl = result.promises["bpf_foo"].declaration
    return decl.source, decl.level, [f.message for f in result.findings if f.rule == "DECLARATION_CONFLICT"]


@pytest.mark.parametrize("higher, lower", [
    ("manifest", "kernel-doc"), ("manifest", "kf-flag"), ("manifest", "overlay"),
    ("kernel-doc", "kf-flag"), ("kernel-doc", "overlay"), ("kf-flag", "overlay")])
def test_declaration_precedence(tmp_path, higher, lower):
    # KF_DEPRECATED can only say deprecated; the two sources always disagree
    if higher == "kf-flag":
        levels = {higher: "deprecated", lower: "stable"}
    elif lower == "kf-flag":
        levels = {higher: "stable", lower: "deprecated"}
    else:
        levels = {higher: "stable", lower: "unstable"}
    source, level, conflicts = declared_by(tmp_path, levels)
    assert (source, level) == (higher, levels[higher])
    assert len(conflicts) == 1
    assert conflicts[0].startswith(f"{lower} says {levels[lower]}, {higher} at ")
    assert conflicts[0].endswith(f" says {levels[higher]}; {higher} wins")


# -- preprocessor guards -------------------------------------------------------------------------

@pytest.mark.parametrize("directive, guards", [
    ("#ifdef CONFIG_A", ("CONFIG_A",)),
    ("#ifndef CONFIG_A", ("!CONFIG_A",)),
    ("#if defined(CONFIG_A)", ("CONFIG_A",)),
    ("#if !defined(CONFIG_A)", ("!CONFIG_A",)),
])
def test_guard_of_a_directive(tmp_path, directive, guards):
    src = kernel({"bpf_foo": FOO}).replace("BTF_ID_FLAGS(func, bpf_foo)\n",
                                           f"{directive}\nBTF_ID_FLAGS(func, bpf_foo)\n#endif\n")
    b = pair(tmp_path, {HELPERS: src}, {"README": "x"})
    assert Scanner(b.repo).inventory("v6.9").kfuncs["bpf_foo"].guards == guards


def test_else_of_ifndef_is_the_condition(tmp_path):
    src = kernel({"bpf_foo": FOO, "bpf_bar": FOO}).replace(
        "BTF_ID_FLAGS(func, bpf_foo)\nBTF_ID_FLAGS(func, bpf_bar)\n",
        "#ifndef CONFIG_A\nBTF_ID_FLAGS(func, bpf_foo)\n#else\nBTF_ID_FLAGS(func, bpf_bar)\n#endif\n")
    b = pair(tmp_path, {HELPERS: src}, {"README": "x"})
    ks = Scanner(b.repo).inventory("v6.9").kfuncs
    assert (ks["bpf_foo"].guards, ks["bpf_bar"].guards) == (("!CONFIG_A",), ("CONFIG_A",))


def test_ifndef_guard_added_is_reported_negated(tmp_path):
    head = kernel({"bpf_foo": (FOO, None)}).replace("BTF_ID_FLAGS(func, bpf_foo)\n",
                                                    "#ifndef CONFIG_A\nBTF_ID_FLAGS(func, bpf_foo)\n#endif\n")
    b = pair(tmp_path, {HELPERS: kernel({"bpf_foo": FOO}), MANIFEST: STABLE}, {HELPERS: head})
    assert [(f.rule, f.message) for f in audit(b).findings] == [
        ("KFUNC_CONFIG_GUARD_ADDED", "now exists only with !CONFIG_A")]


# -- struct aliases: bpf_dynptr_kern (6.1) and bpf_dynptr are one argument kind ------------------------

@pytest.mark.parametrize("old, new, rules", [
    ("struct bpf_dynptr_kern *ptr", "struct bpf_dynptr *ptr", []),
    ("struct bpf_dynptr *ptr", "struct bpf_dynptr_kern *ptr", []),
    ("const struct bpf_dynptr_kern *ptr", "const struct bpf_dynptr *ptr", []),
    ("struct bpf_dynptr_kern *ptr", "struct bpf_dynptr_other *ptr", ["KFUNC_PARAM_TYPE_CHANGED"]),
    ("struct bpf_dynptr *ptr", "struct bpf_dynptr **ptr", ["KFUNC_PARAM_TYPE_CHANGED"]),
])
def test_dynptr_alias(tmp_path, old, new, rules):
    b = pair(tmp_path, {HELPERS: kernel({"bpf_foo": f"int|{old}, u32 off"}), MANIFEST: STABLE},
             {HELPERS: kernel({"bpf_foo": f"int|{new}, u32 off"})})
    assert [f.rule for f in audit(b).findings] == rules


# -- test kfuncs: where they live (docs/inventory.md "What counts as a kfunc") ------------------------------------

@pytest.mark.parametrize("set_file, def_file, name, test", [
    ("tools/testing/selftests/bpf/bpf_testmod/bpf_testmod.c", None, "bpf_foo", True),
    ("net/bpf/test_run.c", None, "bpf_foo", True),
    ("lib/test_bpf.c", None, "bpf_foo", True),
    ("net/core/filter.c", None, "bpf_foo", False),
    ("net/bpf/other.c", None, "bpf_foo", False),
    ("tools/lib/bpf/x.c", None, "bpf_foo", False),
    ("kernel/bpf/helpers.c", "net/bpf/test_run.c", "bpf_foo", True),  # defined in a test file
    ("kernel/bpf/helpers.c", None, "bpf_kfunc_call_test_x", True),  # by name
    ("kernel/bpf/helpers.c", None, "bpf_kfunc_call_tes", False),
])
def test_test_kfunc_paths(tmp_path, set_file, def_file, name, test):
    src = kernel({name: FOO})
    files = {set_file: src}
    if def_file:
        body = f"__bpf_kfunc int {name}(struct task_struct *p, u32 flags)\n{{\n}}\n"
        files = {set_file: src.replace(body, ""), def_file: body}
    b = pair(tmp_path, files, {"README": "x"})
    k = Scanner(b.repo).inventory("v6.9").kfuncs[name]
    assert k.test is test
    if def_file:
        assert k.definition.location.path == def_file


# -- the day a window ends ---------------------------------------------------------------------------
# A promise holds up to the day before its end: on the end day and after, it is over.

@pytest.mark.parametrize("removed_on, verdict", [
    ("2024-02-29", "violation"),  # the last day of the window
    ("2024-03-01", "warning"),  # the day it ends
    ("2024-03-02", "warning"),
])
def test_stable_window_end_day(tmp_path, removed_on, verdict):
    # stable since 2022-03-01 for 2 years: the window ends 2024-03-01
    base = kernel({"bpf_foo": FOO, "bpf_bar": FOO})
    b = pair(tmp_path, {HELPERS: base, MANIFEST: "kfuncs:\n  bpf_foo:\n    stability: stable\n    since: 2022-03-01\n"},
             {HELPERS: kernel({"bpf_bar": FOO})}, base_day="2023-01-01", head_day=removed_on)
    result = audit(b, Policy(stable_window=parse_window("2y", "x")))
    assert triples(result) == [("KFUNC_REMOVED", "bpf_foo", verdict)]
    assert result.findings[0].promise.ends.date == dt.date(2024, 3, 1)


@pytest.mark.parametrize("removed_on, finding", [
    ("2024-06-30", ("DEPRECATED_REMOVED_EARLY", "bpf_foo", "violation")),  # the last day of the notice
    ("2024-07-01", ("KFUNC_REMOVED", "bpf_foo", "info")),  # the day it ends: removal allowed
])
def test_notice_period_end_day(tmp_path, removed_on, finding):
    # deprecated since 2024-01-01 with a 6-month notice: it ends 2024-07-01
    base = kernel({"bpf_foo": FOO, "bpf_bar": FOO})
    b = pair(tmp_path, {HELPERS: base, MANIFEST: "kfuncs:\n  bpf_foo:\n    stability: deprecated\n    since: 2024-01-01\n"},
             {HELPERS: kernel({"bpf_bar": FOO})}, base_day="2024-01-07", head_day=removed_on)
    assert triples(audit(b, Policy(notice_period=parse_window("6m", "x")))) == [finding]


@pytest.mark.parametrize("today, days", [
    ("2028-10-08", None),  # 91 days before the end: beyond the 90-day horizon
    ("2028-10-09", 90),  # exactly the horizon
    ("2029-01-06", 1),
    ("2029-01-07", None),  # the end day: the promise is over, nothing is ending any more
])
def test_expiry_horizon_days(tmp_path, today, days):
    # stable since v6.8 (2024-01-07): the window ends 2029-01-07
    b = pair(tmp_path, {HELPERS: kernel({"bpf_foo": FOO}), MANIFEST: STABLE}, {"README": "x"})
    result = audit(b, base=None, today=dt.date.fromisoformat(today))
    got = [(f.rule, f.verdict, f.message) for f in result.findings]
    assert got == ([("PROMISE_EXPIRING", "notice", f"stable window ends 2029-01-07 ({days} days)")] if days else [])
