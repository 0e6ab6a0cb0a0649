"""policybot audit on histories the tests build: dates, windows, every rule, acks, bad input."""

import datetime as dt
import json
import re

import pytest

from policybot.cli import main
from policybot.errors import ConfigError
from policybot.gitbuild import HistoryBuilder
from kit.trees import BTF_H, FOO, MANIFEST, kernel, manifest
from policybot.kernel.scanner import Scanner
from policybot.policy.audit import Auditor
from policybot.policy.config import Policy, load_policy, parse_window
from policybot.policy.calendar import ReleaseCalendar, add_months
from policybot.model.vocabulary import LEVEL_KEYS, VERDICTS
from policybot.policy.rules import catalogue



def history(tmp_path, base_files, head_files, base_date="2022-12-11", head_date="2023-02-19",
            head_message="change"):
    b = HistoryBuilder(tmp_path / "repo")
    b.commit({"include/linux/btf.h": BTF_H, **base_files}, "base", base_date + "T12:00:00")
    b.tag("v6.1")
    b.commit(head_files, head_message, head_date + "T12:00:00")
    b.tag("v6.2")
    return b


def audit(b, policy=None, base="v6.1", head="v6.2", today=None):
    scanner = Scanner(b.repo)
    return Auditor(b.repo, scanner, policy or Policy(), today).audit(head, base)


def triples(result):
    return {(f.rule, f.kfunc, f.verdict) for f in result.findings}


# -- the catalogue -------------------------------------------------------------------

# every rule, written out: a rule added to or dropped from rules.toml must be added here too
ALL_RULES = """KFUNC_REMOVED KFUNC_RENAMED KFUNC_PARAM_ADDED KFUNC_PARAM_REMOVED KFUNC_PARAM_TYPE_CHANGED
KFUNC_RETURN_TYPE_CHANGED KFUNC_SIGNEDNESS_CHANGED KFUNC_PARAM_ANNOTATION_TIGHTENED KFUNC_FLAGS_TIGHTENED
KFUNC_FLAGS_RELAXED KFUNC_NEEDS_REVIEW KFUNC_DEFAULT_CHANGED KFUNC_SUFFIX_RENAMED KFUNC_PROG_TYPE_DROPPED
KFUNC_FILTER_ADDED KFUNC_CONFIG_GUARD_ADDED KFUNC_MOVED STABILITY_DEMOTED DEPRECATION_STARTED DEPRECATED_REMOVED_EARLY
PROMISE_EXPIRING LEDGER_DUE LEDGER_OVERDUE LEDGER_FUTURE LEDGER_WITHDRAWN DECLARATION_UNKNOWN_KFUNC DECLARATION_CONFLICT
DECLARATION_INVALID EXTERN_MISSING EXTERN_INCOMPATIBLE
EXTERN_UNRESOLVED EXTERN_DEPRECATED EXTERN_WITHOUT_BTF EXTERN_DEAD_FALLBACK""".split()


def test_catalogue_is_complete():
    rules = catalogue()
    assert sorted(rules) == sorted(ALL_RULES)
    for r in rules.values():
        assert set(r.verdict) == set(LEVEL_KEYS), r.id
        assert all(v in VERDICTS + ("none",) for v in r.verdict.values()), r.id
        assert r.summary and r.hint and r.reference


def test_audit_against_itself_finds_nothing(tmp_path):
    b = history(tmp_path, {"kernel/bpf/helpers.c": kernel({"bpf_foo": FOO}), MANIFEST: manifest(bpf_foo="stable")},
                {"README": "unrelated"})
    assert audit(b, base="v6.2", head="v6.2").findings == []
    assert audit(b).findings == []


# -- promise dates and windows -------------------------------------------------------------

