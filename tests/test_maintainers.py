"""MAINTAINERS lookup: each rule on small texts, then the real 6.12 tree against
the kernel's own scripts/get_maintainer.pl."""

import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pygit2
import pytest

from policybot.errors import InputError
from policybot.gitbuild import HistoryBuilder
from policybot.kernel.maintainers import patch_lines, load_maintainers, parse_maintainers
from kit.realtree import get_maintainer, maintainers_checkout, patch_mail

BPF = """\
BPF [CORE]
M:	Alexei Starovoitov <ast@kernel.org>
R:	Martin KaFai Lau <martin.lau@linux.dev>
M:	Daniel Borkmann <daniel@iogearbox.net>
L:	bpf@vger.kernel.org
S:	Maintained
F:	kernel/bpf/
"""

THE_REST = """\
THE REST
M:	Linus Torvalds <torvalds@linux-foundation.org>
L:	linux-kernel@vger.kernel.org
S:	Buried alive in reporters
F:	*
F:	*/
"""


def lookup(text, *paths, is_dir=None, mailmap=""):
    return parse_maintainers(text, mailmap=mailmap).for_files(list(paths), is_dir=is_dir)


def section(name, *lines):
    return name + "\n" + "".join(line + "\n" for line in lines) + "\n"


# -- patterns ------------------------------------------------------------------------

def test_trailing_slash_matches_everything_below():
    assert lookup(BPF, "kernel/bpf/helpers.c").maintainers == [
        "Alexei Starovoitov <ast@kernel.org>", "Daniel Borkmann <daniel@iogearbox.net>"]
    assert lookup(BPF, "kernel/bpf/preload/iterators/iterators.c").lists == ["bpf@vger.kernel.org"]
    assert lookup(BPF, "kernel/bpf_other.c").all() == []
    assert lookup(BPF, "kernel/trace/bpf_trace.c").all() == []


def test_directory_without_slash_matches_below_only_when_it_is_a_directory():
    text = section("NET BPF", "M: A <a@x.org>", "F: net/bpf")
    deep = "net/bpf/test_run.c"
    assert lookup(text, deep, is_dir=lambda p: p == "net/bpf").all() == ["A <a@x.org>"]
    # not a directory in the tree: a plain pattern matches at its own depth only
    assert lookup(text, deep, is_dir=lambda p: False).all() == []
    assert lookup(text, "net/bpf_sk_storage.c", is_dir=lambda p: False).all() == ["A <a@x.org>"]
    # ... and once it is a directory, "net/bpf" no longer prefixes "net/bpf_x.c"
    assert lookup(text, "net/bpf_sk_storage.c", is_dir=lambda p: p == "net/bpf").all() == []


def test_glob_matches_only_at_its_depth():
    text = section("NET", "M: N <n@x.org>", "F: drivers/net/*")
    assert lookup(text, "drivers/net/loopback.c").all() == ["N <n@x.org>"]
    assert lookup(text, "drivers/net/ethernet/intel/e1000.c").all() == []


def test_a_wildcard_inside_the_first_directory_still_matches():
    # lookups consult only the sections whose F: prefix starts with the path's first
    # directory; a wildcard before the first '/' leaves no such prefix to index by
    text = section("BPF HEADERS", "M: H <h@x.org>", "F: inc?ude/linux/bpf.h", "F: ker*/bpf/") + \
        section("BPF CORE", "M: C <c@x.org>", "F: kernel/bpf/")
    assert lookup(text, "include/linux/bpf.h").all() == ["H <h@x.org>"]
    assert lookup(text, "kernel/bpf/core.c").all() == ["H <h@x.org>", "C <c@x.org>"]  # same depth: file order
    assert lookup(text, "kernelx/bpf/core.c").all() == ["H <h@x.org>"]
    assert lookup(text, "kernel/trace/bpf_trace.c").all() == []


