"""Each rule of rules.toml carries its family and its message templates (issue 13).

The families and the fields each template writes are stated here, literally,
as the detectors fill them in (policy/diff.py, audit.py, declarations.py,
check.py, app/series.py): a template that writes a field its detector does not
pass, or stops writing one, fails here before it fails in a mail. The exact
texts of the findings are tests/test_rules.py's.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from policybot.cli import main
from policybot.policy.rules import DEFAULT_VARIANT, MessageError, _messages, catalogue, render_message, \
    template_fields
from policybot.model.vocabulary import RuleFamily

RULES_TOML = Path(__file__).resolve().parent.parent / "policybot" / "policy" / "rules.toml"

FAMILY = {
    "KFUNC_REMOVED": "removal", "KFUNC_RENAMED": "removal", "DEPRECATED_REMOVED_EARLY": "removal",
    "KFUNC_PARAM_ADDED": "signature", "KFUNC_PARAM_REMOVED": "signature", "KFUNC_PARAM_TYPE_CHANGED": "signature",
    "KFUNC_RETURN_TYPE_CHANGED": "signature", "KFUNC_SIGNEDNESS_CHANGED": "signature",
    "KFUNC_PARAM_ANNOTATION_TIGHTENED": "signature",
    "KFUNC_FLAGS_TIGHTENED": "flags", "KFUNC_FLAGS_RELAXED": "flags",
    "KFUNC_NEEDS_REVIEW": "semantics", "KFUNC_DEFAULT_CHANGED": "semantics", "KFUNC_SUFFIX_RENAMED": "semantics",
    "KFUNC_PROG_TYPE_DROPPED": "registration", "KFUNC_FILTER_ADDED": "registration",
    "KFUNC_CONFIG_GUARD_ADDED": "build", "KFUNC_MOVED": "location",
    "STABILITY_DEMOTED": "lifecycle", "DEPRECATION_STARTED": "lifecycle", "PROMISE_EXPIRING": "lifecycle",
    "DECLARATION_UNKNOWN_KFUNC": "declaration", "DECLARATION_CONFLICT": "declaration",
    "DECLARATION_INVALID": "declaration",
    "EXTERN_MISSING": "object", "EXTERN_INCOMPATIBLE": "object", "EXTERN_UNRESOLVED": "object",
    "EXTERN_DEPRECATED": "object", "EXTERN_WITHOUT_BTF": "object", "EXTERN_DEAD_FALLBACK": "object",
    "LEDGER_DUE": "ledger", "LEDGER_OVERDUE": "ledger", "LEDGER_FUTURE": "ledger", "LEDGER_WITHDRAWN": "ledger",
}

_PARAM = {"index", "name", "new", "old"}
_RENAMED_PARAM = {"index", "new_name", "old_name"}
_DEPRECATION = {"level", "removal", "source"}
_EXTERN_DEPRECATED = {"extern", "level", "target"}

# rule -> message variant ("" for a rule with one message) -> the fields its detector passes
FIELDS = {
    "KFUNC_REMOVED": {"registry": set(), "diff_text": set()},
    "KFUNC_RENAMED": {"old": {"new_name"}, "new": {"new_name", "old_name"}},
    "KFUNC_PARAM_ADDED": {"": {"count", "new_params", "old_count", "old_params", "s"}},
    "KFUNC_PARAM_REMOVED": {"": {"count", "new_params", "old_count", "old_params", "s"}},
    "KFUNC_PARAM_TYPE_CHANGED": {"": _PARAM},
    "KFUNC_RETURN_TYPE_CHANGED": {"": {"new", "old"}},
    "KFUNC_SIGNEDNESS_CHANGED": {"return": {"new", "old"}, "param": _PARAM},
    "KFUNC_PARAM_ANNOTATION_TIGHTENED": {"known_constant": _RENAMED_PARAM, "constant_string": _RENAMED_PARAM,
                                         "uninitialised": _RENAMED_PARAM,
                                         "narrower": _RENAMED_PARAM | {"old_suffix"}},
    "KFUNC_FLAGS_TIGHTENED": {"registry": {"deltas"}, "diff_text": {"deltas"}},
    "KFUNC_FLAGS_RELAXED": {"compatible": {"deltas"}, "untested": {"deltas"}},
    "KFUNC_NEEDS_REVIEW": {
        "return_width": {"new", "old"}, "param_width": _PARAM, "annotation": _RENAMED_PARAM,
        "flags": {"deltas"}, "flags_diff_text": {"deltas"},
        "retired_flag": {"btf_h", "definition", "flag", "rev"},
        "new_flag": {"definition", "flag"}, "new_flag_bit": {"bit", "definition", "flag"},
        "retired_suffix": {"definition", "suffix"}, "new_suffix": {"definition", "suffix"}},
    "KFUNC_DEFAULT_CHANGED": {"": {"btf_h", "definition", "exempt", "flag", "meaning", "rev"}},
    "KFUNC_SUFFIX_RENAMED": {"": {"definition", "same_as", "same_as_location", "suffix"}},
    "KFUNC_PROG_TYPE_DROPPED": {"types": {"prog_types"}, "all_but": {"kept"}, "all": set()},
    "KFUNC_FILTER_ADDED": {"new": {"filter", "path"}, "replaced": {"before", "filter", "path"}},
    "KFUNC_CONFIG_GUARD_ADDED": {"": {"guards"}},
    "KFUNC_MOVED": {"registered": {"new_files", "old_files"}, "defined": {"new_path", "old_path"}},
    "STABILITY_DEMOTED": {"demoted": {"level", "old_level"}, "undeclared": set()},
    "DEPRECATION_STARTED": {"plain": _DEPRECATION, "replacement": _DEPRECATION | {"replacement"},
                            "note": _DEPRECATION | {"note"}},
    "DEPRECATED_REMOVED_EARLY": {"": set()},
    "PROMISE_EXPIRING": {"stable_window": {"days", "ends"}, "notice_period": {"days", "ends"}},
    "DECLARATION_UNKNOWN_KFUNC": {"": {"level"}},
    "DECLARATION_CONFLICT": {"": {"level", "source", "winner", "winner_level", "winner_location"}},
    "DECLARATION_INVALID": {
        "yaml": {"problem"}, "yaml_alias": set(), "yaml_depth": {"depth"}, "not_mapping": set(),
        "key_not_plain": set(), "unknown_key": {"expected", "key"}, "section_not_mapping": {"key"},
        "name_not_plain": set(), "entry_not_mapping": {"kfunc"}, "field_not_plain": {"field", "kfunc"},
        "field_key_not_plain": {"kfunc"}, "unknown_field": {"field", "kfunc", "known"},
        "bad_level": {"got", "kfunc", "levels"}, "bad_version": {"kfunc"},
        "kernel_doc_level": {"level", "levels"}, "too_large": {"limit", "size"}},
    "LEDGER_DUE": {"same": {"release", "text"}, "renamed": {"named", "release", "text"}},
    "LEDGER_OVERDUE": {"same": {"current", "release", "text"}, "renamed": {"current", "named", "release", "text"}},
    "LEDGER_FUTURE": {"same": {"text"}, "renamed": {"named", "release", "text"}},
    "LEDGER_WITHDRAWN": {"same": {"release", "text", "what"}, "renamed": {"named", "release", "text", "what"}},
    "EXTERN_MISSING": {"": {"extern", "reason"}},
    "EXTERN_INCOMPATIBLE": {"": {"extern", "prototype", "reason", "target"}},
    "EXTERN_UNRESOLVED": {"": {"extern", "reason"}},
    "EXTERN_DEPRECATED": {"plain": _EXTERN_DEPRECATED, "replacement": _EXTERN_DEPRECATED | {"replacement"},
                          "removal": _EXTERN_DEPRECATED | {"removal"},
                          "replacement_removal": _EXTERN_DEPRECATED | {"removal", "replacement"}},
    "EXTERN_WITHOUT_BTF": {"": {"symbol"}},
    "EXTERN_DEAD_FALLBACK": {"": {"count", "extern", "reasons"}},
}


def test_every_rule_has_its_family_from_the_enum():
    raw = tomllib.loads(RULES_TOML.read_text())
    assert set(raw) == set(FAMILY)
    for rid, table in raw.items():
        assert table["family"] in {f.value for f in RuleFamily}, rid
        assert catalogue()[rid].family is RuleFamily(FAMILY[rid]), rid


def test_every_family_names_some_rule():
    assert {f.value for f in RuleFamily} == set(FAMILY.values())


def test_templates_write_exactly_the_fields_their_detectors_pass():
    rules = catalogue()
    assert set(rules) == set(FIELDS)
    for rid, rule in rules.items():
        assert set(rule.messages) == set(FIELDS[rid]), rid
        for variant, template in rule.messages.items():
            assert template_fields(template) == FIELDS[rid][variant], (rid, variant)


def test_a_rule_has_one_message_or_named_variants():
    raw = tomllib.loads(RULES_TOML.read_text())
    for rid, table in raw.items():
        assert ("message" in table) != ("messages" in table), rid
        if "messages" in table:
            assert len(table["messages"]) > 1 and DEFAULT_VARIANT not in table["messages"], rid
    with pytest.raises(MessageError, match="exactly one of message and messages"):
        _messages("X", {"message": "a", "messages": {"b": "c"}})
    with pytest.raises(MessageError, match="exactly one of message and messages"):
        _messages("X", {})


def test_render_message_fills_in_the_fields():
    assert render_message("KFUNC_PARAM_ADDED", count=1, s="", old_count=0, old_params="void",
                          new_params="int x") == "takes 1 parameter instead of 0: (void) became (int x)"
    assert render_message("KFUNC_FLAGS_TIGHTENED", "registry", deltas="+KF_ACQUIRE -KF_RCU") == \
        "flags +KF_ACQUIRE -KF_RCU: programs that verified before may be rejected"
    assert render_message("KFUNC_REMOVED", "diff_text") == \
        "is removed from its kfunc set (judged from the diff text: the patch does not apply)"
    assert render_message("EXTERN_DEPRECATED", "replacement_removal", extern="bpf_a", level="deprecated",
                          target="v7.2", replacement="bpf_b", removal="2027-01-01") == \
        "bpf_a is deprecated on v7.2; use bpf_b; removal not before 2027-01-01"


@pytest.mark.parametrize("args, fields, error", [
    (("KFUNC_NOPE",), {}, "no rule KFUNC_NOPE"),
    (("KFUNC_REMOVED", "nope"), {}, "KFUNC_REMOVED has no message 'nope'"),
    (("KFUNC_REMOVED",), {}, "KFUNC_REMOVED has no message ''"),  # a rule of variants has no default
    (("KFUNC_CONFIG_GUARD_ADDED", "registry"), {"guards": "x"}, "KFUNC_CONFIG_GUARD_ADDED has no message 'registry'"),
    (("KFUNC_CONFIG_GUARD_ADDED",), {}, r"writes \['guards'\], was given \[\]"),
    (("KFUNC_CONFIG_GUARD_ADDED",), {"guards": "x", "kfunc": "y"}, r"writes \['guards'\], was given \['guards', "),
])
def test_render_message_fails_loudly(args, fields, error):
    with pytest.raises(MessageError, match=error):
        render_message(*args, **fields)


def test_rules_lists_the_family(capsys):
    assert main(["rules"]) == 0
    lines = {ln.split()[0]: ln.split()[1] for ln in capsys.readouterr().out.splitlines()}
    assert lines == FAMILY
    assert main(["rules", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {r["id"]: r["family"] for r in data} == FAMILY
    removed = next(r for r in data if r["id"] == "KFUNC_REMOVED")
    assert removed["message"] is None
    assert removed["messages"]["registry"] == "is no longer in any registered kfunc set"


def test_explain_shows_family_and_templates(capsys):
    assert main(["explain", "kfunc_config_guard_added"]) == 0
    out = capsys.readouterr().out
    assert "\nfamily: build\n" in out
    assert "\nmessage:\n  now exists only with {guards}\n" in out
    assert main(["explain", "KFUNC_MOVED"]) == 0
    out = capsys.readouterr().out
    assert "\nfamily: location\n" in out
    assert ("\nmessages:\n  registered: registered in {new_files} instead of {old_files}\n"
            "  defined: defined in {new_path} instead of {old_path}\n") in out
    assert main(["explain", "KFUNC_MOVED", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["id"] == "KFUNC_MOVED" and data["family"] == "location" and data["message"] is None
    assert data["messages"] == {"registered": "registered in {new_files} instead of {old_files}",
                                "defined": "defined in {new_path} instead of {old_path}"}


# -- the wordings tests/test_rules.py's fixtures do not reach, each from its detector ----------------

def test_deprecation_with_a_note_and_without_anything(tmp_path):
    from kit.trees import FOO, HELPERS, MANIFEST, findings, kernel, pair
    for name, extra, said in (("note", "    note: use the map instead\n", "; use the map instead"),
                              ("plain", "", "")):
        head = f"kfuncs:\n  bpf_foo:\n    stability: deprecated\n{extra}"
        b = pair(tmp_path / name, {HELPERS: kernel({"bpf_foo": FOO})}, {MANIFEST: head}, "unstable")
        assert findings(b) == [("DEPRECATION_STARTED", "bpf_foo", "notice", f"{MANIFEST}:2",
                                f"declared deprecated (manifest){said}; earliest removal 2025-03-10")]


def test_flags_judged_from_the_diff_text(tmp_path):
    import datetime as dt
    from types import SimpleNamespace
    from policybot.app.series import judge_diff_text
    from policybot.kernel.scanner import Scanner
    from policybot.policy.audit import Auditor
    from policybot.policy.config import Policy
    from kit.trees import FOO, HEAD_DAY, HELPERS, kernel, pair
    b = pair(tmp_path, {HELPERS: kernel({"bpf_foo": FOO})}, {HELPERS: kernel({"bpf_foo": FOO})}, "stable")
    auditor = Auditor(b.repo, Scanner(b.repo), Policy(), dt.date.fromisoformat(HEAD_DAY))
    commit = b.repo.revparse_single("v6.8").peel(None)
    inv = auditor.scanner.inventory_of_commit(commit, "v6.8")
    patch = SimpleNamespace(diff=f"--- a/{HELPERS}\n+++ b/{HELPERS}\n@@ -99,3 +99,3 @@\n"
                                 "-BTF_ID_FLAGS(func, bpf_foo)\n"
                                 "+BTF_ID_FLAGS(func, bpf_foo, KF_SLEEPABLE | KF_MYSTERY)\n")
    promises = auditor.promises_at(inv, commit, dt.date.fromisoformat(HEAD_DAY))
    got = sorted((f.rule, f.verdict, f.message) for f in judge_diff_text(auditor, patch, inv, promises))
    judged = " (judged from the diff text: the patch does not apply)"
    assert got == [
        ("KFUNC_FLAGS_TIGHTENED", "violation", "flags +KF_SLEEPABLE" + judged),
        ("KFUNC_NEEDS_REVIEW", "notice",
         "flags +KF_MYSTERY: policybot does not know what the verifier does with this flag" + judged)]


def _kfunc(name="bpf_foo", prog_types=(), params=(), flags=()):
    from types import SimpleNamespace
    from policybot.model.inventory import Location
    loc = Location("kernel/bpf/helpers.c", 10)
    sig = SimpleNamespace(params=tuple(SimpleNamespace(type=t, name=n, suffix=s, c_text=f"{t} {n}")
                                       for t, n, s in params), return_type="int")
    return SimpleNamespace(name=name, prog_types=tuple(prog_types), location=loc, flags=tuple(flags),
                           definition=SimpleNamespace(location=loc, signature=sig))


def test_every_program_type_but_some():
    from policybot.policy.diff import prog_type_changes
    got = [c.message for c in prog_type_changes(_kfunc(prog_types=("UNSPEC",)),
                                                 _kfunc(prog_types=("XDP", "TRACING")))]
    assert got == ["no longer registered for every type but TRACING, XDP"]
    got = [c.message for c in prog_type_changes(_kfunc(prog_types=("UNSPEC",)), _kfunc(prog_types=()))]
    assert got == ["no longer registered for every type but none"]


def test_an_unknown_suffix_needs_review():
    from policybot.policy.diff import signature_changes
    a = _kfunc(params=(("u32", "size", ""),))
    b = _kfunc(params=(("u32", "size__mystery", "__mystery"),))
    assert [(c.rule, c.variant, c.message) for c in signature_changes(a, b)] == [
        ("KFUNC_NEEDS_REVIEW", "annotation", "parameter 1 'size' became 'size__mystery': argument annotation changed")]


def _semantics(flags: dict, suffixes: dict):
    """A tree's flags and suffixes as semantics_changes reads them: name -> (location, comment)."""
    from types import SimpleNamespace
    from policybot.model.inventory import Location

    def definition(table, name):
        if name not in table:
            return None
        path, line, comment = table[name]
        return SimpleNamespace(location=Location(path, line), comment=comment, bit=None)
    return SimpleNamespace(flags=flags, suffixes=suffixes, flag_names=tuple(flags), suffix_names=tuple(suffixes),
                           flag=lambda n: definition(flags, n), suffix=lambda n: definition(suffixes, n),
                           implicit_structs=None)


