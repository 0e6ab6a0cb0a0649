"""Per-revision kfunc semantics read from the tree (kernel/semantics.py), and one finding per cause.

Fixture trees built here; the real trees are in tests/test_realtree_audit_7x.py.
"""

from __future__ import annotations

import json
import re

from policybot.gitbuild import HistoryBuilder
from policybot.model.inventory import Kfunc, Location, Param, Signature, Definition, Membership
from policybot.kernel.scanner import Scanner
from policybot.kernel.semantics import read_flags, read_implicit, read_suffixes
from policybot.policy.audit import Auditor
from policybot.policy.config import Policy
from policybot.policy.diff import bpf_params
from policybot.render.audit import json_text as render_json, text as render_text
from kit.trees import MANIFEST, kernel, manifest

# A btf.h as the kernel writes it: a trailing comment per flag, a block comment above one.
BTF_H = """\
#ifndef _LINUX_BTF_H
#define KF_ACQUIRE\t(1 << 0) /* kfunc is an acquire function */
#define KF_RELEASE\t(1 << 1) /* kfunc is a release function */
/* Trusted arguments are those which are guaranteed to be valid when passed to
 * the kfunc.
 */
#define KF_TRUSTED_ARGS (1 << 4) /* kfunc only takes trusted pointer arguments */
#define KF_SLEEPABLE    (1 << 5) /* kfunc may sleep */
#define KF_RCU          (1 << 7) /* kfunc takes either rcu or trusted pointer arguments */
#endif
"""
NEW_FLAG = ("/* The verifier checks that the caller holds the kfunc's lock\n"
            " * for the whole call.\n */\n#define KF_HOLDS_LOCK   (1 << 20)\n")
VERIFIER = """\
static bool is_kfunc_arg_mem_size(const struct btf *btf, const struct btf_param *arg)
{
\treturn btf_param_match_suffix(btf, arg, "__sz");
}

static bool is_kfunc_arg_constant(const struct btf *btf, const struct btf_param *arg)
{
\treturn btf_param_match_suffix(btf, arg, "__k");
}
static bool is_kfunc_sleepable(struct bpf_kfunc_call_arg_meta *meta)
{
\treturn meta->kfunc_flags & (KF_SLEEPABLE | KF_RCU | KF_TRUSTED_ARGS | KF_ACQUIRE | KF_RELEASE);
}
"""
NEW_SUFFIX = """
/* An argument named __locked must point to an object whose lock the program holds */
static bool is_kfunc_arg_locked(const struct btf *btf, const struct btf_param *arg)
{
\treturn btf_param_match_suffix(btf, arg, "__locked");
}
"""
BTF_C = "int btf_c_placeholder;\n"
FOO = "int|struct task_struct *p, u32 flags"


def _tree(tmp_path, base_kfuncs, head_kfuncs, head_btf=BTF_H, head_verifier=VERIFIER, levels=None):
    b = HistoryBuilder(tmp_path / "repo")
    levels = levels or {n: "stable" for n in base_kfuncs}
    b.commit({"include/linux/btf.h": BTF_H, "kernel/bpf/verifier.c": VERIFIER, "kernel/bpf/btf.c": BTF_C,
              "kernel/bpf/helpers.c": kernel(base_kfuncs), MANIFEST: manifest(**levels)},
             "base", "2022-12-11T12:00:00")
    b.tag("v6.1")
    b.commit({"include/linux/btf.h": head_btf, "kernel/bpf/verifier.c": head_verifier,
              "kernel/bpf/helpers.c": kernel(head_kfuncs)}, "head", "2023-02-19T12:00:00")
    b.tag("v6.2")
    return b


def _audit(b):
    return Auditor(b.repo, Scanner(b.repo), Policy()).audit("v6.2", "v6.1")


# -- reading the tree ----------------------------------------------------------------------------

def test_flags_are_read_with_bit_comment_and_line():
    flags = {f.name: f for f in read_flags("include/linux/btf.h", (BTF_H + NEW_FLAG).encode())}
    assert list(flags) == ["KF_ACQUIRE", "KF_RELEASE", "KF_TRUSTED_ARGS", "KF_SLEEPABLE", "KF_RCU", "KF_HOLDS_LOCK"]
    assert (flags["KF_ACQUIRE"].bit, str(flags["KF_ACQUIRE"].location)) == (0, "include/linux/btf.h:2")
    assert flags["KF_ACQUIRE"].comment == "kfunc is an acquire function"
    # a trailing comment is the definition's, even below a block comment
    assert flags["KF_TRUSTED_ARGS"].comment == "kfunc only takes trusted pointer arguments"
    # without one, the block comment right above
    assert flags["KF_HOLDS_LOCK"].bit == 20
    assert flags["KF_HOLDS_LOCK"].comment == ("The verifier checks that the caller holds the kfunc's lock "
                                              "for the whole call.")
    assert str(flags["KF_HOLDS_LOCK"].location) == "include/linux/btf.h:14"