def test_glob_characters():
    text = (section("STAR", "M: S <s@x.org>", "F: include/linux/bpf*")
            + section("QUESTION", "M: Q <q@x.org>", "F: drivers/input/misc/da72??.[ch]"))
    assert lookup(text, "include/linux/bpf_verifier.h").all() == ["S <s@x.org>"]
    assert lookup(text, "include/linux/btf.h").all() == []
    assert lookup(text, "drivers/input/misc/da7280.c").all() == ["Q <q@x.org>"]
    assert lookup(text, "drivers/input/misc/da7280.o").all() == []
    assert lookup(text, "drivers/input/misc/da728.c").all() == []
    # '.' is literal and '+' is not a regex operator
    text = section("DOT", "M: D <d@x.org>", "F: a/b.c", "F: c/c++.h")
    assert lookup(text, "a/bxc").all() == []
    assert lookup(text, "c/c++.h").all() == ["D <d@x.org>"]


def test_exclusion_drops_the_section():
    text = (section("NETWORKING", "M: Net <net@x.org>", "L: netdev@x.org", "F: net/", "X: net/bpf/")
            + section("BPF NET", "M: B <b@x.org>", "F: net/bpf/"))
    assert lookup(text, "net/bpf/test_run.c").all() == ["B <b@x.org>"]
    assert lookup(text, "net/core/filter.c").all() == ["Net <net@x.org>", "netdev@x.org"]


def test_n_regex_is_unanchored_and_ranks_below_file_patterns():
    # THE REST first in the file: its "*" patterns still rank below N: (depth -1 < 0)
    text = (THE_REST
            + section("BPF ANYWHERE", "M: Any <any@x.org>", "L: bpf@x.org", "N: bpf")
            + section("TOOLS", "M: T <t@x.org>", "F: tools/"))
    assert lookup(text, "tools/lib/bpf/libbpf.c").all() == [
        "T <t@x.org>", "Any <any@x.org>", "bpf@x.org", "linux-kernel@vger.kernel.org"]
    assert lookup(text, "tools/perf/perf.c").all() == ["T <t@x.org>", "linux-kernel@vger.kernel.org"]
    # Perl /x: whitespace in the regex is not significant
    assert lookup(section("X", "M: X <x@x.org>", "N: sun [4-7] i"), "arch/arm/mach-sun5i/a.c").all() == [
        "X <x@x.org>"]


def test_deeper_patterns_come_first_ties_in_file_order_the_rest_last():
    text = (THE_REST
            + section("KERNEL", "M: K <k@x.org>", "L: k@lists.org", "F: kernel/")
            + section("BPF GENERAL", "M: G <g@x.org>", "F: kernel/bpf/")
            + section("BPF CORE", "M: C <c@x.org>", "L: bpf@x.org", "F: kernel/bpf/")
            + section("HELPERS", "M: H <h@x.org>", "F: kernel/bpf/helpers.c"))
    assert lookup(text, "kernel/bpf/helpers.c").all() == [
        "H <h@x.org>", "G <g@x.org>", "C <c@x.org>", "K <k@x.org>",
        "bpf@x.org", "k@lists.org", "linux-kernel@vger.kernel.org"]


def test_last_matching_line_of_a_section_sets_its_depth():
    # get_maintainer.pl overwrites the section's depth at each matching line
    text = (section("WIDE THEN NARROW", "M: A <a@x.org>", "F: kernel/bpf/", "F: kernel/bpf/verifier.c")
            + section("NARROW THEN WIDE", "M: B <b@x.org>", "F: kernel/bpf/verifier.c", "F: kernel/bpf/")
            + section("MIDDLE", "M: C <c@x.org>", "F: kernel/bpf/*.c"))
    assert lookup(text, "kernel/bpf/verifier.c").all() == ["A <a@x.org>", "C <c@x.org>", "B <b@x.org>"]


# -- people and lists --------------------------------------------------------------

