"""policybot check against the real trees and Debian's compiled kernels (issue 27): dead fallbacks
in the 7.2 tree's own schedulers (none), why Debian's 6.12 kernel lacks the sched_ext kfuncs, an
address use against every source release, a call of a test-only tagged function against a
compiled kernel, and the BPF objects embedded in Debian's libbpf-tools package.

Expectations come from elsewhere than policybot's code: the tree's Kconfig and Makefiles read with
git grep, bpftool's dump of the kernel's BTF, and the package cut by kit.bpf.cut_objects."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from kit.bpf import SOURCES, compile_bpf, cut_objects
from kit.btf import dump, dump_types, tagged_kfuncs
from kit.realtree import debian_packages
from policybot.cli import main

pytestmark = pytest.mark.realtree

RELEASES = ("v6.1", "v6.12", "v7.2")


def check(capsys, *args: str) -> list[dict]:
    capsys.readouterr()
    assert main(["check", *args, "--format", "json", "--fail-on", "never"]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


@pytest.fixture(scope="module")
def objs(tmp_path_factory):
    out = tmp_path_factory.mktemp("objs")
    return {n: compile_bpf(SOURCES / f"{n}.bpf.c", out / f"{n}.bpf.o") for n in ("func_address", "fmodret_call", "func_address_mismatch", "ct")}


def test_the_7_2_schedulers_have_no_dead_fallback(schedulers, kernel_repo, kernel_state, capsys):
    """compat.bpf.h's weak flavors each resolve on v6.12 or on v7.2, the releases it bridges."""
    docs = check(capsys, *map(str, schedulers.values()), "--repo", kernel_repo, "--rev", "v6.12", "--rev", "v7.2",
                 "--state-dir", str(kernel_state.state_dir))
    weak = {(d["object"], e["name"]) for d in docs for e in d["externs"] if e["weak"]}
    assert len(weak) > 10  # compat.bpf.h's flavors are there
    assert [(d["object"], e["name"]) for d in docs for e in d["externs"] if e["dead_fallback"]] == []
    resolved = {(d["object"], e["name"]) for d in docs for e in d["externs"] if e["weak"] and e["status"] == "ok"}
    assert resolved == weak  # independently of the flag: each resolves on one of the two


def sched_ext_guard(kernel_repo: str, rev: str) -> str:
    """The config option kernel/sched/ext.c is built under, read from the tree's Makefiles (it is
    #included from build_policy.c inside an #ifdef)."""
    text = subprocess.run(["git", "-C", kernel_repo, "show", f"{rev}:kernel/sched/build_policy.c"],
                          check=True, capture_output=True, text=True).stdout
    m = re.search(r"#ifdef (CONFIG_\w+)\s*\n(?:#\s*include \"[^\"]+\"\s*\n)*#\s*include \"ext\.c\"", text)
    assert m, "kernel/sched/build_policy.c no longer includes ext.c under one #ifdef"
    return m[1]


def test_debians_6_12_kernel_lacks_sched_ext_by_its_config(schedulers, binaries, extracted, kernel_repo,
                                                           kernel_state, capsys):
    guard = sched_ext_guard(kernel_repo, "v6.12")
    assert guard == "CONFIG_SCHED_CLASS_EXT"
    tagged = set(tagged_kfuncs(dump(extracted["6.12"])))
    (d,) = check(capsys, str(schedulers["simple"]), "--btf", str(binaries["6.12"]["vmlinuz"]), "--repo", kernel_repo,
                 "--rev", "v6.12", "--state-dir", str(kernel_state.state_dir))
    missing = [e for e in d["externs"] if e["status"] == "missing"]
    assert missing and all(e["kfunc"] not in tagged for e in missing)
    # the kfuncs v6.12's sources register (git grep), all of sched_ext's in kernel/sched/ext.c
    text = subprocess.run(["git", "-C", kernel_repo, "grep", "-h", "-o", "-E", r"BTF_ID_FLAGS\(func, *[A-Za-z0-9_]+",
                           "v6.12", "--", "kernel/sched/ext.c"], capture_output=True, text=True, check=True).stdout
    in_source = {line.split(",")[-1].strip() for line in text.splitlines()}
    kernel = binaries["6.12"]["vmlinuz"]
    named = 0
    for e in missing:
        if e["kfunc"] in in_source:
            named += 1
            # the vmlinuz alone does not say its config: the reason claims no more than the source does
            assert e["reason"] == (f"{e['kfunc']} is not a kfunc of {kernel}: v6.12 has it behind {guard} (not "
                                   "built in, or in a module not given)"), e
        else:  # a later release's kfunc (scx_bpf_dsq_insert is 6.13's): the source has nothing to say
            assert e["reason"] == f"{e['kfunc']} is not a kfunc of {kernel}", e
    assert named >= 5
    capsys.readouterr()
    main(["check", str(schedulers["simple"]), "--btf", str(binaries["6.12"]["vmlinuz"]), "--repo", kernel_repo,
          "--rev", "v6.12", "--state-dir", str(kernel_state.state_dir), "--fail-on", "never"])
    assert f"v6.12 has it behind {guard} (not built in, or in a module not given)" in capsys.readouterr().out