def test_suffixes_in_both_verifier_spellings():
    new = read_suffixes("kernel/bpf/verifier.c", (VERIFIER + NEW_SUFFIX).encode())
    assert [(s.suffix, s.location.line) for s in new] == [("__sz", 3), ("__k", 8), ("__locked", 18)]
    assert new[2].comment == "An argument named __locked must point to an object whose lock the program holds"
    # 6.1's kernel/bpf/btf.c compares the name's tail itself
    old = read_suffixes("kernel/bpf/btf.c", b'\tint len, sfx_len = sizeof("__sz") - 1;\n'
                                            b'\tif (strncmp(param_name, "__sz", sfx_len))\n')
    assert [(s.suffix, s.location.line) for s in old] == [("__sz", 2)]


def test_implicit_parameters_as_resolve_btfids_lists_them():
    src = b'static bool is_kf_implicit_arg(void)\n{\n\tstatic const char *const kf_implicit_arg_types[] = {\n' \
          b'\t\t"bpf_prog_aux",\n\t\t"btf_struct_meta",\n\t};\n}\n'
    names, loc = read_implicit("tools/bpf/resolve_btfids/main.c", src)
    assert names == ("bpf_prog_aux", "btf_struct_meta") and loc.line == 3


def _kfunc(params, flags):
    loc = Location("kernel/x.c", 1)
    sig = Signature("int", tuple(Param(t, n) for t, n in params))
    return Kfunc("k", (Membership("s", "BTF_KFUNCS", loc, flags, "", ("UNSPEC",), "", ()),),
                 Definition(loc, sig, False, True, (), None), False)


def test_const_does_not_make_an_implicit_parameter_visible():
    k = _kfunc([("u64", "dsq_id"), ("const struct bpf_prog_aux *", "aux")], ("KF_IMPLICIT_ARGS",))
    assert [p.name for p in bpf_params(k)] == ["dsq_id"]
    # resolve_btfids copies parameters up to the first implicit one
    k = _kfunc([("struct bpf_prog_aux *", "aux"), ("u64", "x")], ("KF_IMPLICIT_ARGS",))
    assert bpf_params(k) == ()
    # without the flag the parameter is the program's
    k = _kfunc([("u64", "dsq_id"), ("const struct bpf_prog_aux *", "aux")], ())
    assert len(bpf_params(k)) == 2


# -- flag values written other than (1 << n) (issue 21) ------------------------------------------
# btf.h has only ever written (1 << n), but a value is a value: each spelling below is one bit, read
# as such, and a tree that rewrites its flags in another spelling retires and adds nothing.

SPELLED_BTF_H = """\
#ifndef _LINUX_BTF_H
#define KF_ACQUIRE\t0x01 /* kfunc is an acquire function */
#define KF_RELEASE\t2 /* kfunc is a release function */
/* Trusted arguments are those which are guaranteed to be valid when passed to
 * the kfunc.
 */
#define KF_TRUSTED_ARGS (1U << 4) /* kfunc only takes trusted pointer arguments */
#define KF_SLEEPABLE    0x20 /* kfunc may sleep */
#define KF_RCU          (1UL << 7) /* kfunc takes either rcu or trusted pointer arguments */
#endif
"""


def test_flag_bits_written_in_hex_decimal_and_unsigned_shifts():
    text = SPELLED_BTF_H.replace("#endif", "#define KF_HEXED\t(0x100)\n#define KF_DECIMAL\t512\n"
                                            "#define KF_ZERO\t0\n#define KF_TWO_BITS\t0x3\n#define KF_ONE\t1\n#endif")
    flags = {f.name: f for f in read_flags("include/linux/btf.h", text.encode())}
    assert {n: f.bit for n, f in flags.items()} == {
        "KF_ACQUIRE": 0, "KF_RELEASE": 1, "KF_TRUSTED_ARGS": 4, "KF_SLEEPABLE": 5, "KF_RCU": 7,
        "KF_HEXED": 8, "KF_DECIMAL": 9, "KF_ONE": 0,
        "KF_ZERO": None, "KF_TWO_BITS": None}  # no bit, or more than one: no bit to name
    assert flags["KF_SLEEPABLE"].comment == "kfunc may sleep"
    assert flags["KF_TRUSTED_ARGS"].comment == "kfunc only takes trusted pointer arguments"
    assert str(flags["KF_HEXED"].location) == "include/linux/btf.h:10"