def test_promise_date_from_annotated_and_lightweight_tags(tmp_path):
    b = HistoryBuilder(tmp_path / "repo")
    b.commit({"a": "1"}, "one", "2022-01-01T00:00:00")
    c1 = b.head
    b.commit({"a": "2"}, "two", "2022-02-01T00:00:00")
    b.tag("v6.0", annotated=False)  # lightweight: the commit's date
    b.commit({"a": "3"}, "three", "2022-03-01T00:00:00")
    c3 = b.head
    b.commit({"a": "4"}, "four", "2022-04-01T00:00:00")
    b.tag("v6.1", when="2022-04-10T00:00:00")  # annotated: the tagger's date
    b.tag("v6.1-rc1", annotated=False)  # not a release
    h = ReleaseCalendar(b.repo)
    assert [r.name for r in h.releases()] == ["v6.0", "v6.1"]
    p1 = h.promise_date(str(c1), "release")
    assert (p1.release, p1.date) == ("v6.0", dt.date(2022, 2, 1))
    p3 = h.promise_date(str(c3), "release")
    assert (p3.release, p3.date) == ("v6.1", dt.date(2022, 4, 10))
    assert h.promise_date(str(c3), "commit").date == dt.date(2022, 3, 1)
    b.commit({"a": "5"}, "five", "2022-05-01T00:00:00")
    assert h.promise_date(str(b.head), "release").how.startswith("fallback")


def test_windows_duration_releases_and_longer_wins(tmp_path):
    b = HistoryBuilder(tmp_path / "repo")
    for i, month in enumerate((1, 3, 5, 7)):
        b.commit({"a": str(i)}, str(i), f"2023-{month:02d}-01T00:00:00")
        b.tag(f"v6.{i}")
    h = ReleaseCalendar(b.repo)
    start = dt.date(2023, 1, 1)
    assert h.window_end(start, parse_window("18m", "x")).date == dt.date(2024, 7, 1)
    by_rel = h.window_end(start, parse_window("2 releases", "x"))
    assert (by_rel.date, by_rel.estimated) == (dt.date(2023, 5, 1), False)
    est = h.window_end(start, parse_window("5 releases", "x"))
    assert est.estimated and est.date == dt.date(2023, 7, 1) + dt.timedelta(days=63 * 2)
    both = h.window_end(start, parse_window(["1m", "3 releases"], "x"))
    assert both.date == dt.date(2023, 7, 1)  # the releases are longer
    assert add_months(dt.date(2024, 1, 31), 1) == dt.date(2024, 2, 29)


@pytest.mark.parametrize("days_after_end, verdict", [(-1, "violation"), (1, "warning")])
def test_removal_one_day_before_and_after_window(tmp_path, days_after_end, verdict):
    # declared stable since 2020-03-01 with a 2y window: ends 2022-03-01
    end = dt.date(2022, 3, 1)
    when = (end + dt.timedelta(days=days_after_end)).isoformat()
    b = history(tmp_path, {"kernel/bpf/helpers.c": kernel({"bpf_foo": FOO, "bpf_bar": FOO}),
                           MANIFEST: manifest(bpf_foo=("stable", "2020-03-01"))},
                {"kernel/bpf/helpers.c": kernel({"bpf_bar": FOO})}, base_date="2021-01-01", head_date=when)
    result = audit(b, Policy(stable_window=parse_window("2y", "x")))
    assert ("KFUNC_REMOVED", "bpf_foo", verdict) in triples(result)


def test_promise_date_found_in_history(tmp_path):
    b = HistoryBuilder(tmp_path / "repo")
    src = kernel({"bpf_foo": FOO, "bpf_bar": FOO})
    b.commit({"include/linux/btf.h": BTF_H, "kernel/bpf/helpers.c": src}, "one", "2019-01-01T00:00:00")
    b.tag("v5.0")
    b.commit({MANIFEST: manifest(bpf_foo="stable")}, "declare", "2019-02-01T00:00:00")
    b.commit({"x": "1"}, "other", "2019-02-15T00:00:00")
    b.tag("v5.1", when="2019-03-03T00:00:00")
    b.commit({"x": "2"}, "more", "2021-01-01T00:00:00")
    b.tag("v5.11")
    b.commit({"kernel/bpf/helpers.c": kernel({"bpf_bar": FOO})}, "remove", "2024-03-04T00:00:00")
    b.tag("v6.8")
    result = audit(b, base="v5.11", head="v6.8")
    f = next(f for f in result.findings if f.rule == "KFUNC_REMOVED")
    assert f.promise.since.release == "v5.1" and f.promise.since.date == dt.date(2019, 3, 3)
    assert f.promise.ends.date == dt.date(2024, 3, 3)
    assert f.verdict == "warning"  # removed one day after the 5-year window
    commit_policy = Policy(date_from="commit")
    f2 = next(f for f in audit(b, commit_policy, "v5.11", "v6.8").findings if f.rule == "KFUNC_REMOVED")
    assert f2.promise.since.date == dt.date(2019, 2, 1)
    assert f2.promise.ends.date == dt.date(2024, 2, 1) and f2.verdict == "warning"