def test_an_address_use_loads_on_every_source_release(objs, kernel_repo, kernel_state, capsys):
    """bpf_fentry_test1's address, as get_func_ip_test takes it: net/bpf/test_run.c defines the
    function in every release (git grep), a kfunc in none of the three for calls from tc."""
    for rev in RELEASES:
        defined = subprocess.run(["git", "-C", kernel_repo, "grep", "-l", "-E", r"^[a-z_ ]*int [a-z_ ]*bpf_fentry_test1\(int a\)",
                                  rev, "--", "net/bpf/test_run.c"], capture_output=True, text=True).stdout
        assert defined, rev
    args = [str(objs["func_address"]), "--repo", kernel_repo, "--state-dir", str(kernel_state.state_dir)]
    for rev in RELEASES:
        args += ["--rev", rev]
    docs = check(capsys, *args)
    assert [d["target"] for d in docs] == list(RELEASES)
    for d in docs:
        (e,) = d["externs"]
        assert (e["name"], e["uses"], e["status"]) == ("bpf_fentry_test1", "address", "ok"), d["target"]
        assert d["loads"] is True, d["target"]


def test_an_address_use_prototype_is_compared_on_a_compiled_kernel(objs, binaries, extracted, kernel_repo,
                                                                   kernel_state, capsys):
    """bpf_fentry_test2 has two parameters in the 7.2 kernel's BTF (bpftool); the object declares
    four and only loads its address: libbpf compares every function extern's prototype, so the
    compiled kernel and the source revision it was built from both say incompatible."""
    types = dump_types(dump(extracted["7.2"]))
    (func,) = [rest for kind, name, rest in types.values() if kind == "FUNC" and name == "bpf_fentry_test2"]
    proto = types[int(re.search(r"type_id=(\d+)", func)[1])]
    assert proto[0] == "FUNC_PROTO" and "vlen=2" in proto[2]
    obj = str(objs["func_address_mismatch"])
    state = ["--state-dir", str(kernel_state.state_dir)]
    (src,) = check(capsys, obj, "--repo", kernel_repo, "--rev", "v7.2", *state)
    # a cached table of this kernel made for another object (bpf_fentry_test1's prototype) lacks
    # bpf_fentry_test2's: the kernel is read again for it, then the cache has it
    check(capsys, str(objs["func_address"]), "--btf", str(binaries["7.2"]["vmlinuz"]), *state)
    for _ in range(2):
        (btf,) = check(capsys, obj, "--btf", str(binaries["7.2"]["vmlinuz"]), *state)
        for d in (src, btf):
            (e,) = d["externs"]
            assert (e["name"], e["uses"], e["status"]) == ("bpf_fentry_test2", "address", "incompatible"), d["target"]
            assert d["loads"] is False