def test_flags_rewritten_in_another_spelling_keep_their_meaning(tmp_path):
    # the head writes every flag another way; the kfuncs' own changes are classified as before
    base = {"bpf_a": FOO, "bpf_b": (FOO, "KF_TRUSTED_ARGS"), "bpf_c": (FOO, "KF_RELEASE"),
            "bpf_d": (FOO, "KF_ACQUIRE"), "bpf_e": (FOO, "KF_RCU")}
    head = {"bpf_a": (FOO, "KF_SLEEPABLE"), "bpf_b": FOO, "bpf_c": (FOO, "KF_RELEASE"),
            "bpf_d": (FOO, "KF_ACQUIRE"), "bpf_e": (FOO, "KF_RCU")}
    b = _tree(tmp_path, base, head, head_btf=SPELLED_BTF_H)
    # no flag retired or new (KF_RELEASE, written 2, still holds bpf_c; KF_TRUSTED_ARGS, written
    # (1U << 4), is no new default): only what each kfunc changed, classified by the flag
    got = sorted((f.rule, f.kfunc, f.cause) for f in _audit(b).findings)
    assert got == [("KFUNC_FLAGS_RELAXED", "bpf_b", "flags:-KF_TRUSTED_ARGS"),
                   ("KFUNC_FLAGS_TIGHTENED", "bpf_a", "flags:+KF_SLEEPABLE")]  # written 0x20
    assert Scanner(b.repo).inventory("v6.2").semantics.flag_names == (
        "KF_ACQUIRE", "KF_RCU", "KF_RELEASE", "KF_SLEEPABLE", "KF_TRUSTED_ARGS")


def test_flags_rewritten_with_bit_keep_their_meaning(tmp_path):
    with_bit = re.sub(r"\(1 << (\d+)\)", r"BIT(\1)", BTF_H)
    assert with_bit != BTF_H
    b = _tree(tmp_path, {"bpf_a": FOO}, {"bpf_a": (FOO, "KF_SLEEPABLE")}, head_btf=with_bit)
    # today: a false KFUNC_DEFAULT_CHANGED warning (KF_TRUSTED_ARGS "retired") and no violation for
    # +KF_SLEEPABLE on the stable bpf_a (KF_SLEEPABLE "retired" too, and bpf_a did not carry it before)
    assert [(f.rule, f.kfunc) for f in _audit(b).findings] == [("KFUNC_FLAGS_TIGHTENED", "bpf_a")]
    assert {f.name: f.bit for f in read_flags("include/linux/btf.h", with_bit.encode())} == {
        "KF_ACQUIRE": 0, "KF_RELEASE": 1, "KF_TRUSTED_ARGS": 4, "KF_SLEEPABLE": 5, "KF_RCU": 7}


