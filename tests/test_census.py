"""The usage census (issue 23) on inputs made here: BPF C sources, an object compiled by clang in
the run, that object embedded in a host file as a libbpf skeleton carries it, a Debian package
built with dpkg-deb, and hostile files. Expected values come from the sources' own text (which
externs tests/bpf/kfunc_user.bpf.c declares, written out below) and from readelf on the object,
never from the census's tables. Real packages and trees: tests/test_realtree_census.py."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from kit.bpf import SOURCES, build_deb, compile_bpf, extern_symbols, flavorless
from kit.measure import run_policybot
from policybot.cli import main
from policybot.usage.csource import ksym_externs, references, wrappers

TODAY = "2026-12-03"
# tests/bpf/kfunc_user.bpf.c, read by eye: (declared name, weak)
KFUNC_USER = {("bpf_foo", False), ("bpf_foo___v2", True), ("bpf_old", False), ("bpf_gone", True),
              ("bpf_changed", False)}


def census(capsys, *args) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(["census", "--today", TODAY, *args])
    out, err = capsys.readouterr()
    return rc, out, err


def kept(capsys, by: str = "kfunc") -> dict:
    assert main(["census", "--list", "--by", by, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)[by + "s"]


@pytest.fixture(scope="module")
def kfunc_user_object(tmp_path_factory) -> bytes:
    out = tmp_path_factory.mktemp("obj") / "kfunc_user.bpf.o"
    return compile_bpf(SOURCES / "kfunc_user.bpf.c", out).read_bytes()


# -- C sources ------------------------------------------------------------------------------------


def test_ksym_externs_of_a_c_source():
    src = """
#define __ksym __attribute__((section(".ksyms")))
#define __kfunc_weak __ksym __weak
/* extern void bpf_in_a_comment(void) __ksym; */
const char *s = "extern void bpf_in_a_string(void) __ksym;";
extern struct task_struct *bpf_task_from_pid(s32 pid) __ksym;
extern void bpf_task_release(struct task_struct *p) __ksym __weak;
void scx_bpf_dsq_insert___v2___compat(struct task_struct *p, u64 dsq_id,
                                      u64 slice, u64 enq_flags) __ksym __weak;