def test_a_retired_unknown_flag_and_suffix_and_a_new_flag_without_a_bit():
    from types import SimpleNamespace
    from policybot.policy.diff import semantics_changes
    base = SimpleNamespace(rev="v7.1", semantics=_semantics(
        {"KF_OLD": ("include/linux/btf.h", 80, "old flag")},
        {"__gone": ("kernel/bpf/verifier.c", 900, "")}))
    head = SimpleNamespace(rev="v7.2", semantics=_semantics({"KF_NEW": ("include/linux/btf.h", 81, "")}, {}))
    old = {"bpf_foo": _kfunc(flags=("KF_OLD",), params=(("int", "x__gone", "__gone"),))}
    new = {"bpf_foo": _kfunc(params=(("int", "x__gone", ""),))}
    got = [(c.rule, c.variant, c.message, c.kfuncs) for c in semantics_changes(base, head, old, new)]
    assert got == [
        ("KFUNC_NEEDS_REVIEW", "retired_flag", 'KF_OLD (include/linux/btf.h:80 (v7.1): "old flag") is no longer '
         "defined in include/linux/btf.h at v7.2: policybot does not know what became of its behaviour for the "
         "kfuncs that carried it", ("bpf_foo",)),
        ("KFUNC_NEEDS_REVIEW", "new_flag", "the tree defines a flag policybot does not know: KF_NEW, "
         "include/linux/btf.h:81 (v7.2)", ()),
        ("KFUNC_NEEDS_REVIEW", "retired_suffix", "the verifier no longer matches __gone (kernel/bpf/verifier.c:900 "
         "(v7.1)): policybot does not know what the verifier now does with parameters named so", ("bpf_foo",))]