def test_flags_added_in_hex_and_decimal_and_one_retired_in_decimal_are_one_finding_each(tmp_path):
    base_btf = BTF_H.replace("#endif", "#define KF_OLD_WAY 1024 /* kfunc does it the old way */\n#endif")
    head_btf = BTF_H.replace("#endif", "#define KF_HOLDS_LOCK 0x100000 /* kfunc holds the lock */\n"
                                       "#define KF_COUNTED 2097152 /* kfunc counts its calls */\n#endif")
    b = HistoryBuilder(tmp_path / "repo")
    b.commit({"include/linux/btf.h": base_btf, "kernel/bpf/verifier.c": VERIFIER, "kernel/bpf/btf.c": BTF_C,
              "kernel/bpf/helpers.c": kernel({"bpf_a": FOO, "bpf_old": (FOO, "KF_OLD_WAY")}),
              MANIFEST: manifest(bpf_a="stable", bpf_old="stable")}, "base", "2022-12-11T12:00:00")
    b.tag("v6.1")
    b.commit({"include/linux/btf.h": head_btf,
              "kernel/bpf/helpers.c": kernel({"bpf_a": (FOO, "KF_HOLDS_LOCK"), "bpf_old": (FOO, "KF_COUNTED")})},
             "head", "2023-02-19T12:00:00")
    b.tag("v6.2")
    result = _audit(b)
    got = sorted((f.rule, f.cause, f.members, str(f.location)) for f in result.findings)
    assert got == [("KFUNC_NEEDS_REVIEW", "new-flag:KF_COUNTED", ("bpf_old",), "include/linux/btf.h:11"),
                   ("KFUNC_NEEDS_REVIEW", "new-flag:KF_HOLDS_LOCK", ("bpf_a",), "include/linux/btf.h:10"),
                   ("KFUNC_NEEDS_REVIEW", "retired-flag:KF_OLD_WAY", ("bpf_old",), "include/linux/btf.h:10")]
    (added,) = [f for f in result.findings if f.cause == "new-flag:KF_HOLDS_LOCK"]
    assert "KF_HOLDS_LOCK (bit 20)" in added.message and '"kfunc holds the lock"' in added.message
    (counted,) = [f for f in result.findings if f.cause == "new-flag:KF_COUNTED"]
    assert "KF_COUNTED (bit 21)" in counted.message
    (retired,) = [f for f in result.findings if f.cause == "retired-flag:KF_OLD_WAY"]
    assert '"kfunc does it the old way"' in retired.message


# -- unknown names: one needs-review finding per new name, quoting the tree ----------------------

def test_unknown_flag_and_suffix_get_one_finding_each(tmp_path):
    base = {"bpf_a": FOO, "bpf_b": FOO, "bpf_c": "int|u32 len"}
    head = {"bpf_a": (FOO, "KF_HOLDS_LOCK"), "bpf_b": (FOO, "KF_HOLDS_LOCK"),
            "bpf_c": "int|u32 len__locked"}
    b = _tree(tmp_path, base, head, head_btf=BTF_H.replace("#endif", NEW_FLAG + "#endif"),
              head_verifier=VERIFIER + NEW_SUFFIX)
    result = _audit(b)
    review = [f for f in result.findings if f.rule == "KFUNC_NEEDS_REVIEW"]
    assert len(review) == 2, [f.message for f in result.findings]
    (flag,) = [f for f in review if f.cause == "new-flag:KF_HOLDS_LOCK"]
    (suffix,) = [f for f in review if f.cause == "new-suffix:__locked"]
    assert "KF_HOLDS_LOCK (bit 20)" in flag.message
    assert ("include/linux/btf.h:13 (v6.2): \"The verifier checks that the caller holds the kfunc's lock "
            "for the whole call.\"") in flag.message
    assert str(flag.location) == "include/linux/btf.h:13"  # NEW_FLAG sits before #endif here
    assert flag.members == ("bpf_a", "bpf_b") and flag.verdict == "notice"  # stable kfuncs carry it: a question
    assert "__locked" in suffix.message and str(suffix.location) == "kernel/bpf/verifier.c:18"
    assert "An argument named __locked must point to an object whose lock the program holds" in suffix.message
    assert suffix.members == ("bpf_c",)
    # nothing else: the per-kfunc flag and suffix changes are that one finding's
    assert [f for f in result.findings if f not in review] == []
    text = render_text(result)
    assert "kernel/bpf/verifier.c:18: notice[KFUNC_NEEDS_REVIEW]: 1 kfunc: the verifier matches an " \
           "argument suffix policybot does not know: __locked" in text
    assert text.count("KF_HOLDS_LOCK") == 1 and "    kfuncs: bpf_a, bpf_b\n" in text


def test_unknown_flag_nobody_uses_yet_is_still_reported_once(tmp_path):
    b = _tree(tmp_path, {"bpf_a": FOO}, {"bpf_a": FOO}, head_btf=BTF_H.replace("#endif", NEW_FLAG + "#endif"))
    (f,) = _audit(b).findings
    assert f.rule == "KFUNC_NEEDS_REVIEW" and f.members == () and "KF_HOLDS_LOCK" in f.message


# -- a suffix renamed: only the kfuncs that took the new name (issue 21) --------------------------

OPT_VERIFIER = VERIFIER + """
static bool is_kfunc_arg_optional(const struct btf *btf, const struct btf_param *arg)
{
\treturn btf_param_match_suffix(btf, arg, "__opt");
}
"""
NULLABLE_VERIFIER = VERIFIER + """
static bool is_kfunc_arg_nullable(const struct btf *btf, const struct btf_param *arg)
{
\treturn btf_param_match_suffix(btf, arg, "__nullable");
}
"""