def test_maintainers_and_reviewers_interleave_in_section_order():
    r = lookup(BPF + "\n" + section("HELPERS", "R: Rev <rev@x.org>", "M: Main <main@x.org>",
                                     "F: kernel/bpf/helpers.c"), "kernel/bpf/helpers.c")
    assert r.people == ["Rev <rev@x.org>", "Main <main@x.org>", "Alexei Starovoitov <ast@kernel.org>",
                        "Martin KaFai Lau <martin.lau@linux.dev>", "Daniel Borkmann <daniel@iogearbox.net>"]
    assert r.maintainers == ["Main <main@x.org>", "Alexei Starovoitov <ast@kernel.org>",
                             "Daniel Borkmann <daniel@iogearbox.net>"]
    assert r.reviewers == ["Rev <rev@x.org>", "Martin KaFai Lau <martin.lau@linux.dev>"]
    assert r.all() == r.people + ["bpf@vger.kernel.org"]


def test_each_address_once_at_its_first_place_case_insensitive():
    text = (section("A", "M: Alice <Alice@X.org>", "L: BPF@vger.kernel.org", "F: a/b/c.c")
            + section("B", "R: Bob <bob@x.org>", "M: alice <alice@x.org>", "L: bpf@vger.kernel.org",
                      "F: a/b/")
            + section("C", "M: Alice <new@x.org>", "R: BOB <other@x.org>", "F: a/"))
    r = lookup(text, "a/b/c.c")
    # the same name or the same address counts as the same person, as in the script
    assert r.all() == ["Alice <Alice@X.org>", "Bob <bob@x.org>", "BPF@vger.kernel.org"]
    assert r.maintainers == ["Alice <Alice@X.org>"] and r.reviewers == ["Bob <bob@x.org>"]


def test_lists_subscribers_only_skipped_moderated_kept():
    text = (section("ARM", "M: A <a@x.org>", "L: linux-arm-kernel@lists.infradead.org (moderated for non-subscribers)",
                    "L: closed@x.org (subscribers-only)", "F: arch/arm/kernel/")
            + section("ARM PORT", "L: closed@x.org", "L: Team Name <team@x.org>", "F: arch/arm/"))
    # a list skipped as subscribers-only is still taken where it is open
    assert lookup(text, "arch/arm/kernel/bpf_jit.c").lists == [
        "linux-arm-kernel@lists.infradead.org", "closed@x.org", "team@x.org"]


def test_chief_penguin_not_added_and_names_quoted():
    text = THE_REST + section("RCU", 'M: "Paul E. McKenney" <paulmck@kernel.org>',
                              "M: Toke Høiland-Jørgensen <toke@redhat.com>", "M: plain@x.org",
                              "F: kernel/rcu/")
    assert lookup(text, "kernel/rcu/tree.c").all() == [
        '"Paul E. McKenney" <paulmck@kernel.org>', '"Toke Høiland-Jørgensen" <toke@redhat.com>',
        "plain@x.org", "linux-kernel@vger.kernel.org"]


def test_mailmap_rewrites_and_merges():
    text = (section("A", "M: Jason Gunthorpe <jgg@nvidia.com>", "F: a/b/")
            + section("B", "M: J. G. <jgg@ziepe.ca>", "M: Old Name <old@x.org>", "F: a/"))
    mailmap = ("# comment\nJason Gunthorpe <jgg@ziepe.ca> <jgg@nvidia.com>\n"
               "New Name <new@x.org> Old Name <old@x.org>\n")
    assert lookup(text, "a/b/c.c", mailmap=mailmap).all() == [
        "Jason Gunthorpe <jgg@ziepe.ca>", "New Name <new@x.org>"]


def test_several_files_and_sections_survive_blank_and_comment_lines():
    text = "Preamble text\n\tM: not an entry\n\n" + section("A", "M: A <a@x.org>", "", "# note", "F: a/") \
        + section("B", "M: B <b@x.org>", "F: b/")
    m = parse_maintainers(text)
    assert [s.name for s in m.sections] == ["A", "B"]
    assert m.for_files(["b/x.c", "a/y.c", "b/z.c"]).all() == ["B <b@x.org>", "A <a@x.org>"]