extern const int bpf_prog_active __ksym;
int bpf_hidden(int x) __kfunc_weak;
int bpf_in_parens(struct foo *p, u32 BPF_ARG(flags)) __ksym;
"""
    got = [(e.name, e.weak, e.line) for e in ksym_externs(src)]
    assert got == [("bpf_task_from_pid", False, 6), ("bpf_task_release", True, 7),
                   ("scx_bpf_dsq_insert___v2___compat", True, 8), ("bpf_hidden", True, 11),
                   ("bpf_in_parens", False, 12)]


def test_a_program_uses_what_the_headers_wrappers_call(tmp_path, capsys):
    """A header declares kfuncs and wraps them in an inline function and a macro, as sched_ext's
    compat.bpf.h does; a program calling the wrappers uses the kfuncs behind them."""
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "compat.h").write_text(
        "void bpf_new(int x) __ksym __weak;\nvoid bpf_old___compat(int x) __ksym __weak;\n"
        "int bpf_strong(void) __ksym;\nint bpf_unused(void) __ksym;\n"
        "static inline void wrapped(int x)\n{\n\tif (bpf_ksym_exists(bpf_new))\n\t\tbpf_new(x);\n"
        "\telse\n\t\tbpf_old___compat(x);\n}\n"
        "#define WRAP2(x)\t\\\n\t(wrapped(x), bpf_strong())\n")
    (tmp_path / "proj" / "prog.bpf.c").write_text('#include "compat.h"\nint f(void)\n{\n\tWRAP2(1);\n'
                                                   "\treturn 0;\n}\n")
    assert wrappers((tmp_path / "proj" / "compat.h").read_text())["WRAP2"] >= {"wrapped", "bpf_strong"}
    assert references("int x = bpf_a(1); /* bpf_b() */", {"bpf_a", "bpf_b"}) == {"bpf_a": 1}
    rc, out, err = census(capsys, str(tmp_path / "proj"), "--name", "proj", "--version", "1.0")
    assert rc == 0, err
    uses = kept(capsys)
    assert {k: [(u["user"], u["strength"], u["location"]) for u in v["uses"]] for k, v in uses.items()} == {
        "bpf_new": [("prog", "weak", "prog.bpf.c:4")],
        "bpf_old": [("prog", "weak", "prog.bpf.c:4")],
        "bpf_strong": [("prog", "strong", "prog.bpf.c:4")]}
    assert uses["bpf_old"]["uses"][0]["declared"] == "bpf_old___compat"
    assert all(u["project"] == "proj" and u["version"] == "1.0" and not u["in_tree"]
               for v in uses.values() for u in v["uses"])


def test_programs_in_a_kernel_trees_tools_are_in_tree(tmp_path, capsys):
    tree = tmp_path / "linux"
    (tree / "tools" / "demo").mkdir(parents=True)
    (tree / "Kbuild").write_text("")
    (tree / "MAINTAINERS").write_text("")
    (tree / "Makefile").write_text("VERSION = 7\nPATCHLEVEL = 2\nSUBLEVEL = 0\n")
    (tree / "tools" / "demo" / "demo.bpf.c").write_text("int bpf_foo(void) __ksym;\nint f(void) { return bpf_foo(); }\n")
    rc, out, err = census(capsys, str(tree / "tools" / "demo"))
    assert rc == 0, err
    (use,) = kept(capsys)["bpf_foo"]["uses"]
    assert (use["user"], use["project"], use["version"], use["in_tree"]) == ("tools/demo/demo", "linux", "7.2.0", True)
    # findings name out-of-tree users only: the tree's own tools are the tree's business
    from policybot.app.census import known_users
    from policybot.state import State
    assert known_users(State(state_dir=os.environ["POLICYBOT_STATE_DIR"])) == {}


# -- objects, embedded objects, packages ---------------------------------------------------------------


def test_an_object_and_the_same_object_embedded_in_a_host(tmp_path, capsys, kfunc_user_object):
    obj = tmp_path / "kfunc_user.bpf.o"
    obj.write_bytes(kfunc_user_object)
    assert set(extern_symbols(obj).items()) == KFUNC_USER  # the expectation, read by readelf too
    host = tmp_path / "bin" / "mytool"
    host.parent.mkdir()
    # a skeleton's bytes sit in the host's .rodata: here, between two runs of other bytes
    offset = 4096 + 3
    host.write_bytes(b"\x7fELF-not-bpf" + b"\0" * (offset - 12) + kfunc_user_object + b"\xff" * 1000)
    expected = {(flavorless(n), w) for n, w in KFUNC_USER}
    for source, user, location in ((obj, "kfunc_user", "kfunc_user.bpf.o"), (host.parent, "mytool",
                                                                              f"mytool@{offset:#x}")):
        rc, out, err = census(capsys, str(source))
        assert rc == 0, err
        rows = [u for v in kept(capsys).values() for u in v["uses"] if u["source"] == f"path:{source}"]
        assert {(u["kfunc"], u["strength"] == "weak") for u in rows} == expected
        assert {u["user"] for u in rows} == {user} and {u["location"] for u in rows} == {location}


def test_a_debian_package_is_read_without_installing(tmp_path, capsys, kfunc_user_object):
    deb = build_deb(tmp_path, "mytools", "1.2-3", {"usr/sbin/mytool": b"\x7fELF-host" + kfunc_user_object,
                                                    "usr/share/doc/mytools/README": b"hello"})
    rc, out, err = census(capsys, str(deb))
    assert rc == 0, err
    assert "deb:mytools (mytools 1.2-3): 1 file, 1 BPF object" in out
    by_user = kept(capsys, "user")
    assert list(by_user) == ["mytool"]
    assert {(u["kfunc"], u["strength"]) for u in by_user["mytool"]["uses"]} == \
        {(flavorless(n), "weak" if w else "strong") for n, w in KFUNC_USER}
    assert {(u["project"], u["version"], u["source"]) for u in by_user["mytool"]["uses"]} == \
        {("mytools", "1.2-3", "deb:mytools")}

    # a new version of the package replaces the old one's uses
    deb2 = build_deb(tmp_path / "v2", "mytools", "1.3-1", {"usr/sbin/mytool": b"no objects any more"})
    rc, out, err = census(capsys, str(deb2))
    assert rc == 0 and kept(capsys) == {}


def test_csv_and_text_lists(tmp_path, capsys, kfunc_user_object):
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "a.bpf.o").write_bytes(kfunc_user_object)
    census(capsys, str(tmp_path / "p"), "--name", "pp")
    assert main(["census", "--list", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "kfunc,user,project,version,in_tree,strength,location,declared,source,seen"
    assert f"bpf_foo,a,pp,,0,weak,a.bpf.o,bpf_foo___v2,path:{tmp_path / 'p'},{TODAY}" in lines
    assert main(["census", "--list"]) == 0
    text = capsys.readouterr().out
    assert re.search(r"^bpf_foo +a \(strong\), a \(weak\)$", text, re.M), text
    assert text.endswith("4 kfuncs used by 1 program\n")


# -- hostile input ---------------------------------------------------------------------------------


def test_bad_files_are_one_line_each_and_the_rest_is_read(tmp_path, kfunc_user_object):
    d = tmp_path / "src"
    d.mkdir()
    (d / "good.bpf.o").write_bytes(kfunc_user_object)
    (d / "truncated.bpf.o").write_bytes(kfunc_user_object[:200])
    # an embedded object whose section table points past the end of its host
    (d / "cut-host").write_bytes(b"\x7fELFjunk" + kfunc_user_object[: len(kfunc_user_object) // 2])
    with open(d / "sparse.bin", "wb") as f:
        f.write(b"\x7fELF")
        f.truncate(2 << 30)
    os.symlink(d, d / "loop")  # a directory link to itself
    os.mkfifo(d / "fifo.c")
    run = run_policybot("census", str(d), POLICYBOT_STATE_DIR=str(tmp_path / "state"))
    assert run.returncode == 2 and "Traceback" not in run.output, run.output
    problems = [line for line in run.output.splitlines() if line.startswith("policybot: ")]
    assert any("truncated.bpf.o" in p for p in problems), problems
    assert any("cut-host: BPF object at 0x8 not read: " in p and "past the end" in p for p in problems), problems
    assert any("sparse.bin" in p and "max_input_bytes" in p for p in problems), problems
    assert any("fifo.c" in p and "FIFO" in p for p in problems), problems
    assert len(problems) == 4, problems
    assert "path:" in run.output and "good.bpf.o" in run.output  # the good object was read
    assert run.seconds < 10 and run.max_rss_kb < 500 * 1024, (run.seconds, run.max_rss_kb)


def test_a_decompression_bomb_inside_a_package_is_one_line(tmp_path):
    """data.tar.xz that inflates past limits.max_decompressed_bytes, in an ar archive made here."""
    import lzma
    bomb = lzma.compress(bytes(300 << 20), preset=0)

    def member(name: str, data: bytes) -> bytes:
        head = f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode()
        return head + data + (b"\n" if len(data) % 2 else b"")

    import io
    import tarfile
    control = io.BytesIO()
    with tarfile.open(fileobj=control, mode="w:gz") as tar:
        text = b"Package: bomb\nVersion: 1\n"
        info = tarfile.TarInfo("./control")
        info.size = len(text)
        tar.addfile(info, io.BytesIO(text))
    deb = tmp_path / "bomb_1_amd64.deb"
    deb.write_bytes(b"!<arch>\n" + member("debian-binary", b"2.0\n") + member("control.tar.gz", control.getvalue())
                    + member("data.tar.xz", bomb))
    run = run_policybot("census", str(deb), POLICYBOT_STATE_DIR=str(tmp_path / "state"))
    assert run.returncode == 2 and "Traceback" not in run.output, run.output
    assert "policybot: " in run.output and "data.tar.xz" in run.output and "max_decompressed_bytes" in run.output
    assert run.seconds < 10 and run.max_rss_kb < 500 * 1024, (run.seconds, run.max_rss_kb)


def test_a_source_that_cannot_be_read_keeps_its_last_census(tmp_path, capsys):
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "a.bpf.c").write_text("int bpf_foo(void) __ksym;\nint f(void) { return bpf_foo(); }\n")
    census(capsys, str(tmp_path / "p"))
    rc, out, err = census(capsys, str(tmp_path / "nonexistent"))
    assert rc == 2 and err.startswith("policybot: ") and "nonexistent" in err
    assert list(kept(capsys)) == ["bpf_foo"]