def test_a_kfunc_of_a_module_is_said_to_be_in_a_module_when_the_config_is_known(objs, binaries, kernel_repo,
                                                                               kernel_state, tmp_path, capsys):
    """Debian's 6.12 builds CONFIG_NF_CONNTRACK as a module (the package's /boot/config-*): the
    conntrack kfuncs are in nf_conntrack.ko. Without the config the reason claims nothing of the
    build; with it (config-REL beside vmlinuz-REL, as /boot has them) it names the module option;
    with the .ko given they resolve."""
    kernel = Path(binaries["6.12"]["vmlinuz"])
    deb = kernel.parent.parent / "debs" / (kernel.parent / "complete").read_text().strip()
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], check=True, capture_output=True, text=True).stdout
    (name,) = re.findall(r"\./boot/(config-\S+)", listing)
    tar = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tmp_path), f"./boot/{name}"], input=tar, check=True)
    assert "\nCONFIG_NF_CONNTRACK=m\n" in (tmp_path / "boot" / name).read_text()
    makefile = subprocess.run(["git", "-C", kernel_repo, "show", "v6.12:net/netfilter/Makefile"], check=True,
                              capture_output=True, text=True).stdout
    assert re.search(r"^nf_conntrack-\S+ \+= nf_conntrack_bpf\.o$", makefile, re.M)
    beside = tmp_path / "boot" / name.replace("config-", "vmlinuz-")
    beside.symlink_to(kernel)
    state = ["--repo", kernel_repo, "--rev", "v6.12", "--state-dir", str(kernel_state.state_dir)]
    (unknown,) = check(capsys, str(objs["ct"]), "--btf", str(kernel), *state)
    (known,) = check(capsys, str(objs["ct"]), "--btf", str(beside), *state)
    for d in (unknown, known):
        assert {e["name"]: e["status"] for e in d["externs"]} == {"bpf_skb_ct_lookup": "missing",
                                                                   "bpf_ct_release": "missing"}
    for e in unknown["externs"]:
        assert e["reason"].endswith("CONFIG_NF_CONNTRACK (not built in, or in a module not given)"), e
        assert "did not set" not in e["reason"]
    for e in known["externs"]:
        # net/netfilter/Makefile links nf_conntrack_bpf.o into nf_conntrack (git grep)
        assert e["reason"].endswith("this build has CONFIG_NF_CONNTRACK=m: it is in module nf_conntrack.ko, "
                                    "give its .ko with --btf"), e
    (ko,) = [k for k in binaries["6.12"]["ko"] if k.name == "nf_conntrack.ko"]
    (given,) = check(capsys, str(objs["ct"]), "--btf", str(beside), "--btf", str(ko), *state)
    assert {e["name"]: e["status"] for e in given["externs"]} == {"bpf_skb_ct_lookup": "ok", "bpf_ct_release": "ok"}


def test_a_second_kernel_is_no_module(objs, binaries, kernel_state, capsys):
    """A module's BTF is split over vmlinux's: the 7.2 vmlinuz given after the 6.12 one is refused,
    in one line, not merged into 6.12 as a module."""
    second = str(binaries["7.2"]["vmlinuz"])
    capsys.readouterr()
    rc = main(["check", str(objs["func_address"]), "--btf", str(binaries["6.12"]["vmlinuz"]), "--btf", second,
               "--state-dir", str(kernel_state.state_dir)])
    cap = capsys.readouterr()
    assert rc == 2 and cap.out == "" and len(cap.err.splitlines()) == 1
    assert f"{second}: not a kernel module" in cap.err


def test_sarif_of_a_compiled_kernel_does_not_depend_on_how_its_path_is_written(objs, binaries, kernel_state,
                                                                               tmp_path, monkeypatch, capsys):
    """vmlinuz612, ./vmlinuz612 and its absolute path (another directory: another machine) are one
    kernel: one code-scanning category and the same fingerprints."""
    here, there = tmp_path / "here", tmp_path / "x"
    for d in (here, there):
        d.mkdir()
        (d / "vmlinuz612").symlink_to(binaries["6.12"]["vmlinuz"])
    monkeypatch.chdir(here)
    seen = []
    for kernel in ("vmlinuz612", "./vmlinuz612", str(there / "vmlinuz612")):
        capsys.readouterr()
        assert main(["check", str(objs["ct"]), "--btf", kernel, "--format", "sarif",
                     "--state-dir", str(kernel_state.state_dir)]) == 1
        (r,) = json.loads(capsys.readouterr().out)["runs"]
        assert len(r["results"]) == 2  # the two conntrack kfuncs, missing without nf_conntrack.ko
        seen.append((r["automationDetails"]["id"], [x["partialFingerprints"] for x in r["results"]]))
    assert seen[0] == seen[1] == seen[2]
    assert "/" not in seen[0][0].removeprefix("policybot/check/").rstrip("/")