@pytest.mark.parametrize("text, message", [
    ("- a\n", "expected a mapping with a 'kfuncs' key"),
    ("? [a]\n: 1\n", "a key must be a plain name, not a list or mapping"),
    ("kfunc: {}\n", "unknown key 'kfunc' (expected kfuncs)"),
    ("kfuncs: [a]\n", "'kfuncs' must be a mapping of names to declarations"),
    ("kfuncs:\n  bpf_foo: stable\n", "bpf_foo: expected a mapping with 'stability'"),
    ("kfuncs:\n  bpf_foo:\n    stability: stable\n    sine: v6.1\n",
     "bpf_foo: unknown field 'sine' (known: note, replacement, since, stability, version)"),
    ("kfuncs:\n  bpf_foo:\n    stability: stable\n    note: [x]\n",
     "bpf_foo: note must be a plain value, not a list or mapping"),
    ("kfuncs:\n  bpf_foo:\n    stability: stable\n    ? [k]\n    : v\n",
     "bpf_foo: a key must be a plain value, not a list or mapping"),
    ("kfuncs:\n  bpf_foo:\n    stability: solid\n",
     "bpf_foo: stability must be one of unstable, stable, deprecating, deprecated, got 'solid'"),
    ("kfuncs:\n  bpf_foo:\n    stability: stable\n    version: two\n", "bpf_foo: version must be a number"),
    ("kfuncs: &a\n  x: *a\n", "invalid YAML: aliases (*name) are not allowed in declarations"),
])
def test_manifest_problems(text, message):
    from policybot.policy.declarations import parse_declaration_yaml
    _, problems = parse_declaration_yaml(text, "kfunc-stability.yaml", overlay=False)
    assert [(p.rule, p.message) for p in problems] == [("DECLARATION_INVALID", message)]


