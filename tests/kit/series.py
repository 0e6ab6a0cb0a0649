"""A kernel tree and a patch series for `policybot review`, written with the git CLI: the tree
(build_tree), a clone to commit on (clone, Git, git_env), ``git format-patch`` mails (format_patch,
single_patch), the two-revision series of the ``series`` fixture (make_series), and the review
run in-process (review, review_args, run_one)."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from policybot.cli import main
from policybot.gitbuild import HistoryBuilder
from kit.mail import BOT
from kit.trees import BTF_H, FOO, MANIFEST, kernel, manifest

TODAY = "2025-03-01"
BASE_KFUNCS = {"bpf_foo": FOO, "bpf_bar": FOO}

MAINTAINERS = """\
BPF [GENERAL] (Safe Dynamic Programs and Tools)
M:\tAlexei Starovoitov <ast@kernel.org>
R:\tSong Liu <song@kernel.org>
L:\tbpf@vger.kernel.org
S:\tSupported
F:\tkernel/bpf/

BPF GENERIC KFUNCS
M:\tHelper Keeper <keeper@example.net>
S:\tMaintained
F:\tkernel/bpf/helpers.c

NETWORKING [GENERAL]
M:\tNet Person <net@example.com>
L:\tnetdev@vger.kernel.org
S:\tMaintained
F:\tnet/
"""
VERIFIER = "".join(f"int verifier_line{i};\n" for i in range(40))

PROXY_VARS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy",
              "NO_PROXY", "no_proxy")


# -- building a tree and a series with the git CLI -------------------------------------------


def build_tree(path: Path) -> HistoryBuilder:
    b = HistoryBuilder(path)
    b.commit({"include/linux/btf.h": BTF_H, "kernel/bpf/helpers.c": kernel(BASE_KFUNCS),
              "kernel/bpf/verifier.c": VERIFIER, "MAINTAINERS": MAINTAINERS, "README": "Linux kernel\n",
              MANIFEST: manifest(bpf_foo="stable", bpf_bar="stable")},
             "Linux 6.1", "2022-12-11T12:00:00")
    b.tag("v6.1")
    return b


@dataclass
class Git:
    work: Path
    env: dict

    def __call__(self, *args, **kw) -> str:
        out = subprocess.run(["git", *args], cwd=self.work, env=self.env, check=True,
                             capture_output=True, text=True, **kw)
        return out.stdout

    def commit(self, files: dict[str, str | bytes], subject: str, body: str = "") -> None:
        for path, content in files.items():
            p = self.work / path
            p.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                p.write_bytes(content)
            else:
                p.write_text(content)
        self("add", "-A")
        sob = f"Signed-off-by: {self.env['GIT_AUTHOR_NAME']} <{self.env['GIT_AUTHOR_EMAIL']}>"
        self("commit", "-q", "-m", f"{subject}\n\n{body or 'Details of the change.'}\n\n{sob}")


def git_env(name="Jane Developer", addr="jane@example.com", date="2025-03-01T10:00:00+00:00",
            committer_addr=None) -> dict:
    # HOME is a fresh directory (conftest) and GIT_CONFIG_NOSYSTEM is set: no user config
    return dict(os.environ, GIT_AUTHOR_NAME=name, GIT_AUTHOR_EMAIL=addr, GIT_AUTHOR_DATE=date,
                GIT_COMMITTER_NAME=name, GIT_COMMITTER_EMAIL=committer_addr or addr,
                GIT_COMMITTER_DATE=date, GIT_CONFIG_GLOBAL=os.devnull, LC_ALL="C")


def clone(tree: Path, work: Path, env: dict, branch: str) -> Git:
    subprocess.run(["git", "clone", "-q", str(tree), str(work)], check=True, env=env, capture_output=True)
    git = Git(work, env)
    git("checkout", "-q", "-b", branch, "v6.1")
    return git


def format_patch(git: Git, out: Path, *extra: str, cover_subject: str = "bpf: kfunc work") -> list[str]:
    """``git format-patch --thread --cover-letter --base=v6.1`` as mails, cover letter first."""
    names = git("format-patch", "--thread", "--cover-letter", "--base=v6.1",
                "--to=bpf@vger.kernel.org", "--cc=AST@kernel.org", "--cc=Reviewer Person <rev@example.org>",
                *extra, "-o", str(out), "v6.1..HEAD").split()
    mails = []
    for name in names:
        text = Path(name).read_text()
        text = text.replace("*** SUBJECT HERE ***", cover_subject).replace("*** BLURB HERE ***",
                                                                           "This series reworks kfuncs.")
        mails.append(text)
    return mails


def msgid_of(mail_text: str) -> str:
    return re.search(r"^Message-I[dD]: (<[^>]+>)", mail_text, re.M).group(1)


@dataclass
class SeriesFixture:
    repo: Path  # the kernel tree the review runs against (it lacks the series' commits)
    base_commit: str
    mbox: Path  # v2 and v1, v1 last
    v2: list[str]  # mails: cover, 1/4 .. 4/4
    v1: list[str]  # mails: cover, 1/2, 2/2
    v1_mbox: Path
    tmp: Path

    @property
    def v2_ids(self) -> list[str]:
        return [msgid_of(m) for m in self.v2]


def make_series(tmp_path: Path) -> SeriesFixture:
    """v1 (2 patches, one breaking bpf_bar) and v2 (4 patches) of one series.

    v2: 1/4 adds bpf_new (no finding); 2/4 edits kernel/bpf/verifier.c but its
    context was edited so it does not apply; 3/4 removes the stable bpf_foo
    (violation, judged after the patch that failed); 4/4 touches no kfunc.
    """
    b = build_tree(tmp_path / "linux")
    base = str(b.repo.revparse_single("v6.1").peel(1).id)

    # v1: sent a week earlier; another committer address so git's Message-IDs differ from v2's
    g1 = clone(tmp_path / "linux", tmp_path / "work1",
               git_env(date="2025-02-20T10:00:00+00:00", committer_addr="jane.v1@example.com"), "v1")
    g1.commit({"kernel/bpf/helpers.c": kernel({**BASE_KFUNCS, "bpf_new": FOO})}, "bpf: add bpf_new")
    g1.commit({"kernel/bpf/helpers.c": kernel({"bpf_foo": FOO, "bpf_bar": (FOO, "KF_SLEEPABLE"),
                                               "bpf_new": FOO})}, "bpf: make bpf_bar sleepable")
    v1 = format_patch(g1, tmp_path / "v1")

    g2 = clone(tmp_path / "linux", tmp_path / "work2", git_env(), "v2")
    g2.commit({"kernel/bpf/helpers.c": kernel({**BASE_KFUNCS, "bpf_new": FOO})}, "bpf: add bpf_new")
    g2.commit({"kernel/bpf/verifier.c": VERIFIER.replace("verifier_line20;", "verifier_changed;")},
              "bpf: tweak the verifier")
    g2.commit({"kernel/bpf/helpers.c": kernel({"bpf_bar": FOO, "bpf_new": FOO})}, "bpf: drop bpf_foo")
    g2.commit({"README": "Linux kernel\n\nRead the docs.\n"}, "README: point to the docs")
    v2 = format_patch(g2, tmp_path / "v2", "-v2")
    # 2/4 no longer applies: a context line of its hunk does not match the tree any more
    assert " int verifier_line19;\n-int verifier_line20;" in v2[2]
    v2[2] = v2[2].replace(" int verifier_line19;\n", " int verifier_line19 = 19;\n", 1)

    assert len(v1) == 3 and len(v2) == 5
    assert set(map(msgid_of, v1)).isdisjoint(map(msgid_of, v2))
    assert all(f"base-commit: {base}" in m[0] for m in (v1, v2))
    mbox = tmp_path / "series.mbox"
    mbox.write_text("\n".join(v2 + v1))  # the older revision last: b4's choice, not file order
    v1_mbox = tmp_path / "v1.mbox"
    v1_mbox.write_text("\n".join(v1))
    return SeriesFixture(tmp_path / "linux", base, mbox, v2, v1, v1_mbox, tmp_path)


def single_patch(tmp_path: Path, files: dict, subject: str, name="Jane Developer", addr="jane@example.com",
                 extra=()) -> str:
    """One `git format-patch` mail (no cover letter) on top of v6.1 of a fresh tree."""
    if not (tmp_path / "linux").exists():
        build_tree(tmp_path / "linux")
    work = tmp_path / f"work-{len(list(tmp_path.glob('work-*')))}"
    g = clone(tmp_path / "linux", work, git_env(name=name, addr=addr), "x")
    g.commit(files, subject)
    names = g("format-patch", "--thread", "--base=v6.1", "--to=bpf@vger.kernel.org", *extra,
              "-o", str(work / "out"), "v6.1..HEAD").split()
    (only,) = names
    return Path(only).read_text(encoding="utf-8", errors="surrogateescape")


DROP_FOO = {"kernel/bpf/helpers.c": kernel({"bpf_bar": FOO})}


# -- the review, in-process ------------------------------------------------------------------------


def review(capsys, *args) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(["review", *args])
    out, err = capsys.readouterr()
    return rc, out, err


def review_args(s: SeriesFixture, *more, src=None) -> list[str]:
    return ["--repo", str(s.repo), *(src or ["--mbox", str(s.mbox)]), "--today", TODAY, "--from", BOT, *more]


def run_one(capsys, tmp_path, mbox_text: str | bytes, *more) -> tuple[int, str, str]:
    path = tmp_path / f"in-{len(list(tmp_path.glob('in-*')))}.mbox"
    if isinstance(mbox_text, str):
        mbox_text = mbox_text.encode("utf-8", "surrogateescape")
    path.write_bytes(mbox_text)
    return review(capsys, "--repo", str(tmp_path / "linux"), "--mbox", str(path), "--today", TODAY,
                  "--from", BOT, *more)