def test_a_call_of_a_test_only_tagged_function_does_not_load(objs, binaries, extracted, kernel_repo, kernel_state,
                                                              capsys):
    """bpf_modify_return_test is tagged bpf_kfunc in the 7.2 kernel's BTF (bpftool), but its set is
    registered only with register_btf_fmodret_id_set (git grep): the verifier refuses a call."""
    assert "bpf_modify_return_test" in tagged_kfuncs(dump(extracted["7.2"]))
    src = subprocess.run(["git", "-C", kernel_repo, "show", "v7.2:net/bpf/test_run.c"], check=True,
                         capture_output=True, text=True).stdout
    sets = re.findall(r"BTF_KFUNCS_START\((\w+)\)(.*?)BTF_KFUNCS_END", src, re.S)
    (owner,) = [name for name, body in sets if "func, bpf_modify_return_test)" in body]
    registrations = re.findall(r"register_btf_(\w+)_id_set\([^;]*&(\w+)", src)
    def names_owner(var: str) -> bool:
        m = re.search(rf"\b{var}\s*=\s*\{{(.*?)\}}", src, re.S)
        return bool(m) and re.search(rf"&{owner}\b", m[1]) is not None
    kinds = {kind for kind, var in registrations if names_owner(var)}
    assert kinds == {"fmodret"}, registrations
    kernel = str(binaries["7.2"]["vmlinuz"])
    # BTF alone cannot tell: the tag is all it has
    (alone,) = check(capsys, str(objs["fmodret_call"]), "--btf", kernel, "--state-dir", str(kernel_state.state_dir))
    assert alone["externs"][0]["status"] == "ok"
    (d,) = check(capsys, str(objs["fmodret_call"]), "--btf", kernel, "--repo", kernel_repo, "--rev", "v7.2",
                 "--state-dir", str(kernel_state.state_dir))
    (e,) = d["externs"]
    assert (e["name"], e["status"], e["uses"]) == ("bpf_modify_return_test", "missing", "call")
    assert "registered only for fmod_ret" in e["reason"]
    assert d["loads"] is False


def test_libbpf_tools_package_is_checked_object_by_object(binaries, tmp_path, capsys):
    """Every BPF object embedded in Debian's libbpf-tools (downloaded in the run), cut independently."""
    deb = debian_packages(tmp_path, "libbpf-tools")["libbpf-tools"]
    unpacked = tmp_path / "unpacked"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(unpacked)], check=True)
    want = {}
    for path in sorted(p for p in unpacked.rglob("*") if p.is_file() and not p.is_symlink()):
        data = path.read_bytes()
        if data.startswith(b"\x7fELF"):
            n = len(cut_objects(data))
            if n:
                want[str(path.relative_to(unpacked))] = n
    assert want, "libbpf-tools embeds BPF objects (libbpf skeletons)"
    docs = check(capsys, str(deb), "--btf", str(binaries["7.2"]["vmlinuz"]), "--state-dir", str(tmp_path / "st"))
    got: dict[str, int] = {}
    for d in docs:
        assert d["object"].startswith(f"{deb.name}:"), d["object"]
        rel = d["object"].split(":", 1)[1].rsplit("@", 1)[0]
        got[rel] = got.get(rel, 0) + 1
    assert got == want
    # a program of the package given alone is read the same way
    program = unpacked / next(iter(want))
    alone = check(capsys, str(program), "--btf", str(binaries["7.2"]["vmlinuz"]), "--state-dir", str(tmp_path / "st"))
    assert len(alone) == want[next(iter(want))]
    assert all(Path(d["object"].rsplit("@", 1)[0]) == program for d in alone)
