"""Kernel-like trees for tests: one kfunc set in kernel/bpf/helpers.c (kernel), a manifest
(manifest, manifest_for), and the base/head pair of tests/test_rules.py's fixtures: v6.8 on
BASE_DAY, v6.9 on HEAD_DAY (pair), what the audit finds between them (findings), and a v6.9 that
a compiled BPF program is checked against (target, check_findings)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from policybot.cli import main
from policybot.gitbuild import HistoryBuilder
from policybot.kernel.flags import FLAGS
from policybot.kernel.scanner import Scanner
from policybot.policy.audit import Auditor
from policybot.policy.config import Policy

BTF_H = "".join(f"#define {f} (1 << {i})\n" for i, f in enumerate(FLAGS) if f != "KF_DEPRECATED")


def kernel(kfuncs: dict, progs=("TRACING", "XDP"), set_guard=None) -> str:
    """kernel/bpf/helpers.c with one set. kfuncs: name -> (signature after the name, flags, guard)."""
    defs, entries = [], []
    for name, spec in kfuncs.items():
        sig, flags, guard = (spec + (None, None))[:3] if isinstance(spec, tuple) else (spec, None, None)
        ret, params = sig.split("|")
        defs.append(f"__bpf_kfunc {ret} {name}({params})\n{{\n}}\n")
        entry = f"BTF_ID_FLAGS(func, {name}{', ' + flags if flags else ''})\n"
        entries.append(f"#ifdef {guard}\n{entry}#endif\n" if guard else entry)
    body = "".join(entries)
    if set_guard:
        body = f"#ifdef {set_guard}\n{body}#endif\n"
    regs = "".join(f"\tregister_btf_kfunc_id_set(BPF_PROG_TYPE_{p}, &generic_kfunc_set);\n" for p in progs)
    return ("\n".join(defs) + "\nBTF_KFUNCS_START(generic_btf_ids)\n" + body + "BTF_KFUNCS_END(generic_btf_ids)\n"
            "static const struct btf_kfunc_id_set generic_kfunc_set = {\n\t.set = &generic_btf_ids,\n};\n"
            f"static int __init kfunc_init(void)\n{{\n{regs}\treturn 0;\n}}\n")


def manifest(**levels) -> str:
    out = "kfuncs:\n"
    for name, level in levels.items():
        if isinstance(level, tuple):
            out += f"  {name}:\n    stability: {level[0]}\n    since: {level[1]}\n"
        else:
            out += f"  {name}:\n    stability: {level}\n"
    return out


MANIFEST = "Documentation/bpf/kfunc-stability.yaml"
FOO = "int|struct task_struct *p, u32 flags"
HELPERS = "kernel/bpf/helpers.c"


# -- the base/head pair: v6.8 (2024-01-07) is the base, v6.9 (2024-03-10) the head ------------------

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


def manifest_for(**decls) -> str:
    out = "kfuncs:\n" if any(decls.values()) else "kfuncs: {}\n"
    for name, decl in decls.items():
        if decl is None:
            continue
        level, since = decl
        out += f"  {name}:\n    stability: {level}\n" + (f"    since: {since}\n" if since else "")
    return out


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


# -- policybot check: a compiled BPF object (tests/bpf/) against v6.9 -------------------------------

# the target's kfuncs every object resolves (kfunc_user.bpf.c's and guarded.bpf.c's prototypes)
RESOLVED = {"bpf_foo": FOO, "bpf_old": "int|struct task_struct *p", "bpf_gone": "void|void", "bpf_changed": "int|u64 x"}


def target(tmp_path, head_kfuncs: dict, declared: str, level: str, head_manifest: str | None = None):
    """v6.9 with ``head_kfuncs``, ``declared`` declared at ``level`` (v6.8 had RESOLVED)."""
    manifest = head_manifest or manifest_for(**{declared: DECLARED[level]})
    return pair(tmp_path, {HELPERS: kernel(RESOLVED), MANIFEST: manifest}, {HELPERS: kernel(head_kfuncs)})


def check_findings(capsys, b: HistoryBuilder, obj: Path) -> list[tuple]:
    argv = ["check", str(obj), "--repo", b.repo.workdir, "--rev", "v6.9", "--today", HEAD_DAY, "--format", "json",
            "--fail-on", "never"]
    assert main(argv) == 0
    (doc,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    return sorted((f["rule"], f["extern"], f["verdict"], f["location"], f["message"]) for f in doc["findings"])
