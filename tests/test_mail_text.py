"""What list readers see: the text bugs of issue 13, each read from drafted mail or from the
pieces the mail is made of."""

from __future__ import annotations

import datetime as dt
import mailbox
import re
import subprocess

import pytest

from policybot.cli import main
from policybot.gitbuild import HistoryBuilder
from policybot.model.inventory import Location
from policybot.kernel.scanner import Scanner
from policybot.mail.drafts import finding_view, template_env
from policybot.model.findings import Acknowledgement, Finding
from policybot.model.promises import Promise
from policybot.policy.audit import Auditor
from policybot.policy.config import Policy
from policybot.policy.declarations import Declaration
from kit.trees import BTF_H, FOO, HEAD_DAY, HELPERS, kernel, pair


@pytest.mark.realtree
def test_function_pointer_parameter_is_printed_as_c(kernel_repo, kernel_state):
    # v6.12's bpf_rbtree_add_impl takes `bool (less)(struct bpf_rb_node *a, const struct bpf_rb_node *b)`
    src = subprocess.run(["git", "-C", kernel_repo, "show", "v6.12:kernel/bpf/helpers.c"], check=True,
                         capture_output=True, text=True).stdout
    args = re.search(r"bpf_rbtree_add_impl\([^;{]*?bool \(less\)\(([^)]*)\)", src).group(1)
    from policybot.kernel.gitrepo import open_repo
    k = Scanner(open_repo(kernel_repo), kernel_state).inventory("v6.12").kfuncs["bpf_rbtree_add_impl"]
    text = k.definition.signature.render(k.name)
    assert f"bool (*less)({args})" in text
    assert ") less" not in text


def _review_text(promise: Promise | None, ack: Acknowledgement | None = None) -> str:
    """review.txt.j2 rendered for one finding of bpf_foo with ``promise``."""
    from types import SimpleNamespace
    from policybot.mail.drafts import render
    f = Finding("KFUNC_REMOVED", "bpf_foo", "violation", "gone", None, None, None, promise, "hint", ack=ack)
    patch = SimpleNamespace(subject="[PATCH] x", counter=1, expected=1)
    return render(template_env(), "review.txt.j2", first_name="", tree="bpf-next", base="v6.9",
                  base_commit="v6.9", patch=patch, findings=[finding_view(f, [], "")], policy_url="",
                  applied=True, apply_problem="")


def test_overlay_path_is_not_in_a_public_review():
    decl = Declaration("bpf_foo", "stable", "overlay", Location("/etc/policybot/overlay.yaml", 2))
    text = _review_text(Promise(decl, "stable", None, None))
    assert "It is declared stable by this tree's operator.\n" in text
    assert "/etc/policybot" not in text and "overlay" not in text
    manifest = Declaration("bpf_foo", "stable", "manifest", Location("Documentation/bpf/kfunc-stability.yaml", 2))
    assert "It is declared stable in Documentation/bpf/kfunc-stability.yaml:2.\n" in \
        _review_text(Promise(manifest, "stable", None, None))


def test_allowlist_path_is_not_in_a_public_review_or_report():
    ack = Acknowledgement("allowlist", reason="the replacement lands next cycle", until=dt.date(2025, 6, 30),
                          source="/etc/policybot/policy.toml:12")
    text = _review_text(None, ack)
    assert "The break is acknowledged (allowed by this tree's operator until 2025-06-30: the replacement lands " \
           "next cycle).\n" in text
    assert "/etc/policybot" not in text and "policy.toml" not in text
    # the operator's own output keeps the file and line
    assert ack.text() == "allowlist (/etc/policybot/policy.toml:12): the replacement lands next cycle"
    tag = Acknowledgement("tag", name="Alexei Starovoitov", address="ast@kernel.org", where="abcdef012345")
    assert "The break is acknowledged (acked by Alexei Starovoitov <ast@kernel.org> with a " \
           "Kfunc-Break-Acked-by tag in abcdef012345)." in _review_text(None, tag)


def test_finding_view_builds_no_sentence():
    decl = Declaration("bpf_foo", "stable", "overlay", Location("/etc/policybot/overlay.yaml", 2))
    f = Finding("KFUNC_REMOVED", "bpf_foo", "violation", "gone", None, None, None,
                Promise(decl, "stable", None, None), "hint")
    assert finding_view(f, [], "")["declared"] == {"level": "stable", "source": "overlay",
                                                   "location": "/etc/policybot/overlay.yaml:2"}


def test_rename_advice_keeps_the_old_name_registered(tmp_path):
    from policybot.app.review import way_forward
    b = pair(tmp_path, {HELPERS: kernel({"bpf_foo": FOO})}, {HELPERS: kernel({"bpf_foo2": FOO})}, "stable")
    today = dt.date.fromisoformat(HEAD_DAY)
    auditor = Auditor(b.repo, Scanner(b.repo), Policy(), today)
    [f] = [f for f in auditor.audit("v6.9", "v6.8").findings if f.rule == "KFUNC_RENAMED"]
    text = way_forward(template_env(), f, auditor.calendar, Policy(), today)
    assert text.startswith("Please keep bpf_foo registered beside the new name; bpf_foo can then be deprecated")
    assert "_v2" not in text


def test_notice_takes_the_replacement_from_the_kernel_doc(tmp_path, capsys):
    doc = "/**\n * bpf_foo() - does foo\n *\n * Deprecated: use bpf_foo2() instead\n */\n"
    b = HistoryBuilder(tmp_path / "repo")
    b.commit({"include/linux/btf.h": BTF_H,
              "kernel/bpf/helpers.c": kernel({"bpf_foo": FOO}).replace("__bpf_kfunc int bpf_foo(",
                                                                       doc + "__bpf_kfunc int bpf_foo(")},
             "one", "2024-03-10T00:00:00")
    b.tag("v6.8")
    assert main(["notice", "bpf_foo", "--repo", str(tmp_path / "repo"), "--today", "2025-01-01"]) == 0
    [(_, m)] = mailbox.Maildir(str(tmp_path / "state" / "outbox"), create=False).items()
    body = " ".join(m.get_payload(decode=True).decode().split())
    assert "Please move to bpf_foo2." in body and "bpf_ksym_exists(bpf_foo2)" in body
    assert "No replacement has been named yet" not in body


def test_a_quote_says_skip_1_line_and_skip_2_lines():
    """A hunk quoted around its one change, 3 lines of context: 1 line left out before it, 2 after."""
    from policybot.mail.quote import parse_hunks, quote_hunk
    before, after = [f" a{i}" for i in range(4)], [f" b{i}" for i in range(5)]
    diff = ("diff --git a/f.c b/f.c\n--- a/f.c\n+++ b/f.c\n@@ -1,9 +1,9 @@\n"
            + "\n".join(before + ["-old", "+new"] + after) + "\n")
    (hunk,) = parse_hunks(diff)
    out = quote_hunk([hunk], (0, 4))
    assert out[1] == "> [ ... skip 1 line ... ]" and out[-1] == "> [ ... skip 2 lines ... ]", out
    assert out[2:-1] == [">  a1", ">  a2", ">  a3", "> -old", "> +new", ">  b0", ">  b1", ">  b2"]