def test_unparseable_regex_names_file_and_line():
    with pytest.raises(InputError, match=r"MAINTAINERS:3: .*N:"):
        parse_maintainers("A\nM: a <a@x.org>\nN: sun[4\n")
    # anything else is tolerated, as the script tolerates it
    assert parse_maintainers("junk\nZ: whatever\nM:\nL:\nM: a@x.org\nF:\n").for_files(["x.c"]).all() == [
        "a@x.org"]


def test_load_from_git_tree(tmp_path):
    b = HistoryBuilder(tmp_path / "repo", bare=True)
    b.commit({"MAINTAINERS": BPF + "\n" + section("NET", "M: N <n@x.org>", "F: net/bpf"),
              ".mailmap": "Alexei Starovoitov <alexei@new.org> <ast@kernel.org>\n",
              "net/bpf/test_run.c": "", "kernel/bpf/helpers.c": ""}, "tree")
    repo = pygit2.Repository(str(tmp_path / "repo"))
    m = load_maintainers(repo, repo[b.head].tree)
    assert m.is_dir("net/bpf") and not m.is_dir("net/bpf/test_run.c") and not m.is_dir("nope")
    assert m.for_files(["net/bpf/test_run.c"]).all() == ["N <n@x.org>"]
    assert m.for_files(["kernel/bpf/helpers.c"]).maintainers[0] == "Alexei Starovoitov <alexei@new.org>"
    b.commit({"MAINTAINERS": None}, "no maintainers")
    with pytest.raises(InputError, match="no MAINTAINERS"):
        load_maintainers(repo, repo[b.head].tree)


# -- the real tree against get_maintainer.pl ---------------------------------------

GM_ARGS = ["--no-tree", "--nogit", "--nogit-fallback", "--norolestats", "-f"]
# Tied sections come out in Perl hash order, which changes from run to run; this
# copy breaks ties by MAINTAINERS order, as policybot does, so order is comparable
# (the tab picks the section sort in get_maintainers, not the git signers' one)
# Beyond the kfunc files: paths in 6.12 where each harder rule decides the answer
RULE_FILES = [
    "drivers/gpu/drm/i915/gt/uc/intel_guc_log_debugfs.c",          # X: drivers/gpu/drm/i915/
    "drivers/net/wireless/ralink/rt2x00/rt2x00leds.h",              # X: drivers/net/wireless/
    "sound/soc/sunxi/sun8i-adda-pr-regmap.c",                       # N: sun[x456789]i
    "drivers/pci/controller/pcie-xilinx-dma-pl.c",                  # N: xilinx
    "include/scsi/iscsi_if.h",                                      # F: include/scsi/*iscsi*
    "drivers/net/wireless/ath/Makefile",                            # F: drivers/net/wireless/ath/*
    "tools/testing/selftests/powerpc/alignment/alignment_handler.c",  # directory, no '/'
    "drivers/net/ethernet/marvell/octeon_ep_vf/octep_vf_main.c",    # directory, no '/'
    "drivers/infiniband/core/cma.c",                                # .mailmap rewrites M:
    "drivers/android/binder.c",                                     # .mailmap, non-ASCII name
    "drivers/virt/acrn/hsm.c",                                      # subscribers-only list
    "fs/smb/client/cifsfs.c",                                       # R: with comments, moderated
    "README",                                                       # THE REST only
]
def _perl(root, script, path):
    out = subprocess.run(["perl", f"scripts/{script}", *GM_ARGS, path], cwd=root,
                         capture_output=True, check=True, encoding="utf-8")
    return out.stdout.splitlines()