def test_suffix_renamed_lists_only_the_kfuncs_that_took_the_new_name(tmp_path):
    # the verifier stops matching __opt and matches __nullable, which means the same (flags.py)
    base = {"bpf_took": "int|void *buf__opt, u32 len",
            "bpf_kept": "int|void *buf__opt, u32 len",  # still __opt: the verifier reads nothing there now
            "bpf_elsewhere": "int|void *buf__opt, void *extra",  # __nullable on another parameter
            "bpf_fresh": "int|void *buf, u32 len",  # __nullable on a parameter that had no suffix
            "bpf_two": "int|void *a__opt, void *b__opt"}  # both renamed
    head = {"bpf_took": "int|void *buf__nullable, u32 len",
            "bpf_kept": "int|void *buf__opt, u32 len",
            "bpf_elsewhere": "int|void *buf, void *extra__nullable",
            "bpf_fresh": "int|void *buf__nullable, u32 len",
            "bpf_two": "int|void *a__nullable, void *b__nullable"}
    b = HistoryBuilder(tmp_path / "repo")
    b.commit({"include/linux/btf.h": BTF_H, "kernel/bpf/verifier.c": OPT_VERIFIER, "kernel/bpf/btf.c": BTF_C,
              "kernel/bpf/helpers.c": kernel(base), MANIFEST: manifest(**{n: "stable" for n in base})},
             "base", "2022-12-11T12:00:00")
    b.tag("v6.1")
    b.commit({"kernel/bpf/verifier.c": NULLABLE_VERIFIER, "kernel/bpf/helpers.c": kernel(head)},
             "head", "2023-02-19T12:00:00")
    b.tag("v6.2")
    result = _audit(b)
    (renamed,) = [f for f in result.findings if f.rule == "KFUNC_SUFFIX_RENAMED"]
    assert renamed.members == ("bpf_took", "bpf_two")
    assert renamed.cause == "suffix:__opt->__nullable" and renamed.verdict == "info"
    at = NULLABLE_VERIFIER[:NULLABLE_VERIFIER.index('"__nullable"')].count("\n") + 1
    assert str(renamed.location) == f"kernel/bpf/verifier.c:{at}"  # where the head matches __nullable
    assert "__opt" in renamed.message and "__nullable" in renamed.message
    # the ones that did not take it lost the meaning of their parameter: that one change (a
    # parameter no longer nullable) is one finding listing both
    (lost,) = [f for f in result.findings if f is not renamed]
    assert (lost.rule, lost.members, lost.cause) == ("KFUNC_PARAM_ANNOTATION_TIGHTENED",
                                                     ("bpf_elsewhere", "bpf_kept"), "suffix:__nullable->-")
    assert lost.message == ("bpf_elsewhere: parameter 1 'buf__opt' became 'buf': the verifier now no longer accepts "
                            "what '__nullable' allowed; bpf_kept: parameter 1 'buf__opt' became 'buf__opt': the "
                            "verifier now no longer accepts what '__nullable' allowed")


# -- defaults: a flag that leaves btf.h --------------------------------------------------------

def test_retired_default_flag_is_one_finding_for_pointer_kfuncs_only(tmp_path):
    base = {"bpf_ptr": FOO, "bpf_ptr2": "int|struct sock *sk", "bpf_scalar": "int|u32 x",
            "bpf_trusted": (FOO, "KF_TRUSTED_ARGS"), "bpf_rcu": (FOO, "KF_RCU"), "bpf_void": "int|void *buf"}
    head = {n: (v[0] if isinstance(v, tuple) and v[1] == "KF_TRUSTED_ARGS" else v) for n, v in base.items()}
    retired = BTF_H.replace("#define KF_TRUSTED_ARGS (1 << 4) /* kfunc only takes trusted pointer arguments */\n", "")
    result = _audit(_tree(tmp_path, base, head, head_btf=retired))
    (f,) = result.findings
    assert f.rule == "KFUNC_DEFAULT_CHANGED" and f.verdict == "warning"
    # only kfuncs that take a pointer to a kernel object and neither carried the flag nor KF_RCU
    assert f.members == ("bpf_ptr", "bpf_ptr2")
    assert str(f.location) == "include/linux/btf.h:7"
    assert '"kfunc only takes trusted pointer arguments"' in f.message
    text = render_text(result)
    assert text.count("KFUNC_DEFAULT_CHANGED") == 1 and "    kfuncs: bpf_ptr, bpf_ptr2\n" in text
    (doc,) = json.loads(render_json(result))["findings"]
    assert doc["kfuncs"] == ["bpf_ptr", "bpf_ptr2"] and doc["rule"] == "KFUNC_DEFAULT_CHANGED"