# -- rules -----------------------------------------------------------------------

def test_rename_is_one_finding(tmp_path):
    b = history(tmp_path, {"kernel/bpf/helpers.c": kernel({"bpf_foo": FOO}), MANIFEST: manifest(bpf_foo="stable")},
                {"kernel/bpf/helpers.c": kernel({"bpf_foo_new": FOO})})
    result = audit(b)
    assert triples(result) == {("KFUNC_RENAMED", "bpf_foo", "violation")}
    assert "bpf_foo_new" in result.findings[0].message


def test_signature_changes(tmp_path):
    base = {"bpf_a": FOO, "bpf_b": FOO, "bpf_c": FOO, "bpf_d": FOO, "bpf_e": FOO, "bpf_f": FOO}
    head = {"bpf_a": "int|struct task_struct *p, u32 flags, u64 more",
            "bpf_b": "int|struct task_struct *p",
            "bpf_c": "int|struct cgroup *p, u32 flags",
            "bpf_d": "int|struct task_struct *p, u64 flags",
            "bpf_e": "void *|struct task_struct *p, u32 flags",
            "bpf_f": "int|const struct task_struct *task, u32 flags"}
    b = history(tmp_path, {"kernel/bpf/helpers.c": kernel(base), MANIFEST: manifest(**{k: "stable" for k in base})},
                {"kernel/bpf/helpers.c": kernel(head)})
    assert triples(audit(b)) == {
        ("KFUNC_PARAM_ADDED", "bpf_a", "violation"),
        ("KFUNC_PARAM_REMOVED", "bpf_b", "violation"),
        ("KFUNC_PARAM_TYPE_CHANGED", "bpf_c", "violation"),
        ("KFUNC_NEEDS_REVIEW", "bpf_d", "notice"),  # integer width only: a question
        ("KFUNC_RETURN_TYPE_CHANGED", "bpf_e", "violation"),
        # bpf_f: const added and a parameter renamed: harmless, no finding
    }


# each flag in each direction, with the expected effect written out: tests/test_judging_tables.py


def test_trusted_args_becoming_the_default_is_no_change(tmp_path):
    # 7.0: KF_TRUSTED_ARGS's behaviour is the default and the flag is gone from btf.h
    b = history(tmp_path, {"kernel/bpf/helpers.c": kernel({"bpf_foo": (FOO, "KF_TRUSTED_ARGS")}),
                           MANIFEST: manifest(bpf_foo="stable")},
                {"kernel/bpf/helpers.c": kernel({"bpf_foo": (FOO, None)}),
                 "include/linux/btf.h": BTF_H.replace("#define KF_TRUSTED_ARGS (1 << 4)\n", "")})
    assert audit(b).findings == []


SUFFIX_CASES = [
    ("u32 sz", "u32 sz__k", "KFUNC_PARAM_ANNOTATION_TIGHTENED"),
    ("u32 sz", "u32 sz__szk", "KFUNC_PARAM_ANNOTATION_TIGHTENED"),
    ("const char *s", "const char *s__str", "KFUNC_PARAM_ANNOTATION_TIGHTENED"),
    ("void *p", "void *p__uninit", "KFUNC_PARAM_ANNOTATION_TIGHTENED"),
    ("void *p__nullable", "void *p", "KFUNC_PARAM_ANNOTATION_TIGHTENED"),
    ("void *p__opt", "void *p", "KFUNC_PARAM_ANNOTATION_TIGHTENED"),
    ("void *p__ign", "void *p", "KFUNC_PARAM_ANNOTATION_TIGHTENED"),
    ("void *p__opt", "void *p__nullable", None),  # renamed in 7.0, same meaning
    ("void *p", "void *p__nullable", None),  # accepts more: no finding
    ("u32 count", "u32 n", None),  # plain rename: BTF ignores names
]