@pytest.mark.realtree
def test_same_as_get_maintainer_pl_for_every_kfunc_file(kernel_repo, kernel_state, tmp_path):
    from policybot.kernel.gitrepo import open_repo, resolve
    from policybot.kernel.scanner import Scanner

    repo = open_repo(kernel_repo)
    inv = Scanner(repo, kernel_state).inventory("v6.12")
    files = sorted({m.location.path for k in inv.kfuncs.values() for m in k.memberships}
                   | {k.definition.location.path for k in inv.kfuncs.values() if k.definition})
    assert len(files) > 30
    files += RULE_FILES
    tree = resolve(repo, "v6.12").tree
    root = tmp_path / "linux"
    maintainers_checkout(repo, tree, root, files)
    ours = load_maintainers(repo, tree)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        stable = dict(zip(files, pool.map(lambda f: _perl(root, "get_maintainer_stable.pl", f), files)))
        plain = dict(zip(files, pool.map(lambda f: _perl(root, "get_maintainer.pl", f), files)))
    diffs = {}
    for f in files:
        got = ours.for_files([f]).all()
        if got != stable[f] or sorted(got) != sorted(plain[f]):
            diffs[f] = (got, stable[f], plain[f])
    assert not diffs, diffs
    # the set is not trivially the same everywhere: the bot mails different people
    assert len({tuple(v) for v in stable.values()}) > 10
    assert all(any(re.search(r"@", a) for a in v) for v in stable.values())
    assert "Christian Brauner <brauner@kernel.org>" in stable["drivers/android/binder.c"]
    assert '"Arve Hjønnevåg" <arve@android.com>' in stable["drivers/android/binder.c"]
    assert stable["README"] == ["linux-kernel@vger.kernel.org"]


FLAG_EDITS = {  # a flag added to btf.h and tested in verifier.c
    "include/linux/btf.h": ("#define KF_RCU_PROTECTED", "#define KF_RCU_PROTECTED (1 << 11) /* kfunc should be "
                            "protected by rcu cs when they are invoked */\n#define KF_TEST_ONLY (1 << 30) /* test */"),
    "kernel/bpf/verifier.c": ("return meta->kfunc_flags & KF_RCU_PROTECTED;",
                              "\treturn meta->kfunc_flags & (KF_RCU_PROTECTED | KF_TEST_ONLY);"),
}


@pytest.mark.realtree
def test_a_patch_gets_what_get_maintainer_pl_gives_for_it(kernel_repo, tmp_path):
    """issue 25: a reply to a patch adding a flag to btf.h and verifier.c is copied to exactly
    what ``get_maintainer.pl --nogit --nogit-fallback PATCH`` lists for that patch (its files and
    its K: keywords), read from the real 7.2 script and tree."""
    from policybot.kernel.gitrepo import open_repo, resolve
    from policybot.mail.b4wrap import read_messages, series_from_messages

    repo = open_repo(kernel_repo)
    tree = resolve(repo, "v7.2").tree
    root = tmp_path / "linux"
    maintainers_checkout(repo, tree, root, [])
    mail = patch_mail(kernel_repo, "v7.2", FLAG_EDITS, "bpf: add KF_TEST_ONLY")
    (tmp_path / "flag.patch").write_text(mail)
    args = ["--no-tree", "--nogit", "--nogit-fallback", "--norolestats", str(tmp_path / "flag.patch")]
    (patch,) = series_from_messages(read_messages(data=mail.encode(), state_dir=tmp_path / "s"),
                                    tmp_path / "s", "flag.patch", 0).patches
    got = load_maintainers(repo, tree).for_patch(patch.as_patch_file()).all()
    assert got == get_maintainer(root, *args) and sorted(got) == sorted(get_maintainer(root, *args, stable=False))
    # more than the files a finding names: the verifier's reviewers come with verifier.c
    ours_for_btf_h = load_maintainers(repo, tree).for_files(["include/linux/btf.h"]).all()
    assert set(got) > set(ours_for_btf_h)