def test_flag_the_verifier_never_reads_is_compatible(tmp_path):
    btf = BTF_H.replace("#endif", "#define KF_PAHOLE_ONLY (1 << 13) /* kfunc returns an arena pointer */\n#endif")
    b = HistoryBuilder(tmp_path / "repo")
    files = {"include/linux/btf.h": btf, "kernel/bpf/verifier.c": VERIFIER, "kernel/bpf/btf.c": BTF_C,
             MANIFEST: manifest(bpf_a="stable")}
    b.commit({**files, "kernel/bpf/helpers.c": kernel({"bpf_a": FOO})}, "base", "2022-12-11T12:00:00")
    b.tag("v6.1")
    b.commit({"kernel/bpf/helpers.c": kernel({"bpf_a": (FOO, "KF_PAHOLE_ONLY")})}, "head", "2023-02-19T12:00:00")
    b.tag("v6.2")
    (f,) = _audit(b).findings
    assert (f.rule, f.kfunc, f.verdict) == ("KFUNC_FLAGS_RELAXED", "bpf_a", "info")
    assert "never test" in f.message


# -- one finding per cause ----------------------------------------------------------------------

def test_one_flag_added_to_many_kfuncs_is_one_finding(tmp_path):
    names = [f"bpf_k{i}" for i in range(8)]
    base = {n: FOO for n in names}
    head = {n: (FOO, "KF_SLEEPABLE") for n in names[:6]} | {n: FOO for n in names[6:]}
    levels = {n: "stable" for n in names[:3]} | {n: "unstable" for n in names[3:]}
    result = _audit(_tree(tmp_path, base, head, levels=levels))
    (f,) = result.findings
    assert f.rule == "KFUNC_FLAGS_TIGHTENED" and f.members == tuple(names[:6])
    assert f.verdict == "violation"  # its worst member: bpf_k0..2 are stable
    assert f.promise is not None and f.promise.declaration.level == "stable"
    assert result.counts()["violation"] == 1


# -- review mail: one section for the cause -----------------------------------------------------

def test_review_mail_for_a_flag_added_to_many_kfuncs_has_one_section(tmp_path, capsys):
    from kit.mail import check_body, outbox_files, parse_mail
    from kit.series import run_one, single_patch
    names = [f"bpf_k{i}" for i in range(7)]
    b = HistoryBuilder(tmp_path / "linux")
    b.commit({"include/linux/btf.h": BTF_H, "kernel/bpf/verifier.c": VERIFIER, "kernel/bpf/btf.c": BTF_C,
              "kernel/bpf/helpers.c": kernel({n: FOO for n in names}),
              MANIFEST: manifest(**{n: "stable" for n in names})}, "Linux 6.1", "2022-12-11T12:00:00")
    b.tag("v6.1")
    mail = single_patch(tmp_path, {"kernel/bpf/helpers.c": kernel({n: (FOO, "KF_SLEEPABLE") for n in names})},
                        "bpf: make the task kfuncs sleepable")
    rc, out, err = run_one(capsys, tmp_path, mail)
    assert rc == 1, out + err
    (path,) = outbox_files(tmp_path / "state" / "outbox")
    body = parse_mail(path).get_content()
    check_body(body)
    assert "It found 1 problem." in body
    assert body.count("KFUNC_FLAGS_TIGHTENED") == 1
    assert "VIOLATION KFUNC_FLAGS_TIGHTENED for 7 kfuncs" in body
    assert "flags +KF_SLEEPABLE: programs that verified before may be rejected." in body
    listed = body.split("This one change touches 7 kfuncs:\n", 1)[1].split("\n\n", 1)[0]
    assert [n.strip() for n in listed.replace("\n", " ").split(",")] == names


