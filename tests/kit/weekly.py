"""The weekly runner's world for tests: a bare upstream repository the test advances week by week
(Upstream), the operator's mirror, policybot.toml and state directory (Bot), the Mondays the
weeks fall on, a patch mail made on a copy of upstream for the inbox job, and a policybot.toml
of several trees sharing one mirror (run_config)."""

from __future__ import annotations

import email.message
from pathlib import Path

import pygit2
import sqlalchemy as sa

from policybot.cli import main
from policybot.gitbuild import HistoryBuilder
from policybot.state import State, mails, tree_state
from kit.mail import BOT, outbox_mails
from kit.trees import BTF_H, FOO, HELPERS, MANIFEST, kernel

LIST = "bpf@vger.kernel.org"
WIDER = "int|struct task_struct *p, u32 flags, u64 more"
MAINTAINERS = ("BPF\nM:\tAlexei Starovoitov <ast@kernel.org>\nL:\tbpf@vger.kernel.org\n"
               "S:\tSupported\nF:\tkernel/bpf/\n")
ACKER = "Alexei Starovoitov <ast@kernel.org>"  # an M: of kernel/bpf/
EXP_SINCE = "2019-05-01"  # bpf_exp: stable for 5 years from here, i.e. until 2024-05-01
TREE = "bpf-next"

# Mondays of 2024 (ISO weeks 2..8)
W02, W03, W04, W05, W06, W07, W08 = ("2024-01-08", "2024-01-15", "2024-01-22", "2024-01-29",
                                     "2024-02-05", "2024-02-12", "2024-02-19")


def report_subject(week: str, tree: str = TREE) -> str:
    return f"[REPORT] kfunc promises in {tree}, week {week}"


def manifest_text(decls: dict) -> str:
    """decls: name -> level, or a dict of manifest keys (stability, since, replacement, note)."""
    out = "kfuncs:\n"
    for name, d in decls.items():
        d = {"stability": d} if isinstance(d, str) else d
        out += f"  {name}:\n" + "".join(f"    {k}: {v}\n" for k, v in d.items())
    return out


BASE_KFUNCS = {"bpf_foo": FOO, "bpf_bar": FOO, "bpf_old": FOO, "bpf_exp": FOO}
BASE_DECLS = {"bpf_foo": "stable", "bpf_bar": "stable", "bpf_old": "unstable",
              "bpf_exp": {"stability": "stable", "since": EXP_SINCE}}


class Upstream:
    """The bare "upstream" repository, advanced by the test week by week."""

    def __init__(self, path: Path):
        self.path = path
        self.b = HistoryBuilder(path, bare=True)
        self.kfuncs = dict(BASE_KFUNCS)
        self.decls = dict(BASE_DECLS)
        self.b.commit({"include/linux/btf.h": BTF_H, HELPERS: kernel(self.kfuncs),
                       MANIFEST: manifest_text(self.decls), "MAINTAINERS": MAINTAINERS},
                      "Linux 6.6", "2023-10-29T12:00:00")
        self.b.tag("v6.6")

    def land(self, message: str, when: str, kfuncs: dict | None = None, decls: dict | None = None,
             files: dict | None = None) -> str:
        files = dict(files or {})
        if kfuncs is not None:
            self.kfuncs = kfuncs
            files[HELPERS] = kernel(kfuncs)
        if decls is not None:
            self.decls = decls
            files[MANIFEST] = manifest_text(decls)
        self.b.commit(files, message, when + "T12:00:00")
        return self.head

    @property
    def head(self) -> str:
        return str(self.b.head)


class Bot:
    """The operator's side: a mirror of upstream, a policybot.toml, a state directory."""

    def __init__(self, tmp_path: Path, quiet_weeks: bool = True, mail: str = "", extra: str = "",
                 remote: str | None = None, name: str = "policybot.toml"):
        self.tmp = tmp_path
        self.upstream = Upstream(tmp_path / "upstream.git")
        self.mirror = tmp_path / "mirror.git"
        pygit2.init_repository(str(self.mirror), bare=True)
        self.state_dir = tmp_path / "botstate"
        self.outbox = self.state_dir / "outbox"
        self.config = tmp_path / name
        remote = str(self.upstream.path) if remote is None else remote
        self.config.write_text(f"""\
[state]
dir = "{self.state_dir}"

[mail]
from = "{BOT}"
operator = "ops@example.org"
list = "{LIST}"
{mail}
[schedule]
inbox_minutes = 0
{extra}
[[trees]]
name = "{TREE}"
repo = "{self.mirror}"
remote = "{remote}"
branch = "master"
quiet_weeks = {"true" if quiet_weeks else "false"}
""")

    def run(self, capsys, day: str, *more: str) -> tuple[int, str, str]:
        capsys.readouterr()
        rc = main(["run", "--config", str(self.config), "--today", day, *more])
        out, err = capsys.readouterr()
        return rc, out, err

    def state(self) -> State:
        return State(state_dir=self.state_dir)

    def last_audited(self) -> str | None:
        with self.state().engine.connect() as conn:
            return conn.execute(sa.select(tree_state.c.last_audited).where(tree_state.c.tree == TREE)).scalar()

    def mail_rows(self) -> list:
        with self.state().engine.connect() as conn:
            return list(conn.execute(sa.select(mails)))

    def mails(self) -> dict[str, email.message.EmailMessage]:
        return outbox_mails(self.outbox)


def patch_mail(tmp_path: Path) -> bytes:
    """A `git format-patch`-shaped mail dropping the stable bpf_foo, made on a copy of upstream."""
    scratch = Upstream(tmp_path / "scratch.git")
    first = scratch.head
    scratch.land("bpf: drop bpf_foo", "2024-02-01", kfuncs={k: v for k, v in BASE_KFUNCS.items() if k != "bpf_foo"})
    patch = scratch.b.repo.diff(first, scratch.head).patch
    return (f"From: Jane Developer <jane@example.com>\nTo: {LIST}\n"
            "Subject: [PATCH bpf-next] bpf: drop bpf_foo\nDate: Mon, 05 Feb 2024 10:00:00 +0000\n"
            "Message-ID: <20240205100000.1-1-jane@example.com>\n\nbpf_foo has no users left.\n\n"
            f"Signed-off-by: Jane Developer <jane@example.com>\n---\n{patch}-- \n2.43.0\n").encode()


def run_config(tmp_path: Path, remote: Path, trees: list[dict], extra: str = "") -> tuple[Path, Path]:
    """A policybot.toml with several trees sharing one mirror fetched from ``remote``: each tree a
    dict of [[trees]] keys (name; branch, tags, ...), quiet weeks reported. (config, state dir)"""
    mirror = tmp_path / "mirror.git"
    if not mirror.exists():
        pygit2.init_repository(str(mirror), bare=True)
    state_dir = tmp_path / "botstate"
    text = (f'[state]\ndir = "{state_dir}"\n\n[mail]\nfrom = "{BOT}"\noperator = "ops@example.org"\n'
            f'list = "{LIST}"\n\n[schedule]\ninbox_minutes = 0\n{extra}\n')
    for t in trees:
        keys = {"repo": str(mirror), "remote": str(remote), "branch": "master", "quiet_weeks": True, **t}
        text += "[[trees]]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in keys.items()) + "\n"
    config = tmp_path / "policybot.toml"
    config.write_text(text)
    return config, state_dir


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return '"' + str(value) + '"'