def test_a_patch_adds_the_sections_its_keywords_match_after_its_files():
    """get_maintainer.pl on a patch: K: regexes match the intro (headers, message, diffstat) and
    the changed lines only, never context lines; their sections come after the files'."""
    text = BPF + "\n" + section("XDP", "M:\tXdp Person <xdp@example.org>", "K:\t(?:\\b|_)xdp(?:\\b|_)") \
        + "\n" + section("PIDFD", "M:\tPid Person <pid@example.org>", "K:\t(?i)pidfd") + "\n" + THE_REST
    m = parse_maintainers(text)
    diff = ("diff --git a/kernel/bpf/core.c b/kernel/bpf/core.c\n--- a/kernel/bpf/core.c\n+++ b/kernel/bpf/core.c\n"
            "@@ -1,3 +1,3 @@\n int xdp_context;\n-int a;\n+int b;\n")
    assert m.for_patch("Subject: [PATCH] bpf: tidy\n\n" + diff).all() == [
        "Alexei Starovoitov <ast@kernel.org>", "Martin KaFai Lau <martin.lau@linux.dev>",
        "Daniel Borkmann <daniel@iogearbox.net>", "bpf@vger.kernel.org", "linux-kernel@vger.kernel.org"]
    got = m.for_patch("Subject: [PATCH] bpf: tidy for xdp\n\n" + diff.replace("+int b;", "+int PIDFD_b;")).all()
    # the K: lines are the script's 10th and 13th type/value lines (indices 9 and 12): Perl sorts
    # them as strings, "12" before "9"
    assert got[3:5] == ["Pid Person <pid@example.org>", "Xdp Person <xdp@example.org>"]
    assert "Xdp Person <xdp@example.org>" not in m.for_patch(diff.replace("Subject", "X")).all()  # context line


# -- a patch file, read as get_maintainer.pl reads one -------------------------------------------

def _patch_on_7_2(kernel_repo, work):
    """`git format-patch` of a commit on v7.2 (in a repository borrowing the real tree's objects):
    it changes kernel/bpf/helpers.c and net/core/filter.c, adds a driver file (--- /dev/null) and
    renames a selftest; its subject and +lines say "bpf" (BPF [GENERAL]'s K: line)."""
    repo = pygit2.init_repository(str(work), bare=True)
    (work / "objects" / "info" / "alternates").write_text(os.path.join(kernel_repo, "objects") + "\n")
    base = pygit2.Repository(kernel_repo).revparse_single("v7.2").peel(pygit2.Commit)
    index = pygit2.Index()
    index.read_tree(base.tree)

    def put(path, data):
        index.add(pygit2.IndexEntry(path, repo.create_blob(data), pygit2.enums.FileMode.BLOB))
    for path in ("kernel/bpf/helpers.c", "net/core/filter.c"):
        put(path, repo[base.tree[path].id].data + b"\n/* bpf: a comment */\n")
    put("drivers/net/ethernet/intel/ice/ice_kfunc_new.c", b"// SPDX-License-Identifier: GPL-2.0\nint x;\n")
    old = "tools/testing/selftests/bpf/progs/kfunc_call_test.c"
    put(old.replace("kfunc_call_test", "kfunc_call_renamed"), repo[base.tree[old].id].data)
    index.remove(old)
    sig = pygit2.Signature("Jane Developer", "jane@example.com", 1740823200, 0)
    commit = repo.create_commit(None, sig, sig, "bpf: touch a few files\n\nSo that a PIDFD user sees it.\n\nSigned-off-by: Jane Developer "
                                "<jane@example.com>\n", index.write_tree(repo), [base.id])
    out = subprocess.run(["git", "-C", str(work), "format-patch", "-M", "-1", "--stdout", str(commit)],
                         capture_output=True, check=True, env={**os.environ, "GIT_CONFIG_GLOBAL": os.devnull})
    return out.stdout