def test_guard_added_to_a_whole_set_is_one_finding(tmp_path):
    # the grouping key is the new guard and the file: Makefile-derived guards group the same way
    names = ["bpf_g0", "bpf_g1", "bpf_g2"]
    b = HistoryBuilder(tmp_path / "repo")
    files = {"include/linux/btf.h": BTF_H, "kernel/bpf/verifier.c": VERIFIER, "kernel/bpf/btf.c": BTF_C,
             MANIFEST: manifest(**{n: "stable" for n in names})}
    b.commit({**files, "kernel/bpf/helpers.c": kernel({n: FOO for n in names})}, "base", "2022-12-11T12:00:00")
    b.tag("v6.1")
    b.commit({"kernel/bpf/helpers.c": kernel({n: FOO for n in names}, set_guard="CONFIG_BPF_EXTRA")},
             "head", "2023-02-19T12:00:00")
    b.tag("v6.2")
    (f,) = _audit(b).findings
    assert (f.rule, f.verdict, f.members) == ("KFUNC_CONFIG_GUARD_ADDED", "violation", tuple(names))
    assert f.message == "now exists only with CONFIG_BPF_EXTRA"


def test_rename_that_gained_const_or_implicit_args_is_one_rename(tmp_path):
    base = {"bpf_old": "int|struct task_struct *p, u32 flags", "bpf_old2": "int|u64 id"}
    head = {"bpf_new": "int|const struct task_struct *p, u32 flags",
            "bpf_new2": ("int|u64 id, const struct bpf_prog_aux *aux", "KF_IMPLICIT_ARGS")}
    btf = BTF_H.replace("#endif", "#define KF_IMPLICIT_ARGS (1 << 16) /* kfunc has implicit arguments */\n#endif")
    b = HistoryBuilder(tmp_path / "repo")
    files = {"include/linux/btf.h": btf, "kernel/bpf/verifier.c": VERIFIER, "kernel/bpf/btf.c": BTF_C,
             MANIFEST: manifest(bpf_old="stable", bpf_old2="stable"),
             "tools/bpf/resolve_btfids/main.c": 'static const char *const kf_implicit_arg_types[] = {\n'
                                                 '\t"bpf_prog_aux",\n};\n'}
    b.commit({**files, "kernel/bpf/helpers.c": kernel(base)}, "base", "2022-12-11T12:00:00")
    b.tag("v6.1")
    b.commit({"kernel/bpf/helpers.c": kernel(head)}, "head", "2023-02-19T12:00:00")
    b.tag("v6.2")
    got = {(f.rule, f.members, f.message) for f in _audit(b).findings}
    # two renames in one set: one finding (one cause) naming each rename
    assert got == {("KFUNC_RENAMED", ("bpf_old", "bpf_old2"),
                    "bpf_old: renamed to bpf_new (same BPF-visible signature, same set); "
                    "bpf_old2: renamed to bpf_new2 (same BPF-visible signature, same set)")}


def test_semantics_are_cached_by_blob_ids_across_processes(tmp_path):
    from policybot.kernel import semantics
    from policybot.cache import Cache
    b = _tree(tmp_path, {"bpf_a": FOO}, {"bpf_a": FOO}, head_btf=BTF_H.replace("#endif", NEW_FLAG + "#endif"))
    state = Cache(tmp_path / "state")
    semantics._CACHE.clear()  # other tests' trees share these blobs
    first = Scanner(b.repo, state).inventory("v6.2").semantics
    semantics._CACHE.clear()  # as in a new process: only the state database remembers

    class NoReads(Scanner):
        def read(self, oid):
            if str(oid) in first.key:
                raise AssertionError("semantics re-read a blob its cache holds")
            return super().read(oid)

    again = NoReads(b.repo, state).inventory("v6.2").semantics
    assert again == first and again.flag("KF_HOLDS_LOCK").comment.startswith("The verifier checks")


def test_a_suffix_counts_only_where_that_revision_matches_it(tmp_path):
    only_sz = VERIFIER.replace('"__k"', '"__sz"')  # a 6.1-like verifier: names ending __k mean nothing
    b = HistoryBuilder(tmp_path / "repo")
    b.commit({"include/linux/btf.h": BTF_H, "kernel/bpf/verifier.c": only_sz, "kernel/bpf/btf.c": BTF_C,
              "kernel/bpf/helpers.c": kernel({"bpf_a": "int|u32 len__k"}), MANIFEST: manifest(bpf_a="stable")},
             "base", "2022-12-11T12:00:00")
    b.tag("v6.1")
    b.commit({"kernel/bpf/verifier.c": VERIFIER}, "the verifier learns __k", "2023-02-19T12:00:00")
    b.tag("v6.2")
    scanner = Scanner(b.repo)
    assert scanner.inventory("v6.1").kfuncs["bpf_a"].definition.signature.params[0].suffix == ""
    assert scanner.inventory("v6.2").kfuncs["bpf_a"].definition.signature.params[0].suffix == "__k"
    (f,) = _audit(b).findings
    assert (f.rule, f.kfunc, f.verdict) == ("KFUNC_PARAM_ANNOTATION_TIGHTENED", "bpf_a", "violation")