@pytest.mark.parametrize("old, new, rule", SUFFIX_CASES)
def test_each_suffix_change(tmp_path, old, new, rule):
    b = history(tmp_path, {"kernel/bpf/helpers.c": kernel({"bpf_foo": f"int|struct sock *sk, {old}"}),
                           MANIFEST: manifest(bpf_foo="stable")},
                {"kernel/bpf/helpers.c": kernel({"bpf_foo": f"int|struct sock *sk, {new}"})})
    assert triples(audit(b)) == ({(rule, "bpf_foo", "violation")} if rule else set())


def test_prog_type_dropped_and_unspec(tmp_path):
    b = history(tmp_path, {"kernel/bpf/helpers.c": kernel({"bpf_foo": FOO}, progs=("TRACING", "XDP")),
                           MANIFEST: manifest(bpf_foo="stable")},
                {"kernel/bpf/helpers.c": kernel({"bpf_foo": FOO}, progs=("TRACING",))})
    result = audit(b)
    assert triples(result) == {("KFUNC_PROG_TYPE_DROPPED", "bpf_foo", "violation")}
    assert "XDP" in result.findings[0].message
    b2 = history(tmp_path / "2", {"kernel/bpf/helpers.c": kernel({"bpf_foo": FOO}, progs=("TRACING",))},
                 {"kernel/bpf/helpers.c": kernel({"bpf_foo": FOO}, progs=("UNSPEC",))})
    assert audit(b2).findings == []  # UNSPEC covers every type


def test_config_guard_added(tmp_path):
    b = history(tmp_path, {"kernel/bpf/helpers.c": kernel({"bpf_foo": FOO}), MANIFEST: manifest(bpf_foo="stable")},
                {"kernel/bpf/helpers.c": kernel({"bpf_foo": (FOO, None, "CONFIG_BPF_EXTRA")})})
    assert triples(audit(b)) == {("KFUNC_CONFIG_GUARD_ADDED", "bpf_foo", "violation")}


def test_moved_is_info(tmp_path):
    src = kernel({"bpf_foo": FOO})
    b = history(tmp_path, {"kernel/bpf/helpers.c": src, MANIFEST: manifest(bpf_foo="stable")},
                {"kernel/bpf/helpers.c": None, "kernel/bpf/generic.c": src})
    assert triples(audit(b)) == {("KFUNC_MOVED", "bpf_foo", "info")}


def test_unstable_changes_are_info(tmp_path):
    b = history(tmp_path, {"kernel/bpf/helpers.c": kernel({"bpf_foo": FOO, "bpf_bar": FOO})},
                {"kernel/bpf/helpers.c": kernel({"bpf_bar": FOO})})
    assert triples(audit(b)) == {("KFUNC_REMOVED", "bpf_foo", "info")}


# -- lifecycle -----------------------------------------------------------------------

def test_deprecation_notice_period(tmp_path):
    b = HistoryBuilder(tmp_path / "repo")
    src = kernel({"bpf_foo": FOO, "bpf_bar": FOO})
    b.commit({"include/linux/btf.h": BTF_H, "kernel/bpf/helpers.c": src, MANIFEST: manifest(bpf_foo="unstable")},
             "one", "2022-01-01T00:00:00")
    b.tag("v6.0")
    b.commit({MANIFEST: manifest(bpf_foo="deprecated")}, "deprecate", "2022-06-01T00:00:00")
    b.tag("v6.1")
    dep = audit(b, base="v6.0", head="v6.1")
    f = next(f for f in dep.findings if f.rule == "DEPRECATION_STARTED")
    assert f.verdict == "notice" and "earliest removal 2023-06-01" in f.message
    b.commit({"kernel/bpf/helpers.c": kernel({"bpf_bar": FOO}), MANIFEST: ""}, "remove early", "2023-05-31T00:00:00")
    b.tag("v6.2")
    early = audit(b, base="v6.1", head="v6.2")
    assert ("DEPRECATED_REMOVED_EARLY", "bpf_foo", "violation") in triples(early)
    b.commit({"x": "1"}, "later", "2023-06-02T00:00:00")
    b.tag("v6.3")
    on_time = audit(b, base="v6.1", head="v6.3")
    assert ("KFUNC_REMOVED", "bpf_foo", "info") in triples(on_time)