@pytest.mark.realtree
def test_a_patch_file_same_as_get_maintainer_pl(kernel_repo, tmp_path, capsys):
    from policybot.cli import main
    patch = tmp_path / "x.patch"
    patch.write_bytes(_patch_on_7_2(kernel_repo, tmp_path / "work.git"))
    text = patch.read_text()
    assert "--- /dev/null" in text and "rename from tools/testing/selftests/bpf/progs/kfunc_call_test.c" in text
    repo = pygit2.Repository(kernel_repo)
    root = tmp_path / "linux"
    maintainers_checkout(repo, repo.revparse_single("v7.2").peel(pygit2.Commit).tree, root, [])
    args = ["--no-tree", "--nogit", "--nogit-fallback", "--norolestats", str(patch)]
    want = subprocess.run(["perl", "scripts/get_maintainer_stable.pl", *args], cwd=root, capture_output=True,
                          check=True, encoding="utf-8").stdout.splitlines()
    plain = subprocess.run(["perl", "scripts/get_maintainer.pl", *args], cwd=root, capture_output=True,
                           check=True, encoding="utf-8").stdout.splitlines()
    capsys.readouterr()
    assert main(["maintainers", "--repo", kernel_repo, "--rev", "v7.2", str(patch)]) == 0
    got = capsys.readouterr().out.splitlines()
    assert got == want and sorted(got) == sorted(plain)
    # beyond the files' own sections: the BPF keyword, the networking and Intel driver people
    assert "bpf@vger.kernel.org" in got and "netdev@vger.kernel.org" in got
    assert "intel-wired-lan@lists.osuosl.org" in got and len(got) > 10
    assert "Christian Brauner <brauner@kernel.org>" in got  # (.mailmap) PIDFD API's K: (?i)pidfd, in the message
    # the file names alone (no patch) give fewer: the patch's keywords count
    capsys.readouterr()
    files = ["kernel/bpf/helpers.c", "net/core/filter.c"]
    assert main(["maintainers", "--repo", kernel_repo, "--rev", "v7.2", *files]) == 0
    assert set(capsys.readouterr().out.splitlines()) < set(got)


