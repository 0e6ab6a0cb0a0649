"""The BTF reader on real distribution kernels: Debian trixie's 6.12 and sid's 7.2 (the tests
marked realtree), and on small inputs made here (the rest).

scripts/kernel-binaries downloads and extracts them. Expectations come from
other tools, never from the reader: the kernel's own scripts/extract-vmlinux
decompresses each vmlinuz, bpftool (Debian's) dumps its BTF, and the kfuncs a
kernel carries are the FUNCs its dump shows a ``bpf_kfunc`` decl tag on
(tests/kit/btf.py; conftest's ``binaries`` and ``extracted`` fixtures).
"""

import bz2
import gzip
import json
import lzma
import re
import shutil
import subprocess
import time

import pytest

from policybot.btf.container import decompress_kernel, load
from policybot.btf.kfuncs import read_kernel
from policybot.btf.program import essential_name
from policybot.btf.reader import Btf, BtfError
from policybot.btf.types import Kind
from policybot.cli import main
from policybot.errors import InputError
from kit.btf import RELEASES, dump, dump_types, tagged_kfuncs

# Each test that reads Debian's kernels is marked realtree where it is defined; the unit tests
# (libbpf's essential-name cut, a corrupt BTF) are not, so a unit run (-m "not realtree") has them.


@pytest.fixture(scope="session")
def dumps(extracted):
    return {rel: dump(extracted[rel]) for rel in RELEASES}