def test_deprecated_kept_until_stable_window_ends(tmp_path):
    b = HistoryBuilder(tmp_path / "repo")
    src = kernel({"bpf_foo": FOO, "bpf_bar": FOO})
    b.commit({"include/linux/btf.h": BTF_H, "kernel/bpf/helpers.c": src, MANIFEST: manifest(bpf_foo="stable")},
             "stable", "2022-01-01T00:00:00")
    b.tag("v6.0")
    b.commit({MANIFEST: manifest(bpf_foo="deprecated")}, "deprecate", "2022-06-01T00:00:00")
    b.tag("v6.1")
    b.commit({"kernel/bpf/helpers.c": kernel({"bpf_bar": FOO})}, "remove", "2024-01-01T00:00:00")
    b.tag("v6.8")
    # notice period (12m) is over, but the stable window (5y from 2022-01-01) is not
    result = audit(b, base="v6.1", head="v6.8")
    f = next(f for f in result.findings if f.kfunc == "bpf_foo" and f.rule == "DEPRECATED_REMOVED_EARLY")
    assert f.verdict == "violation" and f.promise.ends.date == dt.date(2027, 1, 1)


def test_demotion(tmp_path):
    b = history(tmp_path, {"kernel/bpf/helpers.c": kernel({"bpf_foo": FOO}), MANIFEST: manifest(bpf_foo="stable")},
                {MANIFEST: manifest(bpf_foo="unstable")})
    assert triples(audit(b)) == {("STABILITY_DEMOTED", "bpf_foo", "violation")}


def test_promise_expiring_in_current_state(tmp_path):
    b = history(tmp_path, {"kernel/bpf/helpers.c": kernel({"bpf_foo": FOO}), MANIFEST: manifest(bpf_foo="stable")},
                {"README": "x"})
    auditor = Auditor(b.repo, Scanner(b.repo), Policy(), dt.date(2027, 10, 1))
    assert triples(auditor.audit("v6.2")) == {("PROMISE_EXPIRING", "bpf_foo", "notice")}
    auditor = Auditor(b.repo, Scanner(b.repo), Policy(), dt.date(2027, 1, 1))
    assert auditor.audit("v6.2").findings == []


# -- declarations ---------------------------------------------------------------------

def test_conflict_unknown_and_invalid_declarations(tmp_path):
    src = kernel({"bpf_foo": FOO}).replace("__bpf_kfunc int bpf_foo",
                                           "/**\n * bpf_foo - Foo.\n *\n * Stability: unstable\n */\n__bpf_kfunc int bpf_foo")
    b = history(tmp_path, {"kernel/bpf/helpers.c": src, MANIFEST: manifest(bpf_foo="stable", bpf_nope="stable")},
                {"README": "x"})
    result = Auditor(b.repo, Scanner(b.repo), Policy()).audit("v6.2")
    assert triples(result) == {("DECLARATION_CONFLICT", "bpf_foo", "warning"),
                               ("DECLARATION_UNKNOWN_KFUNC", "bpf_nope", "warning")}
    unknown = next(f for f in result.findings if f.rule == "DECLARATION_UNKNOWN_KFUNC")
    assert str(unknown.location) == f"{MANIFEST}:4"
    b2 = history(tmp_path / "2", {"kernel/bpf/helpers.c": src, MANIFEST: "kfuncs:\n  bpf_foo: [unclosed\n"},
                 {"README": "x"})
    bad = Auditor(b2.repo, Scanner(b2.repo), Policy()).audit("v6.2")
    assert [(f.rule, str(f.location)) for f in bad.findings] == [("DECLARATION_INVALID", f"{MANIFEST}:3")]


def test_overlay_globs_and_typo(tmp_path):
    b = history(tmp_path, {"kernel/bpf/helpers.c": kernel({"bpf_foo": FOO, "bpf_bar": FOO})},
                {"kernel/bpf/helpers.c": kernel({"bpf_bar": FOO})})
    (tmp_path / "overlay.yaml").write_text('paths:\n  "kernel/bpf/*.c":\n    stability: stable\n    since: v6.1\n')
    (tmp_path / "policy.toml").write_text('[declarations]\noverlay = "overlay.yaml"\n')
    result = audit(b, load_policy(tmp_path / "policy.toml"))
    assert triples(result) == {("KFUNC_REMOVED", "bpf_foo", "violation")}
    assert result.findings[0].promise.declaration.source == "overlay"
    (tmp_path / "overlay.yaml").write_text("kfuncs:\n  bpf_foo:\n    stability: stabel\n")
    with pytest.raises(ConfigError, match=r"overlay.yaml:3: bpf_foo: stability must be one of"):
        audit(b, load_policy(tmp_path / "policy.toml"))