def test_a_path_no_revision_has_is_refused(tmp_path, capsys):
    from policybot.cli import main
    b = HistoryBuilder(tmp_path / "repo")
    b.commit({"MAINTAINERS": BPF + "\n" + THE_REST, "kernel/bpf/gone.c": "x\n", "kernel/bpf/core.c": "y\n"},
             "one", "2024-01-01T00:00:00")
    b.tag("v1")
    b.commit({"kernel/bpf/gone.c": None}, "gone", "2024-02-01T00:00:00")
    repo = str(tmp_path / "repo")
    capsys.readouterr()
    assert main(["maintainers", "--repo", repo, "kernel/bpf/nope.c"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == (f"policybot: kernel/bpf/nope.c: no such path in {repo} (at HEAD nor at any "
                                 "branch or tag), and not a patch\n")
    # a path of another revision (deleted since) and a directory are paths
    assert main(["maintainers", "--repo", repo, "kernel/bpf/gone.c", "kernel/bpf"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "Alexei Starovoitov <ast@kernel.org>"
    # a file on disk that is no patch is refused too
    (tmp_path / "notes.txt").write_text("just words\n")
    assert main(["maintainers", "--repo", repo, str(tmp_path / "notes.txt")]) == 2
    assert "not a patch" in capsys.readouterr().err


def test_a_path_is_read_as_git_reads_one_from_where_the_maintainer_stands(tmp_path, capsys, monkeypatch):
    """In a checkout a path is relative to the current directory; an absolute one inside the work
    tree is made relative to its top; from the top or from outside, a path is relative to the top."""
    from policybot.cli import main
    b = HistoryBuilder(tmp_path / "repo")
    b.commit({"MAINTAINERS": BPF + "\n" + THE_REST, "kernel/bpf/helpers.c": "x\n", "README": "r\n"},
             "one", "2024-01-01T00:00:00")
    b.checkout()
    top = tmp_path / "repo"
    bpf = ["Alexei Starovoitov <ast@kernel.org>", "Martin KaFai Lau <martin.lau@linux.dev>",
           "Daniel Borkmann <daniel@iogearbox.net>", "bpf@vger.kernel.org", "linux-kernel@vger.kernel.org"]
    rest = ["linux-kernel@vger.kernel.org"]

    def run(*argv):
        capsys.readouterr()
        rc = main(["maintainers", *argv])
        out, err = capsys.readouterr()
        return rc, out.splitlines(), err

    monkeypatch.chdir(top / "kernel" / "bpf")
    for arg in ("helpers.c", "../../kernel/bpf/helpers.c", str(top / "kernel" / "bpf" / "helpers.c"),
                "./helpers.c", "."):
        assert run(arg) == (0, bpf, ""), arg
    assert run("../../README") == (0, rest, "")
    # from a subdirectory a path relative to the top is relative to the subdirectory, as git has it
    rc, out, err = run("kernel/bpf/helpers.c")
    assert rc == 2 and err.startswith("policybot: kernel/bpf/helpers.c: no such path in ")
    # with --repo given, a path is still read from where the maintainer stands inside the checkout
    assert run("--repo", str(top), "helpers.c") == (0, bpf, "")
    monkeypatch.chdir(top)
    assert run("kernel/bpf/helpers.c") == (0, bpf, "")
    monkeypatch.chdir(tmp_path)  # outside the checkout: relative to the top, as before
    assert run("--repo", str(top), "kernel/bpf/helpers.c") == (0, bpf, "")
    assert run("--repo", str(top), str(top / "kernel" / "bpf" / "helpers.c")) == (0, bpf, "")


KEYWORDS = """\
BPF [GENERAL]
M:	B <b@x.org>
F:	kernel/bpf/
K:	(?:\\b|_)bpf(?:\\b|_)
""" + "".join(f"\nFILLER {i}\nM:	F{i} <f{i}@x.org>\nF:	filler{i}/\n" for i in range(3)) + """
PIDFD API
M:	P <p@x.org>
K:	(?i)pidfd
""" + THE_REST


def test_a_patch_is_read_as_get_maintainer_pl_reads_one():
    maint = parse_maintainers(KEYWORDS)
    # the script's own line indices (every line but blank and comment ones): "15" sorts before "3"
    assert [(tvi, s.name) for s in maint.sections for tvi, _ in s.keywords] == [(3, "BPF [GENERAL]"),
                                                                                (15, "PIDFD API")]
    patch = ("From 0123 Mon Sep 17 00:00:00 2001\nSubject: [PATCH] net: a change\n\n"
             "Nothing about the keywords here.\n---\n"
             "diff --git a/net/new.c b/net/new.c\nnew file mode 100644\n--- /dev/null\n+++ b/net/new.c\n"
             "@@ -0,0 +1 @@\n+int x;\n"
             "diff --git a/tools/old.c b/tools/new.c\nsimilarity index 90%\nrename from tools/old.c\n"
             "rename to tools/new.c\n"
             "diff --git a/kernel/x.c b/kernel/x.c\n--- a/kernel/x.c\n+++ b/kernel/x.c\n@@ -1,3 +1,3 @@\n"
             " context says pidfd and bpf_x\n-old\n+new\n")
    assert patch_lines(patch)[0] == ["dev/null", "kernel/x.c", "net/new.c", "tools/new.c", "tools/old.c"]
    # every file is THE REST's; a keyword on a context line of the diff does not count
    assert maint.for_patch(patch).all() == ["linux-kernel@vger.kernel.org"]
    # on a + line it does, (?i) and all
    assert maint.for_patch(patch.replace("+new\n", "+new PIDFD\n")).all() == [
        "P <p@x.org>", "linux-kernel@vger.kernel.org"]
    # and anywhere before the diff; keyword sections come in the script's (string) order of their lines
    both = patch.replace("Nothing about", "bpf: about").replace("+new\n", "+new PIDFD\n")
    assert maint.for_patch(both).all() == ["P <p@x.org>", "B <b@x.org>", "linux-kernel@vger.kernel.org"]
    # several patches and paths in one run: every file, then every keyword
    assert maint.for_patches([patch, both], ["kernel/bpf/core.c"]).all() == [
        "B <b@x.org>", "P <p@x.org>", "linux-kernel@vger.kernel.org"]