@pytest.mark.realtree
@pytest.mark.parametrize("rel", RELEASES)
def test_vmlinuz_kfuncs_are_exactly_the_tagged_ones(rel, binaries, dumps, capsys, tmp_path):
    want = tagged_kfuncs(dumps[rel])
    assert len(want) > 100, "a distribution kernel tags far more kfuncs than this"
    kernel = read_kernel(binaries[rel]["vmlinuz"])
    assert set(kernel.kfuncs) == set(want)
    assert {n: k.btf_id for n, k in kernel.kfuncs.items()} == want
    assert kernel.types == max(dump_types(dumps[rel]))
    # and through the command line, cold then from the content-hash cache
    for _ in range(2):
        assert main(["inventory", "--btf", str(binaries[rel]["vmlinuz"]), "--format", "json",
                     "--state-dir", str(tmp_path)]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert doc["count"] == len(want) and {k["name"] for k in doc["kfuncs"]} == set(want)
    assert len(list((tmp_path / "btf").glob("*.json"))) == 1


@pytest.mark.realtree
@pytest.mark.parametrize("rel", RELEASES)
def test_prototypes_match_bpftool(rel, binaries, dumps):
    """Each kfunc's parameters, by name and count, as bpftool prints its FUNC_PROTO."""
    text = dumps[rel]
    types = dump_types(text)
    params: dict[int, list[str]] = {}
    for m in re.finditer(r"^\[(\d+)\] FUNC_PROTO '\(anon\)' ret_type_id=\d+ vlen=(\d+)\n((?:\t.*\n)*)", text, re.M):
        params[int(m[1])] = re.findall(r"^\t'([^']*)'", m[3], re.M)
    kernel = read_kernel(binaries[rel]["vmlinuz"])
    for name, k in kernel.kfuncs.items():
        proto = int(re.search(r"type_id=(\d+)", types[k.btf_id][2])[1])
        names = params[proto]
        assert len(k.shape.params) == len(names), name
        inside = k.prototype[k.prototype.index(name + "(") + len(name) + 1:-1]
        assert [_param_name(p) for p in _top_level(inside)] == names, name


def _top_level(params: str) -> list[str]:
    """C parameters split at the commas outside parentheses."""
    if params == "void":
        return []
    out, depth, cur = [], 0, ""
    for ch in params:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    return out + [cur.strip()]


def _param_name(param: str) -> str:
    m = re.match(r".*\(\*(\w*)\)\(", param)  # a function pointer: bool (*less)(...)
    return m[1] if m else re.sub(r".*?(\w+)(\[\d+\])?$", r"\1", param)


@pytest.mark.realtree
def test_implicit_args_kfuncs_carry_the_bpf_visible_prototype_on_7_2(binaries, dumps):
    """KF_IMPLICIT_ARGS (7.0): the kfunc's name has the BPF-visible prototype, <name>_impl the full one."""
    text = dumps["7.2"]
    types = dump_types(text)
    funcs = {name: int(re.search(r"type_id=(\d+)", rest)[1]) for _, (kind, name, rest) in types.items()
             if kind == "FUNC"}
    vlen = {tid: int(re.search(r"vlen=(\d+)", rest)[1]) for tid, (kind, _, rest) in types.items()
            if kind == "FUNC_PROTO"}
    kernel = read_kernel(binaries["7.2"]["vmlinuz"])
    pairs = [n for n in kernel.kfuncs if n + "_impl" in funcs]
    assert "scx_bpf_dsq_insert___v2" in pairs
    for n in pairs:
        assert vlen[funcs[n + "_impl"]] > vlen[funcs[n]], n  # the verifier supplies the rest
        assert len(kernel.kfuncs[n].shape.params) == vlen[funcs[n]], n


@pytest.mark.realtree
@pytest.mark.parametrize("rel", RELEASES)
def test_elf_raw_and_vmlinuz_read_the_same(rel, binaries, extracted, tmp_path):
    objcopy = shutil.which("llvm-objcopy") or pytest.fail("no llvm-objcopy (Debian: llvm)")
    raw = tmp_path / "vmlinux.btf"
    subprocess.run([objcopy, f"--dump-section=.BTF={raw}", str(extracted[rel]), str(tmp_path / "out")], check=True)
    a, b, c = load(binaries[rel]["vmlinuz"]), load(extracted[rel]), load(raw)
    assert (a.elf_kind, b.elf_kind, c.elf_kind) == ("vmlinuz", "executable", "raw")
    assert a.btf.count == b.btf.count == c.btf.count
    assert read_kernel(raw).kfuncs.keys() == read_kernel(extracted[rel]).kfuncs.keys()


@pytest.mark.realtree
def test_other_compressions_are_found_by_their_magic(extracted, tmp_path):
    elf = extracted["6.12"].read_bytes()[:3 << 20]  # an ELF's start is all the finding needs
    for name, packed in (("gzip", gzip.compress(elf, 1)), ("xz", lzma.compress(elf, preset=0)),
                         ("lzma", lzma.compress(elf, format=lzma.FORMAT_ALONE, preset=0)),
                         ("bzip2", bz2.compress(elf, 1))):
        # decoys first: magic bytes of other compressors that decompress to nothing
        image = b"\x00" * 4096 + b"\x1f\x8b\x08garbage BZh9 \x5d\x00\x00" + packed + b"\x00" * 16
        assert decompress_kernel(image, name) == elf, name
    with pytest.raises(InputError, match="notes.txt: not BTF"):
        decompress_kernel(b"nothing to see " * 1000, "notes.txt")


@pytest.mark.realtree
def test_module_split_btf(binaries, extracted):
    base = load(binaries["6.12"]["vmlinuz"])
    for ko in binaries["6.12"]["ko"]:
        text = dump(ko, base=extracted["6.12"])
        types = dump_types(text)
        mod = load(ko, base=base.btf)
        assert mod.elf_kind == "module"
        assert mod.btf.first_id == min(types) == base.btf.count  # split ids continue the base's
        assert mod.btf.count == max(types) + 1
        got = {n for n in read_kernel(binaries["6.12"]["vmlinuz"], (str(ko),)).kfuncs
               if n not in read_kernel(binaries["6.12"]["vmlinuz"]).kfuncs}
        assert got == set(tagged_kfuncs(text)), ko.name
        # strings of the module refer to the base's where bpftool says so
        for tid in list(types)[:50]:
            assert mod.btf.type(tid).name == (types[tid][1] if types[tid][1] != "(anon)" else ""), tid


@pytest.mark.realtree
def test_compressed_modules_are_read_as_shipped(binaries, tmp_path):
    ko = binaries["6.12"]["ko"][0]
    packed = tmp_path / (ko.name + ".xz")
    packed.write_bytes(lzma.compress(ko.read_bytes(), preset=0))
    vmlinuz = binaries["6.12"]["vmlinuz"]
    assert read_kernel(vmlinuz, (str(packed),)).kfuncs.keys() == read_kernel(vmlinuz, (str(ko),)).kfuncs.keys()


@pytest.mark.realtree
def test_module_without_its_base_is_bad_input(binaries, capsys):
    ko = binaries["6.12"]["ko"][0]
    assert main(["inventory", "--btf", str(ko)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and str(ko) in err and "split BTF" in err


@pytest.mark.realtree
@pytest.mark.parametrize("rel", RELEASES)
def test_cross_check_with_the_same_release(rel, binaries, kernel_repo, kernel_state, capsys, tmp_path):
    """Every kfunc the BTF tags is in the source inventory, or in an fmodret-only set (named with evidence)."""
    args = ["inventory", "--btf", str(binaries[rel]["vmlinuz"])]
    for ko in binaries[rel]["ko"]:
        args += ["--btf", str(ko)]
    rc = main(args + ["--repo", kernel_repo, "--rev", f"v{rel}", "--format", "json",
                      "--state-dir", str(kernel_state.state_dir)])
    cap = capsys.readouterr()
    doc = json.loads(cap.out)
    cc = doc["cross_check"]
    assert rc == 0 and cc["scanner_misses"] == []
    # fmodret-only: their set is registered with register_btf_fmodret_id_set, found by git grep
    grep = subprocess.run(["git", "-C", kernel_repo, "grep", "-l", "register_btf_fmodret_id_set", f"v{rel}", "--",
                           "*.c"], capture_output=True, text=True).stdout
    files = {line.split(":", 1)[1] for line in grep.splitlines()}
    for name, where in cc["fmodret_only"].items():
        assert where.rsplit(":", 1)[0] in files, name
    tagged = {k["name"] for k in doc["kfuncs"]}
    assert not set(cc["not_built"]) & tagged
    assert f"{len(cc['not_built'])} kfuncs not built in this kernel" in cap.err


# -- objects ---------------------------------------------------------------------------

def test_essential_name_is_libbpfs():
    """Everything from the LAST X___Y separator is the flavor (bpf_core_essential_name_len)."""
    assert essential_name("scx_bpf_dsq_insert___v2___compat") == "scx_bpf_dsq_insert___v2"
    assert essential_name("scx_bpf_dsq_insert___v1") == "scx_bpf_dsq_insert"
    assert essential_name("bpf_foo") == "bpf_foo"
    assert essential_name("__bpf_foo") == "__bpf_foo"
    assert essential_name("bpf____x") == "bpf____x"  # four underscores: no X___Y shape
    assert essential_name("a___") == "a___"  # nothing after the separator


def test_corrupt_btf_is_one_error(tmp_path):
    with pytest.raises(BtfError, match="not BTF"):
        Btf(b"\x00" * 32, "x.btf")
    header = (0xEB9F).to_bytes(2, "little") + b"\x01\x00" + (24).to_bytes(4, "little")
    bad = header + (0).to_bytes(4, "little") + (12).to_bytes(4, "little") + (12).to_bytes(4, "little") + \
        (1).to_bytes(4, "little") + (0).to_bytes(4, "little") + (0x1F << 24).to_bytes(4, "little") + \
        (0).to_bytes(4, "little") + b"\x00"
    with pytest.raises(BtfError, match="unknown kind"):
        Btf(bad, "bad.btf")
    path = tmp_path / "bad.btf"
    path.write_bytes(bad)
    assert main(["inventory", "--btf", str(path)]) == 2


@pytest.mark.realtree
def test_reading_a_real_vmlinuz_is_quick(binaries):
    """Not a benchmark (bench/ has those): a guard that the type index stays lazy."""
    started = time.perf_counter()
    f = load(binaries["7.2"]["vmlinuz"])
    f.btf.ids_of_kind(Kind.DECL_TAG)
    assert time.perf_counter() - started < 10