@pytest.mark.parametrize("text, message", [
    ('[windows]\nstable = "5 yrs"\n', r"policy.toml:2: windows.stable: expected a window"),
    ('[audit]\ninclude_test = true\n', r"policy.toml:2: audit.include_test: unknown key"),
    ('[[allow]]\nkfunc = "x"\n', r"policy.toml:1: allow\[0\]: missing rule, reason, expires"),
    ('[windows\n', r"policy.toml: .*line 1"),
])
def test_policy_errors_name_key_and_line(tmp_path, text, message):
    (tmp_path / "policy.toml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_policy(tmp_path / "policy.toml")


# -- acknowledged breaks ----------------------------------------------------------------

MAINTAINERS = "BPF\nM:\tAlexei Starovoitov <ast@kernel.org>\nL:\tbpf@vger.kernel.org\nS:\tSupported\nF:\tkernel/bpf/\n"


@pytest.mark.parametrize("acker, acked", [("Alexei Starovoitov <ast@kernel.org>", True),
                                          ("Random Person <random@example.org>", False)])
def test_acknowledged_by_trailer(tmp_path, acker, acked):
    b = history(tmp_path, {"kernel/bpf/helpers.c": kernel({"bpf_foo": FOO, "bpf_bar": FOO}),
                           MANIFEST: manifest(bpf_foo="stable"), "MAINTAINERS": MAINTAINERS},
                {"kernel/bpf/helpers.c": kernel({"bpf_bar": FOO})},
                head_message=f"bpf: drop bpf_foo\n\nKfunc-Break-Acked-by: {acker}\nSigned-off-by: X <x@y.z>\n")
    result = audit(b)
    f = next(f for f in result.findings if f.rule == "KFUNC_REMOVED")
    assert bool(f.acknowledged) == acked
    assert result.worst() == (None if acked else "violation")


@pytest.mark.parametrize("expires, acked", [("2099-01-01", True), ("2023-01-01", False)])
def test_allowlist_entry_and_expiry(tmp_path, expires, acked):
    b = history(tmp_path, {"kernel/bpf/helpers.c": kernel({"bpf_foo": FOO, "bpf_bar": FOO}),
                           MANIFEST: manifest(bpf_foo="stable")},
                {"kernel/bpf/helpers.c": kernel({"bpf_bar": FOO})})
    (tmp_path / "policy.toml").write_text(
        f'[[allow]]\nkfunc = "bpf_foo"\nrule = "KFUNC_REMOVED"\nreason = "agreed on list"\nexpires = {expires}\n')
    result = audit(b, load_policy(tmp_path / "policy.toml"), today=dt.date(2024, 1, 1))
    f = next(f for f in result.findings if f.rule == "KFUNC_REMOVED")
    assert bool(f.acknowledged) == acked
    if acked:  # what mail needs, apart from the operator's file (the text keeps it)
        assert (f.ack.kind, f.ack.reason, f.ack.until) == ("allowlist", "agreed on list", dt.date(2099, 1, 1))
        assert f.acknowledged == f"allowlist ({tmp_path / 'policy.toml'}:1): agreed on list"
    if not acked:
        assert any("expired on 2023-01-01" in n for n in f.notes)


# -- the command ---------------------------------------------------------------------------

def test_cli_audit_text_json_exit_codes(tmp_path, capsys):
    history(tmp_path, {"kernel/bpf/helpers.c": kernel({"bpf_foo": FOO, "bpf_bar": FOO}),
                           MANIFEST: manifest(bpf_foo="stable")},
                {"kernel/bpf/helpers.c": kernel({"bpf_bar": FOO})})
    repo = str(tmp_path / "repo")
    assert main(["audit", "--repo", repo, "--base", "v6.1", "--rev", "v6.2"]) == 1
    out = capsys.readouterr().out
    assert re.search(r"^kernel/bpf/helpers\.c:\d+: violation\[KFUNC_REMOVED\]: bpf_foo ", out, re.M)
    assert out.rstrip().endswith("audit v6.1..v6.2: 1 violation, 0 warnings, 0 notices, 0 infos")
    assert main(["audit", "--repo", repo, "--base", "v6.1", "--rev", "v6.2", "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["counts"]["violation"] == 1 and doc["findings"][0]["declaration"]["since"]["release"] == "v6.1"
    assert main(["audit", "--repo", repo, "--base", "v6.1", "--rev", "v6.2", "--fail-on", "never"]) == 0
    capsys.readouterr()
    assert main(["audit", "--repo", repo, "--base", "v9", "--rev", "v6.2"]) == 2
    assert "unknown revision 'v9'" in capsys.readouterr().err
    assert main(["audit", "--repo", repo, "--rev", "v6.2", "--fail-on", "bad"]) == 2


def test_base_not_ancestor_is_said(tmp_path):
    b = HistoryBuilder(tmp_path / "repo")
    b.commit({"kernel/bpf/helpers.c": kernel({"bpf_foo": FOO})}, "one", "2023-01-01T00:00:00")
    root = b.head
    b.commit({"x": "1"}, "two", "2023-02-01T00:00:00")
    b.tag("v6.1")
    b.commit({"x": "2"}, "side", "2023-03-01T00:00:00", parents=[root])
    b.tag("v6.2")
    result = audit(b)
    assert any("is not an ancestor" in n for n in result.notes)


def test_overlay_most_specific_entry_wins(tmp_path):
    # each kfunc in a set of its own: three removals, three causes, each judged by its own entry
    def own(name: str, kfuncs: dict) -> str:
        return kernel(kfuncs).replace("generic_", f"{name}_")
    names = ("bpf_foo", "bpf_bar", "bpf_baz")
    b = history(tmp_path, {f"kernel/bpf/{n}.c": own(n, {n: FOO}) for n in names},
                {f"kernel/bpf/{n}.c": own(n, {}) for n in names})
    (tmp_path / "overlay.yaml").write_text(
        'paths:\n  "kernel/bpf/":\n    stability: stable\n'
        'kfuncs:\n  "bpf_ba*":\n    stability: deprecating\n  bpf_baz:\n    stability: unstable\n')
    (tmp_path / "policy.toml").write_text('[declarations]\noverlay = "overlay.yaml"\n')
    result = audit(b, load_policy(tmp_path / "policy.toml"))
    assert triples(result) == {("KFUNC_REMOVED", "bpf_foo", "violation"),  # path: stable
                               ("KFUNC_REMOVED", "bpf_bar", "violation"),  # glob: deprecating
                               ("KFUNC_REMOVED", "bpf_baz", "info")}  # exact name: unstable
    levels = {f.kfunc: f.promise.declaration.level for f in result.findings if f.promise}
    assert levels == {"bpf_foo": "stable", "bpf_bar": "deprecating", "bpf_baz": "unstable"}


def test_promise_date_through_a_merge(tmp_path):
    """A declaration made on a side branch counts from the first release after its merge."""
    b = HistoryBuilder(tmp_path / "repo")
    b.commit({"include/linux/btf.h": BTF_H, "kernel/bpf/helpers.c": kernel({"bpf_foo": FOO, "bpf_bar": FOO})},
             "one", "2022-01-01T00:00:00")
    b.tag("v6.0")
    root = b.head
    b.commit({"README": "mainline work"}, "mainline", "2022-02-01T00:00:00")
    main_tip = b.head
    side = b.commit({MANIFEST: manifest(bpf_foo="stable"), "README": "mainline work"}, "declare (side branch)",
                    "2022-02-15T00:00:00", parents=[root])
    b.commit({MANIFEST: manifest(bpf_foo="stable"), "README": "mainline work"}, "Merge branch 'bpf-next'",
             "2022-03-01T00:00:00", parents=[main_tip, side])
    b.tag("v6.1", when="2022-03-20T00:00:00")
    b.commit({"kernel/bpf/helpers.c": kernel({"bpf_bar": FOO})}, "remove", "2023-01-01T00:00:00")
    b.tag("v6.2")
    f = next(f for f in audit(b, base="v6.1", head="v6.2").findings if f.rule == "KFUNC_REMOVED")
    # the first-parent line meets the declaration at the merge; v6.1 is the first release holding it
    assert (f.promise.since.release, f.promise.since.date) == ("v6.1", dt.date(2022, 3, 20))
    assert f.verdict == "violation"