def test_kernel_doc_with_an_unknown_level():
    from types import SimpleNamespace
    from policybot.policy.declarations import collect
    k = _kfunc()
    k.definition.doc = SimpleNamespace(stability="solid", deprecated=None, stability_line=7, deprecated_line=None,
                                       line=5, replacement=None)
    k.memberships, k.test = (), False
    inv = SimpleNamespace(selected=lambda include_tests: [k])
    _, problems = collect(inv, None, None)
    assert [(p.rule, str(p.location), p.message) for p in problems] == [
        ("DECLARATION_INVALID", "kernel/bpf/helpers.c:7",
         "kernel-doc says 'Stability: solid', expected one of unstable, stable, deprecating, deprecated")]


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    """tests/bpf/guarded.bpf.c compiled, as tests/test_rules.py's EXTERN_* fixtures use it."""
    from kit.bpf import SOURCES, compile_bpf
    return compile_bpf(SOURCES / "guarded.bpf.c", tmp_path_factory.mktemp("objs") / "guarded.bpf.o")


@pytest.mark.parametrize("level, said", [("deprecating", ""), ("deprecated", "; removal not before 2025-01-07")])
def test_extern_deprecated_without_a_replacement(tmp_path, capsys, guarded, level, said):
    from kit.bpf import call_site
    from kit.trees import DECLARED, FOO, RESOLVED, check_findings, manifest_for, target
    b = target(tmp_path, {**RESOLVED, "bpf_foo2": FOO}, "bpf_foo", level, manifest_for(bpf_foo=DECLARED[level]))
    assert check_findings(capsys, b, guarded) == [
        ("EXTERN_DEPRECATED", "bpf_foo", "warning", call_site("guarded", "return bpf_foo(ctx, 2);"),
         f"bpf_foo is {level} on v6.9{said}")]


def test_one_parameter_is_singular_in_check_reasons():
    # the "takes 1 parameters" bug of issue 13, in the prototype comparison `policybot check` quotes
    from policybot.btf.compat import Shape, incompatibility
    one, two = Shape("proto", Shape("int"), (Shape("int"),)), Shape("proto", Shape("int"), (Shape("int"),) * 2)
    assert incompatibility(one, two) == "1 parameter in the program, 2 in the kernel"
    assert incompatibility(two, one) == "2 parameters in the program, 1 in the kernel"
    assert str(one) == "function of 1 parameter" and str(two) == "function of 2 parameters"