# -- the default reaches what the verifier holds to "trusted" -------------------------------------

KINDS_VERIFIER = VERIFIER + """
static bool is_kfunc_arg_ignore(const struct btf *btf, const struct btf_param *arg)
{
\treturn btf_param_match_suffix(btf, arg, "__ign");
}

BTF_ID_LIST(kf_arg_btf_ids)
BTF_ID(struct, bpf_dynptr)
BTF_ID(struct, bpf_list_head)
"""
BPF_TYPES_H = ("BPF_PROG_TYPE(BPF_PROG_TYPE_XDP, xdp,\n\t      struct xdp_md, struct xdp_buff)\n"
               "BPF_PROG_TYPE(BPF_PROG_TYPE_TRACING, tracing,\n\t      void *, void *)\n"
               "BPF_PROG_TYPE(BPF_PROG_TYPE_CGROUP_SOCK, cg_sock,\n\t      struct bpf_sock, struct sock)\n")


def test_semantics_read_argument_kinds_and_context_types(tmp_path):
    b = HistoryBuilder(tmp_path / "repo")
    b.commit({"include/linux/btf.h": BTF_H, "kernel/bpf/verifier.c": KINDS_VERIFIER, "kernel/bpf/btf.c": BTF_C,
              "include/linux/bpf_types.h": BPF_TYPES_H, "kernel/bpf/helpers.c": kernel({"bpf_a": FOO})},
             "base", "2022-12-11T12:00:00")
    sem = Scanner(b.repo).inventory("HEAD").semantics
    assert sem.arg_structs == ("bpf_dynptr", "bpf_list_head")
    assert sem.ctx_types[0] == ("XDP", "struct xdp_md", "struct xdp_buff")
    assert sem.ctx_structs(("XDP", "TRACING")) == {"xdp_md", "xdp_buff"}
    assert sem.ctx_structs(("UNSPEC",)) == {"xdp_md", "xdp_buff", "bpf_sock", "sock"}


def test_default_reaches_only_arguments_the_verifier_holds_to_trusted(tmp_path):
    kfuncs = {
        "bpf_sock": "int|struct sock *sk",  # registered for TRACING and XDP: not a context there
        "bpf_key_late": "int|const struct bpf_dynptr *p, struct bpf_key *key",  # the key is an object
        "bpf_dyn": "int|const struct bpf_dynptr *p",  # kf_arg_btf_ids: its own kind
        "bpf_list": "int|struct bpf_list_head *head",
        "bpf_ctx": "int|struct xdp_md *ctx",  # XDP's context (KF_ARG_PTR_TO_CTX)
        "bpf_kctx": "int|struct xdp_buff *xdp",  # XDP's kernel context: bpf_cast_to_kern_ctx, trusted
        "bpf_mem": "int|struct bpf_sock_tuple *tuple, u32 tuple__sz",  # memory with its size
        "bpf_ign": "int|struct task_struct *t__ign",  # the verifier skips it
        "bpf_iter_foo_next": ("int|struct bpf_iter_foo *it", "KF_ITER_NEXT"),  # the iterator's state
        "bpf_cb": "int|int (*cb)(struct task_struct *p)",  # a callback is code
    }
    retired = BTF_H.replace("#define KF_TRUSTED_ARGS (1 << 4) /* kfunc only takes trusted pointer arguments */\n", "")
    b = HistoryBuilder(tmp_path / "repo")
    b.commit({"include/linux/btf.h": BTF_H, "kernel/bpf/verifier.c": KINDS_VERIFIER, "kernel/bpf/btf.c": BTF_C,
              "include/linux/bpf_types.h": BPF_TYPES_H, "kernel/bpf/helpers.c": kernel(kfuncs),
              MANIFEST: manifest(**{n: "stable" for n in kfuncs})}, "base", "2022-12-11T12:00:00")
    b.tag("v6.1")
    b.commit({"include/linux/btf.h": retired}, "head", "2023-02-19T12:00:00")
    b.tag("v6.2")
    (f,) = _audit(b).findings
    assert f.rule == "KFUNC_DEFAULT_CHANGED" and f.members == ("bpf_key_late", "bpf_sock")
